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

/// Media (one app per tenant, anything else 404) and authz (role grants accepted) as identity sees them.
final class FakeMedia: UpstreamClient, @unchecked Sendable {
    let apps: [String: String]  // app id → tenant id

    init(apps: [String: String]) { self.apps = apps }

    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        let id = String(request.pathAndQuery.split(separator: "/").last ?? "")
        let (status, body): (Int, String)
        if request.pathAndQuery == "/internal/v1/roles" || request.pathAndQuery == "/internal/v1/roles/revoke" {
            // authz: an app token's role granted at mint, revoked with it.
            (status, body) = (200, #"{"tenant":"t1","version":1,"changed":1}"#)
        } else if request.pathAndQuery.hasPrefix("/internal/v1/apps/"), let tenant = self.apps[id] {
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
                    tokens: tokens, accounts: SQLAccountRepository(database: database), totp: SQLTOTPRepository(database: database),
                    links: SQLSignInLinkRepository(database: database),
                    attempts: SQLAttemptRepository(database: database), roleIntents: SQLRoleIntentRepository(database: database), transport: FakeMedia(apps: ["app1": "t1", "app2": "t2"]))
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
            let farFuture = try await self.call(
                client, .post, "/api/v1/tokens", #"{"name":"x","scope":"app","appId":"app1","expiresAt":"+275760-09-13T00:00:00Z"}"#, as: Self.member)
            #expect(farFuture.status == .badRequest)
            let tooLong = try await self.call(
                client, .post, "/api/v1/tokens", #"{"name":"x","scope":"app","appId":"app1","expiresAt":"9999-01-01T00:00:00Z"}"#, as: Self.member)
            #expect(tooLong.status == .badRequest)
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

@Suite("TOTP")
struct TOTPTests {
    @Test("RFC 6238's SHA-1 test vectors (6-digit truncation), base32 as authenticator apps read it")
    func vectors() {
        let secret = Array("12345678901234567890".utf8)
        for (time, code) in [(59, "287082"), (1_111_111_109, "081804"), (1_111_111_111, "050471"), (1_234_567_890, "005924"), (2_000_000_000, "279037")] {
            #expect(TOTPAuthenticator.code(secret: secret, step: Int64(time) / 30) == code)
        }
        #expect(Base32.encode(secret) == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
        #expect(Base32.encode(Array("f".utf8)) == "MY" && Base32.encode(Array("foobar".utf8)) == "MZXW6YTBOI")
    }

    @Test("a code is accepted for the current step and one either side, nothing further")
    func window() {
        let secret = TOTPAuthenticator.newSecret()
        let now = Date(timeIntervalSince1970: 1_800_000_015)
        let step = TOTPAuthenticator.step(now)
        for offset in [-1, 0, 1] {
            #expect(TOTPAuthenticator.matchingStep(secret: secret, code: TOTPAuthenticator.code(secret: secret, step: step + Int64(offset)), now: now) == step + Int64(offset))
        }
        for offset in [-3, -2, 2, 3] {
            let code = TOTPAuthenticator.code(secret: secret, step: step + Int64(offset))
            let near = (-1...1).map { TOTPAuthenticator.code(secret: secret, step: step + Int64($0)) }
            if !near.contains(code) { #expect(TOTPAuthenticator.matchingStep(secret: secret, code: code, now: now) == nil) }
        }
        #expect(TOTPAuthenticator.matchingStep(secret: secret, code: "12345", now: now) == nil)
        #expect(TOTPAuthenticator.matchingStep(secret: secret, code: "abcdef", now: now) == nil)
    }

    @Test("sealed secrets open with the same key only")
    func sealing() throws {
        let secret = TOTPAuthenticator.newSecret()
        let sealed = try SecretSealer(secret: String(repeating: "a", count: 32)).seal(secret)
        #expect(!sealed.contains(Base32.encode(secret)))
        #expect(try SecretSealer(secret: String(repeating: "a", count: 32)).open(sealed) == secret)
        #expect(throws: (any Error).self) { try SecretSealer(secret: String(repeating: "b", count: 32)).open(sealed) }
    }
}

/// authz as identity sees it: every grant succeeds, nobody has roles.
final class AgreeableAuthz: UpstreamClient, @unchecked Sendable {
    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        let body = request.pathAndQuery == "/internal/v1/roles/of" ? #"{"roles":{}}"# : #"{"tenant":"t","version":1,"changed":1}"#
        let buffer = ByteBuffer(string: body)
        return UpstreamResponse(status: .ok, headers: [:], body: .init(byteBuffer: buffer), collect: { _ in buffer })
    }
}

final class StepClock: TimeSource, @unchecked Sendable {
    let lock = NSLock()
    var current = Date(timeIntervalSince1970: 1_800_000_010)
    func now() -> Date { self.lock.withLock { self.current } }
    func advance(_ seconds: Double) { self.lock.withLock { self.current.addTimeInterval(seconds) } }
}

@Suite("TOTP routes")
struct TOTPRouteTests {
    @Test("disabling TOTP needs a current, unused code; then sign-in needs none", arguments: TestDatabases.backends)
    func disable(backend: String) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "identity")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            let clock = StepClock()
            let token = String(repeating: "i", count: 40)
            let app = try await buildIdentity(
                reader: .values(["STREAMHUB_INTERNAL_TOKEN": token, "STREAMHUB_JWT_SECRET": String(repeating: "j", count: 40)]),
                dependencies: IdentityDependencies(
                    tokens: SQLApiTokenRepository(database: database), accounts: SQLAccountRepository(database: database),
                    totp: SQLTOTPRepository(database: database), links: SQLSignInLinkRepository(database: database),
                    attempts: SQLAttemptRepository(database: database), roleIntents: SQLRoleIntentRepository(database: database), transport: AgreeableAuthz(),
                    timeSource: clock))
            try await app.test(.router) { client in
                func post(_ path: String, _ body: String, as principal: Principal? = nil) async throws -> TestResponse {
                    var headers: HTTPFields = [.streamHubInternalToken: token, .contentType: "application/json"]
                    if let principal { headers[.streamHubPrincipal] = PrincipalHeader.encode(principal) }
                    return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
                }
                let signup = try await post("/api/v1/auth/signup", #"{"email":"t@example.com","password":"correct horse battery"}"#)
                let userId = try #require(
                    ((try JSONSerialization.jsonObject(with: Data(buffer: signup.body)) as? [String: Any])?["user"] as? [String: Any])?["id"] as? String)
                let me = Principal(kind: .user, scope: .tenant, subject: "user:\(userId)", tenantId: "t")
                let enrolled = try #require(
                    try JSONSerialization.jsonObject(with: Data(buffer: try await post("/api/v1/auth/totp/enroll", "{}", as: me).body)) as? [String: Any])
                let url = try #require(enrolled["otpauthUrl"] as? String)
                let base32 = try #require(enrolled["secret"] as? String)
                #expect(url.contains("secret=\(base32)"))
                // The secret is not stored in the clear.
                let stored = try #require(try await SQLTOTPRepository(database: database).record(userId: userId))
                #expect(!stored.sealedSecret.contains(enrolled["secret"] as? String ?? "-"))
                let raw = try SecretSealer(secret: String(repeating: "j", count: 40)).open(stored.sealedSecret)
                let code = { TOTPAuthenticator.code(secret: raw, step: TOTPAuthenticator.step(clock.now())) }
                #expect(try await post("/api/v1/auth/totp/confirm", #"{"code":"\#(code())"}"#, as: me).status == .ok)
                #expect(try await post("/api/v1/auth/totp/enroll", "{}", as: me).status == .conflict)
                // The confirming code is spent: it cannot disable TOTP.
                let reused = try await post("/api/v1/auth/totp/disable", #"{"code":"\#(code())"}"#, as: me)
                #expect(reused.status == .badRequest)
                let login = try await post("/api/v1/auth/login", #"{"email":"t@example.com","password":"correct horse battery"}"#)
                #expect(login.status == .unauthorized)
                #expect(String(buffer: login.body) == #"{"statusCode":401,"message":"A valid TOTP code is required","error":"Unauthorized","totpRequired":true}"#)
                clock.advance(30)
                #expect(try await post("/api/v1/auth/totp/disable", #"{"code":"\#(code())"}"#, as: me).status == .ok)
                #expect(try await post("/api/v1/auth/login", #"{"email":"t@example.com","password":"correct horse battery"}"#).status == .ok)
            }
        }
    }
}
