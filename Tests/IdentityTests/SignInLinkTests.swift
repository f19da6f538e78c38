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
import Testing

@Suite("Sign-in links and the mail limiter")
struct SignInLinkTests {
    static let token = String(repeating: "i", count: 40)

    struct Count: Decodable { var n: Int }

    func withIdentity(
        _ backend: String, _ body: @escaping @Sendable (any TestClientProtocol, any Database, StepClock) async throws -> Void
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
                    tokens: SQLApiTokenRepository(database: database), accounts: SQLAccountRepository(database: database),
                    totp: SQLTOTPRepository(database: database), links: SQLSignInLinkRepository(database: database),
                    attempts: SQLAttemptRepository(database: database), roleIntents: SQLRoleIntentRepository(database: database), transport: AgreeableAuthz(),
                    timeSource: clock))
            try await app.test(.router) { client in try await body(client, database, clock) }
        }
    }

    func post(_ client: some TestClientProtocol, _ path: String, _ body: String, ip: String = "198.51.100.7") async throws -> TestResponse {
        try await client.execute(
            uri: path, method: .post,
            headers: [.streamHubInternalToken: Self.token, .contentType: "application/json", .streamHubClientIP: ip], body: ByteBuffer(string: body))
    }

    func count(_ database: any Database, _ table: String) async throws -> Int {
        try await database.withSQL { sql in try await sql.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table)").first(decoding: Count.self)?.n ?? 0 }
    }

    @Test("100 concurrent requests for one email: exactly 3 links and mails; per IP: exactly 10", arguments: TestDatabases.backends)
    func limiter(backend: String) async throws {
        try await self.withIdentity(backend) { client, database, _ in
            _ = try await self.post(client, "/api/v1/auth/signup", #"{"email":"lim@example.com","password":"correct horse battery"}"#)
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String).self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let response = try await self.post(client, "/api/v1/auth/reset-request", #"{"email":"lim@example.com"}"#, ip: "203.0.113.\(index)")
                        return (response.status, String(buffer: response.body))
                    }
                }
                return try await group.reduce(into: [(HTTPResponse.Status, String)]()) { $0.append($1) }
            }
            // Every caller gets the same generic answer, limited or not.
            #expect(Set(statuses.map(\.0)) == [.ok])
            #expect(Set(statuses.map(\.1)).count == 1)
            // A known account's link and mail are stored after the answer (so its time tells nothing).
            try await Waiting.until(deadline: .seconds(5), "three links") { try await self.count(database, "identity_mail_outbox") == 3 }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await self.count(database, "identity_link_tokens") == 3)
            #expect(try await self.count(database, "identity_mail_outbox") == 3)
            // One IP, many addresses (unknown ones included): 10 counted, the rest limited.
            for index in 0..<20 {
                let response = try await self.post(client, "/api/v1/auth/reset-request", #"{"email":"x\#(index)@example.com"}"#, ip: "192.0.2.1")
                #expect(response.status == .ok)
            }
            let counted = try await database.withSQL { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM identity_mail_requests WHERE ip = '192.0.2.1'").first(decoding: Count.self)?.n ?? 0
            }
            #expect(counted == 10)
        }
    }

    @Test("magic links: a 60 s per-email cooldown (429, Retry-After) that treats known and unknown emails alike", arguments: TestDatabases.backends)
    func cooldown(backend: String) async throws {
        try await self.withIdentity(backend) { client, database, clock in
            _ = try await self.post(client, "/api/v1/auth/signup", #"{"email":"cool@example.com","password":"correct horse battery"}"#)
            try await IdentityHarness.markVerified(database, "cool@example.com")
            var answers: [String: [TestResponse]] = [:]
            for email in ["cool@example.com", "nobody@example.com"] {
                let first = try await self.post(client, "/api/v1/auth/magic-link", #"{"email":"\#(email)"}"#)
                clock.advance(18)
                let second = try await self.post(client, "/api/v1/auth/magic-link", #"{"email":"\#(email)"}"#)
                answers[email] = [first, second]
                clock.advance(-18)
            }
            for email in ["cool@example.com", "nobody@example.com"] {
                let (first, second) = (answers[email]![0], answers[email]![1])
                #expect(first.status == .ok)
                #expect(second.status == .tooManyRequests)
                #expect(
                    String(buffer: second.body)
                        == #"{"statusCode":429,"message":"Please wait 42s before requesting another link.","error":"Too Many Requests","retryAfterSeconds":42}"#)
                #expect(second.headers[.retryAfter] == "42")
            }
            // Known and unknown: the same status, body and headers (but the request id).
            let (known, unknown) = (answers["cool@example.com"]![0], answers["nobody@example.com"]![0])
            #expect(String(buffer: known.body) == String(buffer: unknown.body))
            let names = { (r: TestResponse) in Set(r.headers.map(\.name.canonicalName)) }
            #expect(names(known) == names(unknown))
            // Sign-up's verification mail, and the known account's magic link.
            try await Waiting.until(deadline: .seconds(5), "the known account's mail") { try await self.count(database, "identity_mail_outbox") == 2 }
        }
    }

    /// The link store of a real database whose `store` (known accounts only) waits until released.
    final class HeldLinks: SignInLinkRepository, @unchecked Sendable {
        let inner: SQLSignInLinkRepository
        let lock = NSLock()
        var released = false
        var storing = 0

        init(_ inner: SQLSignInLinkRepository) { self.inner = inner }

        func release() { self.lock.withLock { self.released = true } }
        var storeCalls: Int { self.lock.withLock { self.storing } }

        func store(link: LinkToken, mail: OutgoingMail, at now: Int64) async throws {
            self.lock.withLock { self.storing += 1 }
            let end = ContinuousClock.now + .seconds(20)
            while !self.lock.withLock({ self.released }) && ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(20)) }
            try await self.inner.store(link: link, mail: mail, at: now)
        }

        func request(
            kind: String, email: String, ip: String, at now: Int64, limits: MailLimits, cooldown: Bool, link: LinkToken?, mail: OutgoingMail?
        ) async throws -> MailRequestOutcome {
            try await self.inner.request(kind: kind, email: email, ip: ip, at: now, limits: limits, cooldown: cooldown, link: link, mail: mail)
        }
        func consume(hash: String, purpose: String, at now: Int64) async throws -> String? {
            try await self.inner.consume(hash: hash, purpose: purpose, at: now)
        }
        func peek(hash: String, purpose: String, at now: Int64) async throws -> String? {
            try await self.inner.peek(hash: hash, purpose: purpose, at: now)
        }
        func claimDueMail(at now: Int64, limit: Int, notBefore: Int64) async throws -> [ClaimedMail] {
            try await self.inner.claimDueMail(at: now, limit: limit, notBefore: notBefore)
        }
        func markSent(id: String, at now: Int64) async throws { try await self.inner.markSent(id: id, at: now) }
        func markFailed(id: String, retryAt: Int64?, at now: Int64) async throws {
            try await self.inner.markFailed(id: id, retryAt: retryAt, at: now)
        }
    }

    @Test("reset and magic-link requests answer before a known account's link is stored: the two paths do the same work before the answer")
    func sameWorkBeforeTheAnswer() async throws {
        let location = try await TestDatabases.freshLocation("sqlite", name: "identity")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            let held = HeldLinks(SQLSignInLinkRepository(database: database))
            let app = try await buildIdentity(
                reader: .values([
                    "STREAMHUB_INTERNAL_TOKEN": Self.token, "STREAMHUB_JWT_SECRET": String(repeating: "j", count: 40),
                    "STREAMHUB_MAIL_OUTBOX": try TestDatabases.temporaryDirectory(),
                ]),
                dependencies: IdentityDependencies(
                    tokens: SQLApiTokenRepository(database: database), accounts: SQLAccountRepository(database: database),
                    totp: SQLTOTPRepository(database: database), links: held, attempts: SQLAttemptRepository(database: database), roleIntents: SQLRoleIntentRepository(database: database),
                    transport: AgreeableAuthz(), timeSource: StepClock()))
            try await app.test(.router) { client in
                _ = try await self.post(client, "/api/v1/auth/signup", #"{"email":"known@example.com","password":"correct horse battery"}"#)
                try await IdentityHarness.markVerified(database, "known@example.com")
                // Sign-up's verification link and mail (stored with the limiter's count).
                #expect(try await self.count(database, "identity_link_tokens") == 1)
                for path in ["/api/v1/auth/reset-request", "/api/v1/auth/magic-link"] {
                    let known = try await self.post(client, path, #"{"email":"known@example.com"}"#)
                    let unknown = try await self.post(client, path, #"{"email":"unknown@example.com"}"#)
                    #expect(known.status == .ok && unknown.status == .ok)
                    #expect(String(buffer: known.body) == String(buffer: unknown.body))
                }
                // Both known-account answers came while their stores were still held.
                try await Waiting.until(deadline: .seconds(5), "both stores to start") { held.storeCalls == 2 }
                #expect(try await self.count(database, "identity_link_tokens") == 1)
                held.release()
                try await Waiting.until(deadline: .seconds(5), "both links stored") { try await self.count(database, "identity_link_tokens") == 3 }
                #expect(try await self.count(database, "identity_mail_outbox") == 3)
            }
        }
    }
}

@Suite("Break-glass settings")
struct BreakGlassSettingsTests {
    static let base = ["STREAMHUB_INTERNAL_TOKEN": String(repeating: "i", count: 40), "STREAMHUB_JWT_SECRET": String(repeating: "j", count: 40)]

    func message(_ extra: [String: String]) -> String? {
        do {
            _ = try IdentityConfiguration(reader: .values(Self.base.merging(extra) { _, new in new }))
            return nil
        } catch let error as ConfigurationError {
            return error.message
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test("ADMIN_PASS shorter than 12 characters, or one of the pair alone, stops start-up; unset is disabled")
    func settings() throws {
        #expect(self.message(["ADMIN_USER": "ops", "ADMIN_PASS": "short-pass"]) == "ADMIN_PASS must be at least 12 characters long (got 10)")
        #expect(self.message(["ADMIN_USER": "ops"]) == "ADMIN_USER and ADMIN_PASS are set together or not at all")
        #expect(self.message(["ADMIN_USER": "ops", "ADMIN_PASS": "long enough passphrase"]) == nil)
        #expect(try IdentityConfiguration(reader: .values(Self.base)).breakGlass == nil)
    }
}
