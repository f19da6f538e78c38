import Foundation
import Logging
import SQLKit
import ServiceKit
import ServiceStorage
import Shared
import TestSupport
import Testing

@testable import IdentityApp

/// A transport that fails as it is told and records what it was asked to send.
final class ScriptedTransport: MailTransport, @unchecked Sendable {
    let lock = NSLock()
    var failure: (any Error)?
    var delivered: [String] = []

    init(failure: (any Error)?) { self.failure = failure }

    func deliver(_ mail: OutgoingMail, from: String) async throws {
        try self.lock.withLock {
            if let failure = self.failure { throw failure }
            self.delivered.append(mail.id)
        }
    }
}

@Suite("Mail delivery: retries, refusals, expiry, the message text, SMTP settings")
struct MailDeliveryTests {
    struct Row: Decodable {
        var attempts: Int
        var next_attempt_at: Int64
        var sent_at: Int64?
        var failed_at: Int64?
        var body: String
    }

    func queue(_ links: SQLSignInLinkRepository, id: String, createdAt: Int64) async throws {
        _ = try await links.request(
            kind: "magic", email: "\(id)@example.com", ip: "198.51.100.1", at: createdAt,
            limits: MailLimits(perEmail: 10, perIP: 10, windowSeconds: 900, cooldownSeconds: 0), cooldown: false, link: nil,
            mail: OutgoingMail(id: id, recipient: "\(id)@example.com", subject: "s", body: "https://x/login/magic?token=t", createdAt: createdAt))
    }

