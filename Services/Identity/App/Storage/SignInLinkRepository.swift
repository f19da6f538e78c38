import Foundation
import SQLKit
import ServiceKit
import ServiceStorage

/// The shared limiter of the two endpoints that send mail (`/auth/magic-link`,
/// `/auth/reset-request`): at most `perEmail` per email and `perIP` per client IP within `window`;
/// magic links also wait `cooldown` between two for one email.
public struct MailLimits: Sendable, Equatable {
    public var perEmail: Int
    public var perIP: Int
    public var windowSeconds: Int
    public var cooldownSeconds: Int

    public init(perEmail: Int = 3, perIP: Int = 10, windowSeconds: Int = 900, cooldownSeconds: Int = 60) {
        self.perEmail = perEmail
        self.perIP = perIP
        self.windowSeconds = windowSeconds
        self.cooldownSeconds = cooldownSeconds
    }
}

/// What became of a request for mail.
public enum MailRequestOutcome: Sendable, Equatable {
    /// Counted; the link and the mail (for a known account) are stored.
    case dispatched
    /// Over the limiter: nothing stored, nothing sent (the caller still answers the generic 200).
    case limited
    /// Within the per-email cooldown: 429 with the seconds left.
    case coolingDown(retryAfterSeconds: Int)
}

/// A single-use link (`magic` or `reset`) of a known account, stored by its hash.
public struct LinkToken: Sendable, Equatable {
    public init(hash: String, purpose: String, userId: String, expiresAt: Int64) {
        self.hash = hash
        self.purpose = purpose
        self.userId = userId
        self.expiresAt = expiresAt
    }

    public var hash: String
    public var purpose: String
    public var userId: String
    public var expiresAt: Int64
}

/// A queued message as a dispatcher claimed it: `attempts` counts this one.
public struct ClaimedMail: Sendable, Equatable {
    public var message: OutgoingMail
    public var attempts: Int
}

/// A message waiting in (or sent from) the outbox.
public struct OutgoingMail: Sendable, Equatable {
    public var id: String
    public var recipient: String
    public var subject: String
    public var body: String
    public var createdAt: Int64
}

/// Sign-in links, the mail limiter and the mail outbox, all in the database so every replica
/// agrees (limits exact under concurrency, each mail sent by one replica).
public protocol SignInLinkRepository: Sendable {
    /// Counts a request under the limiter and, when allowed, stores `link` and queues `mail` — one
    /// transaction, serialised with every other such request.
    func request(
        kind: String, email: String, ip: String, at now: Int64, limits: MailLimits, cooldown: Bool, link: LinkToken?, mail: OutgoingMail?
    ) async throws -> MailRequestOutcome
    /// Stores a link and queues its mail, one transaction (a request already counted by ``request``).
    func store(link: LinkToken, mail: OutgoingMail, at now: Int64) async throws
    /// Spends a link: the user it signs in, or nil when it is unknown, spent, expired or for another purpose.
    func consume(hash: String, purpose: String, at now: Int64) async throws -> String?
    /// The user a usable link belongs to, without spending it.
    func peek(hash: String, purpose: String, at now: Int64) async throws -> String?
    /// Claims up to `limit` messages due for delivery (each by one replica, due again a minute later
    /// unless marked sent or failed). Unsent mail created before `notBefore` is given up instead.
    func claimDueMail(at now: Int64, limit: Int, notBefore: Int64) async throws -> [ClaimedMail]
    func markSent(id: String, at now: Int64) async throws
    /// A failed delivery: due again at `retryAt`, or given up (body dropped) when it is nil.
    func markFailed(id: String, retryAt: Int64?, at now: Int64) async throws
}

public struct SQLSignInLinkRepository: SignInLinkRepository {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    struct Count: Decodable { var n: Int }
    struct Latest: Decodable { var latest: Int64? }

    public func request(
        kind: String, email: String, ip: String, at now: Int64, limits: MailLimits, cooldown: Bool, link: LinkToken?, mail: OutgoingMail?
    ) async throws -> MailRequestOutcome {
        try await self.database.transaction { sql in
            try await self.database.lock("identity_mail_requests", in: sql)
            if cooldown {
                let latest = try await sql.raw(
                    "SELECT MAX(created_at) AS latest FROM identity_mail_requests WHERE email = \(bind: email) AND kind = \(bind: kind)"
                ).first(decoding: Latest.self)?.latest
                if let latest, now - latest < Int64(limits.cooldownSeconds) * 1000 {
                    let left = (Int64(limits.cooldownSeconds) * 1000 - (now - latest) + 999) / 1000
                    return .coolingDown(retryAfterSeconds: Int(max(1, left)))
                }
            }
            let since = now - Int64(limits.windowSeconds) * 1000
            let byEmail =
                try await sql.raw("SELECT COUNT(*) AS n FROM identity_mail_requests WHERE email = \(bind: email) AND created_at > \(bind: since)")
                .first(decoding: Count.self)?.n ?? 0
            let byIP =
                try await sql.raw("SELECT COUNT(*) AS n FROM identity_mail_requests WHERE ip = \(bind: ip) AND created_at > \(bind: since)")
                .first(decoding: Count.self)?.n ?? 0
            guard byEmail < limits.perEmail, byIP < limits.perIP else { return .limited }
            try await sql.raw(
                """
                INSERT INTO identity_mail_requests (id, kind, email, ip, created_at) \
                VALUES (\(bind: UUID().uuidString.lowercased()), \(bind: kind), \(bind: email), \(bind: ip), \(bind: now))
                """
            ).run()
            try await Self.insert(link: link, mail: mail, at: now, sql)
            return .dispatched
        }
    }

