import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import IdentityApp
import Logging
import NIOCore
import SQLKit
import ServiceKit
import ServiceStorage
import Shared
import TestSupport
import Testing

/// authz as identity sees it, with its state: grants are kept, revokes remove them. `failAfterApplying`
/// answers a grant with a timeout after applying it (authz did the work, the answer was lost);
/// `down` refuses everything.
final class StatefulAuthz: UpstreamClient, @unchecked Sendable {
    let lock = NSLock()
    var grants: Set<[String]> = []
    var failAfterApplying = false
    var down = false
    /// Media's apps (id → tenant), for the app lookups a token mint makes.
    var apps: [String: String] = [:]

    func holds(_ subject: String, _ tenant: String) -> Bool { self.lock.withLock { self.grants.contains { $0[0] == subject && $0[2] == tenant } } }

    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        let body = request.body ?? ByteBuffer()
        let json = (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]) ?? [:]
        let answer: String = try self.lock.withLock {
            if self.down { throw UpstreamFailure.unavailable("authz is down") }
            switch request.pathAndQuery {
            case "/internal/v1/roles":
                self.grants.insert([json["subject"] as? String ?? "", json["role"] as? String ?? "", json["tenant"] as? String ?? ""])
                if self.failAfterApplying { throw UpstreamFailure.timeout }
            case "/internal/v1/roles/revoke":
                self.grants = self.grants.filter { !($0[0] == json["subject"] as? String && $0[2] == json["tenant"] as? String) }
            case let path where path.hasPrefix("/internal/v1/apps/"):
                let id = String(path.dropFirst("/internal/v1/apps/".count))
                guard let tenant = self.apps[id] else { throw UpstreamFailure.unavailable("no such app in this fake") }
                return #"{"id":"\#(id)","tenantId":"\#(tenant)","name":"a","features":{"publicPlayback":true},"createdAt":"2026-01-01T00:00:00Z"}"#
            default:
                return #"{"roles":{}}"#
            }
            return #"{"tenant":"t","version":1,"changed":1}"#
        }
        let buffer = ByteBuffer(string: answer)
        return UpstreamResponse(status: .ok, headers: [:], body: .init(byteBuffer: buffer), collect: { _ in buffer })
    }
}

@Suite("Role grants and identity's rows: one outcome")
struct RoleIntentTests {
    static let token = String(repeating: "i", count: 40)