    func row(_ database: any Database, _ id: String) async throws -> Row {
        try #require(
            try await database.withSQL { sql in
                try await sql.raw("SELECT attempts, next_attempt_at, sent_at, failed_at, body FROM identity_mail_outbox WHERE id = \(bind: id)")
                    .first(decoding: Row.self)
            })
    }

    func withLinks(_ backend: String, _ body: @escaping @Sendable (SQLSignInLinkRepository, any Database) async throws -> Void) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "identity")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            try await body(SQLSignInLinkRepository(database: database), database)
        }
    }

    @Test("a transient failure is retried 5 s later, then 10 s; a delivery marks it sent and drops the link", arguments: TestDatabases.backends)
    func transientThenSent(backend: String) async throws {
        try await self.withLinks(backend) { links, database in
            try await self.queue(links, id: "transient", createdAt: Timestamp.millis(Date()))
            let transport = ScriptedTransport(failure: SMTPFailure(description: "451 try later", permanent: false))
            let dispatcher = MailDispatcher(links: links, transport: transport, from: "a@b.c", logger: TestDatabases.logger)
            // The pause is counted from the failure: between the clock before and after the delivery attempt.
            var before = Timestamp.millis(Date())
            await dispatcher.deliverDue()
            var after = Timestamp.millis(Date())
            var state = try await self.row(database, "transient")
            #expect(state.attempts == 1 && state.sent_at == nil && state.failed_at == nil)
            #expect((before + 5_000...after + 5_000).contains(state.next_attempt_at), "retry at +\(state.next_attempt_at - before) ms")
            // Not due yet: nothing is claimed.
            await dispatcher.deliverDue()
            #expect(try await self.row(database, "transient").attempts == 1)
            try await database.withSQL { sql in try await sql.raw("UPDATE identity_mail_outbox SET next_attempt_at = 0").run() }
            before = Timestamp.millis(Date())
            await dispatcher.deliverDue()
            after = Timestamp.millis(Date())
            state = try await self.row(database, "transient")
            #expect(state.attempts == 2)
            #expect((before + 10_000...after + 10_000).contains(state.next_attempt_at), "second retry at +\(state.next_attempt_at - before) ms")
            transport.lock.withLock { transport.failure = nil }
            try await database.withSQL { sql in try await sql.raw("UPDATE identity_mail_outbox SET next_attempt_at = 0").run() }
            await dispatcher.deliverDue()
            state = try await self.row(database, "transient")
            #expect(state.sent_at != nil && state.body.isEmpty && state.failed_at == nil)
            #expect(transport.lock.withLock { transport.delivered } == ["transient"])
        }
    }

    @Test("a permanent refusal (5xx) is not retried and its link is dropped", arguments: TestDatabases.backends)
    func permanentRefusal(backend: String) async throws {
        try await self.withLinks(backend) { links, database in
            try await self.queue(links, id: "refused", createdAt: Timestamp.millis(Date()))
            let transport = ScriptedTransport(failure: SMTPFailure(description: "550 no such user", permanent: true))
            let dispatcher = MailDispatcher(links: links, transport: transport, from: "a@b.c", logger: TestDatabases.logger)
            await dispatcher.deliverDue()
            try await database.withSQL { sql in try await sql.raw("UPDATE identity_mail_outbox SET next_attempt_at = 0").run() }
            await dispatcher.deliverDue()
            let state = try await self.row(database, "refused")
            #expect(state.attempts == 1 && state.failed_at != nil && state.sent_at == nil && state.body.isEmpty)
        }
    }

    @Test("mail whose link has expired is given up, not sent", arguments: TestDatabases.backends)
    func expiredIsGivenUp(backend: String) async throws {
        try await self.withLinks(backend) { links, database in
            let now = Timestamp.millis(Date())
            try await self.queue(links, id: "stale", createdAt: now - 16 * 60 * 1000)
            try await self.queue(links, id: "fresh", createdAt: now - 14 * 60 * 1000)
            let transport = ScriptedTransport(failure: nil)
            await MailDispatcher(links: links, transport: transport, from: "a@b.c", logger: TestDatabases.logger).deliverDue()
            #expect(transport.lock.withLock { transport.delivered } == ["fresh"])
            let stale = try await self.row(database, "stale")
            #expect(stale.failed_at != nil && stale.sent_at == nil && stale.body.isEmpty && stale.attempts == 0)
        }
    }

    @Test("the message: CRLF lines, RFC 5322 date, dot-stuffed body, bare envelope address")
    func messageText() {
        let mail = OutgoingMail(id: "m1", recipient: "to@example.com", subject: "Hi", body: "line one\n.leading dot\n..two\nend", createdAt: 0)
        let text = MailMessage.render(mail, from: "StreamHub <no-reply@example.com>")
        #expect(text.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"))
        #expect(text.contains("\r\n\r\nline one\r\n.leading dot\r\n..two\r\nend\r\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        let stuffed = MailMessage.dotStuffed(text)
        #expect(stuffed.contains("\r\n..leading dot\r\n...two\r\n"))
        #expect(stuffed.hasSuffix("end\r\n"))
        #expect(MailMessage.address(of: "StreamHub <no-reply@example.com>") == "no-reply@example.com")
        #expect(MailMessage.address(of: " plain@example.com ") == "plain@example.com")
    }

    @Test("SMTP settings: defaults per security mode, and every half-set or bad value refused at start")
    func settings() throws {
        let base = ["STREAMHUB_INTERNAL_TOKEN": String(repeating: "i", count: 40), "STREAMHUB_JWT_SECRET": String(repeating: "j", count: 40)]
        func configuration(_ extra: [String: String]) throws -> IdentityConfiguration {
            try IdentityConfiguration(reader: .values(base.merging(extra) { _, new in new }))
        }
        #expect(try configuration([:]).smtp == nil)
        let starttls = try #require(try configuration(["SMTP_HOST": "mail.example.com"]).smtp)
        #expect(starttls.port == 587 && starttls.security == .starttls && starttls.username == nil)
        #expect(try configuration(["SMTP_HOST": "mail.example.com", "SMTP_SECURITY": "tls"]).smtp?.port == 465)
        #expect(try configuration(["SMTP_HOST": "relay", "SMTP_SECURITY": "none", "SMTP_PORT": "2525"]).smtp?.port == 2525)
        for bad in [
            ["SMTP_PORT": "25"],
            ["SMTP_HOST": "mail.example.com", "SMTP_SECURITY": "ssl"],
            ["SMTP_HOST": "mail.example.com", "SMTP_USERNAME": "u"],
            ["SMTP_HOST": "mail.example.com", "SMTP_PASSWORD": "p"],
            ["SMTP_HOST": "mail.example.com", "SMTP_PORT": "70000"],
            ["SMTP_HOST": "mail.example.com", "SMTP_CA_FILE": "/nonexistent/ca.pem"],
        ] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try configuration(bad) }
        }
    }
}