    public func store(link: LinkToken, mail: OutgoingMail, at now: Int64) async throws {
        try await self.database.transaction { sql in try await Self.insert(link: link, mail: mail, at: now, sql) }
    }

    static func insert(link: LinkToken?, mail: OutgoingMail?, at now: Int64, _ sql: any SQLDatabase) async throws {
        if let link {
            try await sql.raw(
                """
                INSERT INTO identity_link_tokens (token_hash, purpose, user_id, created_at, expires_at, used_at) \
                VALUES (\(bind: link.hash), \(bind: link.purpose), \(bind: link.userId), \(bind: now), \(bind: link.expiresAt), NULL)
                """
            ).run()
        }
        if let mail {
            try await sql.raw(
                """
                INSERT INTO identity_mail_outbox (id, recipient, subject, body, created_at, attempts, next_attempt_at, sent_at) \
                VALUES (\(bind: mail.id), \(bind: mail.recipient), \(bind: mail.subject), \(bind: mail.body), \(bind: now), 0, \(bind: now), NULL)
                """
            ).run()
        }
    }

    struct UserRow: Decodable { var user_id: String }

    public func consume(hash: String, purpose: String, at now: Int64) async throws -> String? {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                UPDATE identity_link_tokens SET used_at = \(bind: now) \
                WHERE token_hash = \(bind: hash) AND purpose = \(bind: purpose) AND used_at IS NULL AND expires_at > \(bind: now) \
                RETURNING user_id
                """
            ).first(decoding: UserRow.self)?.user_id
        }
    }

    public func peek(hash: String, purpose: String, at now: Int64) async throws -> String? {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                SELECT user_id FROM identity_link_tokens \
                WHERE token_hash = \(bind: hash) AND purpose = \(bind: purpose) AND used_at IS NULL AND expires_at > \(bind: now)
                """
            ).first(decoding: UserRow.self)?.user_id
        }
    }

    struct MailRow: Decodable {
        var id: String
        var recipient: String
        var subject: String
        var body: String
        var created_at: Int64
        var attempts: Int
    }

    public func claimDueMail(at now: Int64, limit: Int, notBefore: Int64) async throws -> [ClaimedMail] {
        let skipLocked: SQLQueryString = self.database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await self.database.transaction { sql in
            // Its link has expired: the message is given up, and the link in its body not kept.
            try await sql.raw(
                """
                UPDATE identity_mail_outbox SET failed_at = \(bind: now), body = '' \
                WHERE sent_at IS NULL AND failed_at IS NULL AND created_at < \(bind: notBefore)
                """
            ).run()
            // Claimed rows are due again in a minute: a replica that dies mid-delivery costs a retry, not a loss.
            return try await sql.raw(
                """
                UPDATE identity_mail_outbox SET attempts = attempts + 1, next_attempt_at = \(bind: now + 60_000) \
                WHERE id IN (SELECT id FROM identity_mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL \
                AND next_attempt_at <= \(bind: now) ORDER BY created_at LIMIT \(bind: limit)
                """ + skipLocked + ") RETURNING id, recipient, subject, body, created_at, attempts"
            ).all(decoding: MailRow.self).map {
                ClaimedMail(
                    message: OutgoingMail(id: $0.id, recipient: $0.recipient, subject: $0.subject, body: $0.body, createdAt: $0.created_at),
                    attempts: $0.attempts)
            }
        }
    }

    public func markSent(id: String, at now: Int64) async throws {
        try await self.database.withSQL { sql in
            // The body carries a live link: once delivered it is not kept.
            try await sql.raw("UPDATE identity_mail_outbox SET sent_at = \(bind: now), body = '' WHERE id = \(bind: id)").run()
        }
    }

    public func markFailed(id: String, retryAt: Int64?, at now: Int64) async throws {
        try await self.database.withSQL { sql in
            if let retryAt {
                try await sql.raw("UPDATE identity_mail_outbox SET next_attempt_at = \(bind: retryAt) WHERE id = \(bind: id) AND sent_at IS NULL").run()
            } else {
                try await sql.raw("UPDATE identity_mail_outbox SET failed_at = \(bind: now), body = '' WHERE id = \(bind: id) AND sent_at IS NULL").run()
            }
        }
    }
}
