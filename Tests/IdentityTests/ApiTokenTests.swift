import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import IdentityApp
import ServiceKit
import ServiceStorage
import Shared
import TestSupport
import Testing

/// The same repository suite for every backend: in-memory, SQLite, and PostgreSQL when configured.
@Suite("API token repository")
struct ApiTokenRepositoryTests {
    static let backends = ["memory"] + TestDatabases.backends

    func withRepository(_ backend: String, _ body: @escaping @Sendable (any ApiTokenRepository) async throws -> Void) async throws {
        if backend == "memory" {
            try await body(InMemoryApiTokenRepository())
            return
        }
        let location = try await TestDatabases.freshLocation(backend, name: "identity")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            try await body(SQLApiTokenRepository(database: database))
        }
    }

    @Test("a minted token is found by its hash only; the token itself is not stored", arguments: backends)
    func mintAndFind(backend: String) async throws {
        try await self.withRepository(backend) { repository in
            let minted = try await ApiTokenMinter.mint(NewApiToken(name: "ci", scope: .global), into: repository, now: Date())
            #expect(minted.token.hasPrefix("sk_"))
            #expect(minted.token.count == 46)
            let found = try #require(try await repository.find(hash: ApiTokenMinter.hash(minted.token)))
            #expect(found.id == minted.record.id)
            #expect(found.name == "ci")
            #expect(found.scope == .global)
            #expect(found.prefix == String(minted.token.prefix(11)))
            #expect(found.hash != minted.token && !found.hash.contains(minted.token))
            #expect(try await repository.find(hash: ApiTokenMinter.hash(minted.token + "x")) == nil)
            let listed = try await repository.list()
            #expect(listed.map(\.id) == [minted.record.id])
        }
    }

    @Test("revocation is recorded once", arguments: backends)
    func revoke(backend: String) async throws {
        try await self.withRepository(backend) { repository in
            let minted = try await ApiTokenMinter.mint(NewApiToken(name: "old", scope: .global), into: repository, now: Date())
            #expect(try await repository.revoke(id: minted.record.id, at: 1000))
            #expect(try await repository.revoke(id: minted.record.id, at: 2000) == false)
            #expect(try await repository.revoke(id: "unknown", at: 2000) == false)
            let found = try #require(try await repository.find(hash: minted.record.hash))
            #expect(found.revokedAt == 1000)
            #expect(!found.isActive(at: 3000))
        }
    }

    @Test("app tokens keep their app and tenant; last use is recorded", arguments: backends)
    func appScope(backend: String) async throws {
        try await self.withRepository(backend) { repository in
            let minted = try await ApiTokenMinter.mint(
                NewApiToken(name: "app", scope: .app, appId: "app-1", tenantId: "tenant-1", expiresAt: 5000), into: repository, now: Date()
            )
            try await repository.markUsed(id: minted.record.id, at: 4000)
            let found = try #require(try await repository.find(hash: minted.record.hash))
            #expect(found.lastUsedAt == 4000)
            #expect(found.principal == Principal(kind: .apiToken, scope: .app, subject: "token:\(found.id)", tenantId: "tenant-1", appId: "app-1"))
            #expect(found.isActive(at: 4999))
            #expect(!found.isActive(at: 5000))
        }
    }

    @Test("bad token requests are refused before anything is stored")
    func validation() async throws {
        let repository = InMemoryApiTokenRepository()
        await #expect(throws: ServiceError.self) {
            try await ApiTokenMinter.mint(NewApiToken(name: "  ", scope: .global), into: repository, now: Date())
        }
        await #expect(throws: ServiceError.self) {
            try await ApiTokenMinter.mint(NewApiToken(name: "x", scope: .app), into: repository, now: Date())
        }
        #expect(try await repository.list().isEmpty)
    }
}

@Suite("Token resolve endpoint")
struct TokenResolveEndpointTests {
    static let internalToken = String(repeating: "i", count: 40)

    func makeApp(tokens: any ApiTokenRepository) async throws -> some ApplicationProtocol {
        try await buildIdentity(
            reader: .values([
                "STREAMHUB_INTERNAL_TOKEN": Self.internalToken, "STREAMHUB_JWT_SECRET": String(repeating: "j", count: 40),
            ]),
            dependencies: IdentityDependencies(tokens: tokens)
        )
    }

    func resolve(_ client: some TestClientProtocol, token: String, internalToken: String? = internalToken) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let internalToken { headers[.streamHubInternalToken] = internalToken }
        return try await client.execute(
            uri: "/internal/v1/tokens/resolve", method: .post, headers: headers,
            body: ByteBuffer(bytes: try JSONEncoder().encode(TokenResolveRequest(token: token)))
        )
    }

    @Test("a valid token resolves to its principal and is marked used")
    func valid() async throws {
        let tokens = InMemoryApiTokenRepository()
        let minted = try await ApiTokenMinter.mint(NewApiToken(name: "ci", scope: .global), into: tokens, now: Date())
        try await self.makeApp(tokens: tokens).test(.router) { client in
            let response = try await self.resolve(client, token: minted.token)
            #expect(response.status == .ok)
            let body = try JSONDecoder().decode(TokenResolveResponse.self, from: Data(buffer: response.body))
            #expect(body.principal == Principal(kind: .apiToken, scope: .global, subject: "token:\(minted.record.id)"))
        }
        #expect(try await tokens.find(hash: minted.record.hash)?.lastUsedAt != nil)
    }

    @Test("unknown and revoked tokens get the overview's 401 body")
    func invalid() async throws {
        let tokens = InMemoryApiTokenRepository()
        let minted = try await ApiTokenMinter.mint(NewApiToken(name: "ci", scope: .global), into: tokens, now: Date())
        _ = try await tokens.revoke(id: minted.record.id, at: 1)
        try await self.makeApp(tokens: tokens).test(.router) { client in
            for token in [minted.token, "sk_nope", "not-a-token"] {
                let response = try await self.resolve(client, token: token)
                #expect(response.status == .unauthorized)
                #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: response.body)) == .invalidApiToken)
            }
        }
    }

    @Test("internal routes need the internal token")
    func internalToken() async throws {
        try await self.makeApp(tokens: InMemoryApiTokenRepository()).test(.router) { client in
            let missing = try await self.resolve(client, token: "sk_x", internalToken: nil)
            #expect(missing.status == .unauthorized)
            let wrong = try await self.resolve(client, token: "sk_x", internalToken: Self.internalToken + "x")
            #expect(wrong.status == .unauthorized)
            try await client.execute(uri: "/internal/v1/health", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
        }
    }

    @Test("bad JSON is a 400 in the error body")
    func badJSON() async throws {
        try await self.makeApp(tokens: InMemoryApiTokenRepository()).test(.router) { client in
            try await client.execute(
                uri: "/internal/v1/tokens/resolve", method: .post, headers: [.streamHubInternalToken: Self.internalToken],
                body: ByteBuffer(string: "[1,2")
            ) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
                #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: response.body)).error == "Bad Request")
            }
        }
    }
}
