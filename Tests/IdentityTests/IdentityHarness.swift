import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import IdentityApp
import NIOCore
import SQLKit
import ServiceKit
import ServiceStorage
import Shared
import TestSupport

/// Identity in process on a fresh database of `backend` (every repository on SQL), with the
/// settings given on top of the required ones; the routes are called as the gateway calls them.
struct IdentityHarness: Sendable {
    static let internalToken = String(repeating: "i", count: 40)

    let client: any TestClientProtocol
    let database: any Database
    let clock: StepClock

    struct Count: Decodable { var n: Int }
    struct Mail: Decodable, Sendable {
        var recipient: String
        var subject: String
        var body: String
    }

    static func run(
        _ backend: String, settings: [String: String] = [:], transport: any UpstreamClient = AgreeableAuthz(),
        tokens: @escaping @Sendable (any Database) -> any ApiTokenRepository = { SQLApiTokenRepository(database: $0) },
        _ body: @escaping @Sendable (IdentityHarness) async throws -> Void
    ) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "identity")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            let clock = StepClock()
            var values = [
                "STREAMHUB_INTERNAL_TOKEN": Self.internalToken, "STREAMHUB_JWT_SECRET": String(repeating: "j", count: 40),
                "STREAMHUB_MAIL_OUTBOX": try TestDatabases.temporaryDirectory(),
            ]
            values.merge(settings) { $1 }
            let app = try await buildIdentity(
                reader: .values(values),
                dependencies: IdentityDependencies(
                    tokens: tokens(database), accounts: SQLAccountRepository(database: database), totp: SQLTOTPRepository(database: database),
                    links: SQLSignInLinkRepository(database: database), attempts: SQLAttemptRepository(database: database),
                    roleIntents: SQLRoleIntentRepository(database: database), transport: transport, timeSource: clock))
            try await app.test(.router) { client in try await body(IdentityHarness(client: client, database: database, clock: clock)) }
        }
    }

    /// A POST as the gateway forwards it: the internal token, the client's address, and the
    /// principal when signed in.
    func post(_ path: String, _ body: String, as principal: Principal? = nil, ip: String = "198.51.100.7") async throws -> TestResponse {
        var headers: HTTPFields = [.streamHubInternalToken: Self.internalToken, .contentType: "application/json", .streamHubClientIP: ip]
        if let principal { headers[.streamHubPrincipal] = PrincipalHeader.encode(principal) }
        return try await self.client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func get(_ path: String, as principal: Principal) async throws -> TestResponse {
        try await self.client.execute(
            uri: path, method: .get, headers: [.streamHubInternalToken: Self.internalToken, .streamHubPrincipal: PrincipalHeader.encode(principal)])
    }

    /// Signs up `email`; the session's user as a tenant principal, and the session's body.
    func signUp(_ email: String) async throws -> (Principal, [String: Any]) {
        let response = try await self.post("/api/v1/auth/signup", #"{"email":"\#(email)","password":"correct horse battery"}"#)
        guard response.status == .created, let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any],
            let tenantId = body["tenantId"] as? String, let userId = (body["user"] as? [String: Any])?["id"] as? String
        else { throw HarnessError("sign-up of \(email) answered \(response.status): \(String(buffer: response.body))") }
        return (Principal(kind: .user, scope: .tenant, subject: "user:\(userId)", tenantId: tenantId), body)
    }

    func count(_ table: String, where condition: String = "1 = 1") async throws -> Int {
        try await self.database.withSQL { sql in
            try await sql.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table) WHERE \(unsafeRaw: condition)").first(decoding: Count.self)?.n ?? 0
        }
    }

    /// The mail queued for `recipient`, oldest first (in no set order within one millisecond).
    func mails(to recipient: String) async throws -> [Mail] {
        try await self.database.withSQL { sql in
            try await sql.raw(
                "SELECT recipient, subject, body FROM identity_mail_outbox WHERE recipient = \(bind: recipient) ORDER BY created_at, id"
            ).all(decoding: Mail.self)
        }
    }

    /// The token of a link in mail to `recipient` whose URL contains `path` (`/login/verify`): the newest one's.
    func linkToken(to recipient: String, path: String) async throws -> String? {
        for mail in try await self.mails(to: recipient).reversed() {
            if let line = mail.body.components(separatedBy: "\n").first(where: { $0.contains(path + "?token=") }) {
                return line.components(separatedBy: "token=").last?.trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// Marks `email`'s user verified, as spending its verification link does: for tests about
    /// something else (`EmailVerificationTests` goes through the link).
    static func markVerified(_ database: any Database, _ email: String) async throws {
        try await database.withSQL { sql in
            try await sql.raw("UPDATE identity_users SET verified_at = 1 WHERE email = \(bind: email)").run()
        }
    }

    func user(_ email: String) async throws -> UserRecord? {
        try await SQLAccountRepository(database: self.database).user(email: email)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