    func withIdentity(
        _ backend: String, authz: StatefulAuthz, tokens: @escaping @Sendable (any Database) -> any ApiTokenRepository = { SQLApiTokenRepository(database: $0) },
        _ body: @escaping @Sendable (any TestClientProtocol, any Database, StepClock) async throws -> Void
    ) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "identity")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            let clock = StepClock()
            let app = try await buildIdentity(
                reader: .values([
                    "STREAMHUB_INTERNAL_TOKEN": Self.token, "STREAMHUB_JWT_SECRET": String(repeating: "j", count: 40),
                    "STREAMHUB_MAIL_OUTBOX": try TestDatabases.temporaryDirectory(),
                ]),
                dependencies: IdentityDependencies(
                    tokens: tokens(database), accounts: SQLAccountRepository(database: database),
                    totp: SQLTOTPRepository(database: database), links: SQLSignInLinkRepository(database: database),
                    attempts: SQLAttemptRepository(database: database), roleIntents: SQLRoleIntentRepository(database: database),
                    transport: authz, timeSource: clock))
            try await app.test(.router) { client in try await body(client, database, clock) }
        }
    }

    func post(_ client: some TestClientProtocol, _ path: String, _ body: String, as principal: Principal? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [.streamHubInternalToken: Self.token, .contentType: "application/json"]
        if let principal { headers[.streamHubPrincipal] = PrincipalHeader.encode(principal) }
        return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    struct Count: Decodable { var n: Int }

    func count(_ database: any Database, _ table: String) async throws -> Int {
        try await database.withSQL { sql in try await sql.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table)").first(decoding: Count.self)?.n ?? 0 }
    }

    func intents(_ database: any Database) -> RoleIntents {
        RoleIntents(
            store: SQLRoleIntentRepository(database: database),
            authz: InternalClient(transport: AgreeableAuthz(), internalToken: Self.token, timeout: .seconds(5)), authzURL: "http://authz.test",
            timeSource: SystemTimeSource())
    }

    @Test("a sign-up whose grant landed but whose answer was lost stores no user and leaves no grant behind", arguments: TestDatabases.backends)
    func signupGrantLost(backend: String) async throws {
        let authz = StatefulAuthz()
        try await self.withIdentity(backend, authz: authz) { client, database, _ in
            authz.failAfterApplying = true
            let failed = try await self.post(client, "/api/v1/auth/signup", #"{"email":"lost@example.com","password":"correct horse battery"}"#)
            #expect(failed.status == .gatewayTimeout)
            #expect(try await self.count(database, "identity_users") == 0)
            // The grant authz applied was revoked at once, and nothing is left to settle.
            #expect(authz.lock.withLock { authz.grants.isEmpty })
            #expect(try await self.count(database, "identity_role_intents") == 0)
            // A sign-up that works leaves its grant and no intent.
            authz.failAfterApplying = false
            let ok = try await self.post(client, "/api/v1/auth/signup", #"{"email":"ok@example.com","password":"correct horse battery"}"#)
            #expect(ok.status == .created)
            #expect(authz.lock.withLock { authz.grants.count } == 1)
            #expect(try await self.count(database, "identity_role_intents") == 0)
            // A taken email asks authz nothing and leaves nothing.
            #expect(try await self.post(client, "/api/v1/auth/signup", #"{"email":"ok@example.com","password":"correct horse battery"}"#).status == .conflict)
            #expect(try await self.count(database, "identity_role_intents") == 0)
        }
    }

    @Test("authz down when the grant's answer is lost: the intent stays and the settler revokes the grant once authz is back", arguments: TestDatabases.backends)
    func settledLater(backend: String) async throws {
        // An intent recorded, the grant applied, the process gone before the undo (or authz away for it).
        let location = try await TestDatabases.freshLocation(backend, name: "identity")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            let store = SQLRoleIntentRepository(database: database)
            let state = StatefulAuthz()
            let intents = RoleIntents(
                store: store, authz: InternalClient(transport: state, internalToken: Self.token, timeout: .seconds(5)), authzURL: "http://authz.test",
                timeSource: SystemTimeSource())
            let now = Timestamp.millis(Date())
            try await store.record(RoleIntent(id: "i1", subject: "user:ghost", role: "owner", tenantId: "t1", attempts: 0), at: now, dueAt: now + 60_000)
            state.lock.withLock { _ = state.grants.insert(["user:ghost", "owner", "t1"]) }
            state.down = true
            // Not due yet: a request may still be finishing it.
            #expect(await intents.settleDue(logger: TestDatabases.logger) == 0)
            try await database.withSQL { sql in try await sql.raw("UPDATE identity_role_intents SET next_attempt_at = 0").run() }
            // Due, but authz is down: kept, and due again a minute later.
            #expect(await intents.settleDue(logger: TestDatabases.logger) == 0)
            #expect(try await self.count(database, "identity_role_intents") == 1)
            state.down = false
            try await database.withSQL { sql in try await sql.raw("UPDATE identity_role_intents SET next_attempt_at = 0").run() }
            #expect(await intents.settleDue(logger: TestDatabases.logger) == 1)
            #expect(!state.holds("user:ghost", "t1"))
            #expect(try await self.count(database, "identity_role_intents") == 0)
        }
    }

    @Test(
        "an app token whose grant answer was lost as the database went away: no token is left active, no grant, and a retry mints one",
        arguments: TestDatabases.backends)
    func tokenGrantLostDatabaseGone(backend: String) async throws {
        // The drill's finding: the token was committed, the grant's answer was lost, and the
        // database went away before the token could be revoked — the answer was a 5xx (so a retry
        // with the same Idempotency-Key ran again) while the first token stayed active: minted twice.
        let authz = StatefulAuthz()
        let gone = DatabaseGoneAfterInsert()
        try await self.withIdentity(backend, authz: authz, tokens: { gone.wrapping(SQLApiTokenRepository(database: $0)) }) { client, database, _ in
            let signup = try await self.post(client, "/api/v1/auth/signup", #"{"email":"boss@example.com","password":"correct horse battery"}"#)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(buffer: signup.body)) as? [String: Any])
            let tenantId = try #require(body["tenantId"] as? String)
            let userId = try #require((body["user"] as? [String: Any])?["id"] as? String)
            let owner = Principal(kind: .user, scope: .tenant, subject: "user:\(userId)", tenantId: tenantId)
            authz.lock.withLock { authz.apps["app-1"] = tenantId }
            authz.failAfterApplying = true
            gone.armed = true
            let failed = try await self.post(client, "/api/v1/tokens", #"{"name":"ci","scope":"app","appId":"app-1"}"#, as: owner)
            #expect(failed.status.code >= 500)
            gone.armed = false
            // Nothing was minted, the grant authz applied is undone, nothing is left to settle.
            #expect(try await self.count(database, "identity_api_tokens") == 0)
            #expect(authz.lock.withLock { authz.grants.map { $0[0] } } == ["user:\(userId)"])
            #expect(try await self.count(database, "identity_role_intents") == 0)
            // The retry mints the one token, holding its role.
            authz.failAfterApplying = false
            let ok = try await self.post(client, "/api/v1/tokens", #"{"name":"ci","scope":"app","appId":"app-1"}"#, as: owner)
            #expect(ok.status == .created)
            let minted = try #require(try JSONSerialization.jsonObject(with: Data(buffer: ok.body)) as? [String: Any])
            let id = try #require(minted["id"] as? String)
            #expect(try await self.count(database, "identity_api_tokens") == 1)
            #expect(authz.holds("token:\(id)", tenantId))
            #expect(try await self.count(database, "identity_role_intents") == 0)
        }
    }

    @Test("accepting an invitation whose grant answer was lost: no account, no membership, no grant; the invitation stays pending", arguments: TestDatabases.backends)
    func invitationGrantLost(backend: String) async throws {
        let authz = StatefulAuthz()
        try await self.withIdentity(backend, authz: authz) { client, database, _ in
            let signup = try await self.post(client, "/api/v1/auth/signup", #"{"email":"boss@example.com","password":"correct horse battery"}"#)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(buffer: signup.body)) as? [String: Any])
            let tenantId = try #require(body["tenantId"] as? String)
            let userId = try #require((body["user"] as? [String: Any])?["id"] as? String)
            let owner = Principal(kind: .user, scope: .tenant, subject: "user:\(userId)", tenantId: tenantId)
            try await IdentityHarness.markVerified(database, "boss@example.com")
            let invite = try await self.post(client, "/api/v1/tenants/\(tenantId)/members", #"{"email":"new@example.com","role":"viewer"}"#, as: owner)
            #expect(invite.status == .created)
            // Inviting grants nothing and makes no account.
            #expect(try await SQLAccountRepository(database: database).user(email: "new@example.com") == nil)
            #expect(authz.lock.withLock { authz.grants.map { $0[0] } } == ["user:\(userId)"])
            struct Row: Decodable { var body: String }
            let mail = try #require(
                try await database.withSQL { sql in
                    try await sql.raw("SELECT body FROM identity_mail_outbox WHERE recipient = 'new@example.com'").first(decoding: Row.self)
                }
            ).body
            let token = try #require(mail.components(separatedBy: "\n").first { $0.contains("/login/invite?token=") }?.components(separatedBy: "token=").last)
            authz.failAfterApplying = true
            let accept = #"{"token":"\#(token)","password":"correct horse battery"}"#
            let failed = try await self.post(client, "/api/v1/auth/invitations/signup", accept)
            #expect(failed.status == .gatewayTimeout)
            #expect(try await SQLAccountRepository(database: database).user(email: "new@example.com") == nil)
            #expect(authz.lock.withLock { authz.grants.map { $0[0] } } == ["user:\(userId)"])
            #expect(try await self.count(database, "identity_role_intents") == 0)
            #expect(try await self.count(database, "identity_memberships") == 1)
            // The invitation is still pending: accepting again works.
            authz.failAfterApplying = false
            #expect(try await self.post(client, "/api/v1/auth/invitations/signup", accept).status == .created)
            #expect(try await self.count(database, "identity_memberships") == 2)
            #expect(authz.holds(("user:" + (try #require(try await SQLAccountRepository(database: database).user(email: "new@example.com")?.id))), tenantId))
        }
    }
}

/// An `sk_` token repository whose database goes away, while `armed`, right after a token is stored:
/// every later call fails as PostgreSQL's stop does.
final class DatabaseGoneAfterInsert: @unchecked Sendable {
    let lock = NSLock()
    var armedValue = false
    var goneValue = false
    var armed: Bool {
        get { self.lock.withLock { self.armedValue } }
        set { self.lock.withLock { self.armedValue = newValue; self.goneValue = false } }
    }

    func check() throws {
        if self.lock.withLock({ self.armedValue && self.goneValue }) { throw StorageError.unavailable("the database went away") }
    }

    func stored() { self.lock.withLock { if self.armedValue { self.goneValue = true } } }

    func wrapping(_ inner: any ApiTokenRepository) -> any ApiTokenRepository { Repository(inner: inner, state: self) }

    struct Repository: ApiTokenRepository {
        let inner: any ApiTokenRepository
        let state: DatabaseGoneAfterInsert

        func insert(_ record: ApiTokenRecord) async throws {
            try self.state.check()
            try await self.inner.insert(record)
            self.state.stored()
        }
        func insert(_ record: ApiTokenRecord, limit: Int, at now: Int64) async throws {
            try self.state.check()
            try await self.inner.insert(record, limit: limit, at: now)
            self.state.stored()
        }
        func insert(
            _ record: ApiTokenRecord, limit: Int, at now: Int64, clearing intent: String, beforeCommit: @escaping @Sendable () async throws -> Void
        ) async throws {
            try self.state.check()
            try await self.inner.insert(record, limit: limit, at: now, clearing: intent, beforeCommit: beforeCommit)
            self.state.stored()
        }
        func find(id: String) async throws -> ApiTokenRecord? { try self.state.check(); return try await self.inner.find(id: id) }
        func activeCount(tenant: String, at now: Int64) async throws -> Int {
            try self.state.check()
            return try await self.inner.activeCount(tenant: tenant, at: now)
        }
        func list(tenant: String?, after: String?, limit: Int) async throws -> [ApiTokenRecord] {
            try self.state.check()
            return try await self.inner.list(tenant: tenant, after: after, limit: limit)
        }
        func find(hash: String) async throws -> ApiTokenRecord? { try self.state.check(); return try await self.inner.find(hash: hash) }
        func markUsed(id: String, at: Int64) async throws { try self.state.check(); try await self.inner.markUsed(id: id, at: at) }
        func revoke(id: String, at: Int64) async throws -> Bool { try self.state.check(); return try await self.inner.revoke(id: id, at: at) }
        func list() async throws -> [ApiTokenRecord] { try self.state.check(); return try await self.inner.list() }
    }
}
