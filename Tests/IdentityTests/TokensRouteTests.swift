import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import IdentityApp
import NIOCore
import ServiceKit
import ServiceStorage
import Shared
import TestSupport
import Testing

/// Media as identity sees it: one app per tenant, anything else 404.
final class FakeMedia: UpstreamClient, @unchecked Sendable {
    let apps: [String: String]  // app id → tenant id

    init(apps: [String: String]) { self.apps = apps }

    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        let id = String(request.pathAndQuery.split(separator: "/").last ?? "")
        let (status, body): (Int, String)
        if request.pathAndQuery.hasPrefix("/internal/v1/apps/"), let tenant = self.apps[id] {
            (status, body) = (200, #"{"id":"\#(id)","tenantId":"\#(tenant)","name":"n","features":{"publicPlayback":true},"createdAt":"2026-01-01T00:00:00.000Z"}"#)
        } else {
            (status, body) = (404, #"{"statusCode":404,"message":"No such app","error":"Not Found"}"#)
        }
        let buffer = ByteBuffer(string: body)
        return UpstreamResponse(status: .init(code: status), headers: [:], body: .init(byteBuffer: buffer), collect: { _ in buffer })
    }
}

@Suite("Tokens routes")
struct TokensRouteTests {
    static let internalToken = String(repeating: "i", count: 40)
    static let global = Principal(kind: .apiToken, scope: .global, subject: "token:root")
    static let member = Principal(kind: .user, scope: .tenant, subject: "user:m", tenantId: "t1")
    static let outsider = Principal(kind: .user, scope: .tenant, subject: "user:o", tenantId: "t2")

    func withApp(
        _ backend: String, maxTokens: Int = 50,
        _ body: @escaping @Sendable (any TestClientProtocol, any ApiTokenRepository) async throws -> Void
    ) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "identity")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            let tokens = SQLApiTokenRepository(database: database)
            let app = try await buildIdentity(
                reader: .values([
                    "STREAMHUB_INTERNAL_TOKEN": Self.internalToken, "STREAMHUB_JWT_SECRET": String(repeating: "j", count: 40),
                    "STREAMHUB_DEFAULT_MAX_TOKENS": String(maxTokens),
                ]),
                dependencies: IdentityDependencies(
                    tokens: tokens, accounts: SQLAccountRepository(database: database), transport: FakeMedia(apps: ["app1": "t1", "app2": "t2"]))
            )
            try await app.test(.router) { client in try await body(client, tokens) }
        }
    }

    func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, as principal: Principal
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.streamHubInternalToken: Self.internalToken, .streamHubPrincipal: PrincipalHeader.encode(principal)]
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }

    func json(_ response: TestResponse) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(buffer: response.body))
    }

    @Test("mint, list and revoke: the token shown once, tenants kept apart, global tokens for global callers only", arguments: TestDatabases.backends)
    func lifecycle(backend: String) async throws {
        try await self.withApp(backend) { client, tokens in
            let created = try await self.call(client, .post, "/api/v1/tokens", #"{"name":"ci","scope":"app","appId":"app1"}"#, as: Self.member)
            #expect(created.status == .created)
            #expect(created.headers[.cacheControl] == "no-store")
            let token = try #require(try self.json(created) as? [String: Any])
            let secret = try #require(token["token"] as? String)
            #expect(secret.hasPrefix("sk_") && token["tenantId"] as? String == "t1" && token["appId"] as? String == "app1")
            let id = try #require(token["id"] as? String)
            let stored = try #require(try await tokens.find(id: id))
            #expect(stored.hash == ApiTokenMinter.hash(secret) && !stored.hash.contains(secret))

            // Another tenant's app, an unknown app, a global token by a tenant member: refused.
            let foreign = try await self.call(client, .post, "/api/v1/tokens", #"{"name":"x","scope":"app","appId":"app2"}"#, as: Self.member)
            #expect(foreign.status == .notFound)
            let unknown = try await self.call(client, .post, "/api/v1/tokens", #"{"name":"x","scope":"app","appId":"nope"}"#, as: Self.member)
            #expect(unknown.status == .notFound)
            let globalByMember = try await self.call(client, .post, "/api/v1/tokens", #"{"name":"x","scope":"global"}"#, as: Self.member)
            #expect(globalByMember.status == .forbidden)
            let globalByGlobal = try await self.call(client, .post, "/api/v1/tokens", #"{"name":"ops","scope":"global"}"#, as: Self.global)
            #expect(globalByGlobal.status == .created)
            let past = try await self.call(
                client, .post, "/api/v1/tokens", #"{"name":"x","scope":"app","appId":"app1","expiresAt":"2001-01-01T00:00:00Z"}"#, as: Self.member)
            #expect(past.status == .badRequest)
            let nul = try await self.call(client, .post, "/api/v1/tokens", #"{"name":"a\u0000","scope":"app","appId":"app1"}"#, as: Self.member)
            #expect(nul.status == .badRequest)

            // Lists: a member sees their tenant's tokens only, never a secret or a hash.
            let mine = try #require(try self.json(try await self.call(client, .get, "/api/v1/tokens", as: Self.member)) as? [[String: Any]])
            #expect(mine.map { $0["id"] as? String } == [id])
            #expect(mine.allSatisfy { $0["token"] == nil && $0["hash"] == nil })
            let all = try #require(try self.json(try await self.call(client, .get, "/api/v1/tokens", as: Self.global)) as? [[String: Any]])
            #expect(all.count == 2)
            let paged = try #require(try self.json(try await self.call(client, .get, "/api/v1/tokens?limit=1", as: Self.global)) as? [[String: Any]])
            #expect(paged.count == 1)
            let next = try #require(
                try self.json(try await self.call(client, .get, "/api/v1/tokens?limit=1&after=\(paged[0]["id"] as! String)", as: Self.global))
                    as? [[String: Any]])
            #expect(next.count == 1 && next[0]["id"] as? String != paged[0]["id"] as? String)
            #expect(try await self.call(client, .get, "/api/v1/tokens?limit=501", as: Self.global).status == .badRequest)

            // Revoking: another tenant's token is a 404; the owner's revoke is idempotent.
            #expect(try await self.call(client, .delete, "/api/v1/tokens/\(id)", as: Self.outsider).status == .notFound)
            let revoked = try await self.call(client, .delete, "/api/v1/tokens/\(id)", as: Self.member)
            #expect(revoked.status == .ok)
            #expect((try self.json(revoked) as? [String: Any])?["revokedAt"] is String)
            #expect(try await self.call(client, .delete, "/api/v1/tokens/\(id)", as: Self.member).status == .ok)
            let resolve = try await client.execute(
                uri: "/internal/v1/tokens/resolve", method: .post, headers: [.streamHubInternalToken: Self.internalToken, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"token":"\#(secret)"}"#))
            #expect(resolve.status == .unauthorized)
        }
    }

    @Test("maxTokens holds exactly under 100 concurrent mints", arguments: TestDatabases.backends)
    func quota(backend: String) async throws {
        try await self.withApp(backend, maxTokens: 3) { client, tokens in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        try await self.call(client, .post, "/api/v1/tokens", #"{"name":"n\#(index)","scope":"app","appId":"app1"}"#, as: Self.member).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 3)
            #expect(statuses.filter { $0 == .forbidden }.count == 97)
            #expect(try await tokens.list(tenant: "t1", after: nil, limit: 500).count == 3)
            let over = try await self.call(client, .post, "/api/v1/tokens", #"{"name":"late","scope":"app","appId":"app1"}"#, as: Self.member)
            #expect(String(buffer: over.body).contains("Quota maxTokens (3) reached"))
        }
    }
}
