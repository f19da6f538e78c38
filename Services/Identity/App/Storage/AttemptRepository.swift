import Foundation
import SQLKit
import ServiceKit
import ServiceStorage

/// What a run of failures is counted against.
public enum AttemptSubject: Sendable, Hashable {
    /// Wrong second-factor codes of one account (every path: password login, magic link).
    case secondFactor(userId: String)
    /// Wrong second-factor codes presented with one magic link (keyed by the link's hash).
    case link(hash: String)
    /// Failed logins from one client address (the opt-in login throttle).
    case loginAddress(String)
    /// Failed logins naming one email address, known or not (the opt-in login throttle).
    case loginAccount(String)
    /// Sign-ups from one client address (every attempt counts).
    case signupAddress(String)
    /// Sign-ups naming one email address (every attempt counts).
    case signupEmail(String)

    var kind: String {
        switch self {
        case .secondFactor: "second-factor"
        case .link: "link"
        case .loginAddress: "login-ip"
        case .loginAccount: "login-email"
        case .signupAddress: "signup-ip"
        case .signupEmail: "signup-email"
        }
    }

    var key: String {
        switch self {
        case .secondFactor(let id): id
        case .link(let hash): hash
        case .loginAddress(let address): address
        case .loginAccount(let email): email
        case .signupAddress(let address): address
        case .signupEmail(let email): email
        }
    }
}

/// A limit on failures: at most `maxFailures` within `windowSeconds`.
public struct FailureLimit: Sendable, Equatable {
    public var maxFailures: Int
    public var windowSeconds: Int

    public init(maxFailures: Int, windowSeconds: Int) {
        self.maxFailures = maxFailures
        self.windowSeconds = windowSeconds
    }
}

/// The limits on guessing at sign-in. Second-factor codes: `secondFactor` per account (default 5
/// wrong codes per 15 min, then 429 until the window moves on) and `perLink` per magic link (3
/// wrong codes spend it). Passwords: the opt-in throttle, off unless configured (the contract's
/// login has none: hashing cost and TOTP carry it).
public struct SignInLimits: Sendable, Equatable {
    public var secondFactor: FailureLimit
    public var perLink: FailureLimit
    public var loginPerIP: FailureLimit?
    public var loginPerEmail: FailureLimit?
    /// Sign-ups per client address and per email within the window (every attempt counts); nil: off.
    public var signupPerIP: FailureLimit?
    public var signupPerEmail: FailureLimit?

    public init(
        secondFactor: FailureLimit = FailureLimit(maxFailures: 5, windowSeconds: 900), perLink: FailureLimit = FailureLimit(maxFailures: 3, windowSeconds: 900),
        loginPerIP: FailureLimit? = nil, loginPerEmail: FailureLimit? = nil,
        signupPerIP: FailureLimit? = FailureLimit(maxFailures: 10, windowSeconds: 3600),
        signupPerEmail: FailureLimit? = FailureLimit(maxFailures: 3, windowSeconds: 3600)
    ) {
        self.secondFactor = secondFactor
        self.perLink = perLink
        self.loginPerIP = loginPerIP
        self.loginPerEmail = loginPerEmail
        self.signupPerIP = signupPerIP
        self.signupPerEmail = signupPerEmail
    }
}

/// Whether an attempt may go ahead.
public enum AttemptAdmission: Sendable, Equatable {
    /// Counted as a failure until ``AttemptRepository/forgive(_:)`` takes it back: concurrent
    /// guesses cannot get past the limit between the check and the outcome.
    case admitted(reservation: [String])
    /// Over the limit: no attempt, and the seconds until the oldest counted failure leaves the window.
    case refused(retryAfterSeconds: Int)
}

/// Failure counts kept in the database so every replica agrees; rows older than their window are
/// dropped as new ones arrive.
public protocol AttemptRepository: Sendable {
    /// Admits one attempt against every subject under its limit (all or none), reserving a failure
    /// for each; refused when any subject is at its limit.
    func admit(_ subjects: [(AttemptSubject, FailureLimit)], at now: Int64) async throws -> AttemptAdmission
    /// The attempt succeeded (or was not a guess): its reserved failures are taken back.
    func forgive(_ reservation: [String]) async throws
    /// How many failures `subject` has within `limit`'s window.
    func failures(_ subject: AttemptSubject, limit: FailureLimit, at now: Int64) async throws -> Int
}

public struct SQLAttemptRepository: AttemptRepository {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    struct Row: Decodable {
        var n: Int
        var oldest: Int64?
    }

    public func admit(_ subjects: [(AttemptSubject, FailureLimit)], at now: Int64) async throws -> AttemptAdmission {
        guard !subjects.isEmpty else { return .admitted(reservation: []) }
        return try await self.database.transaction { sql in
            try await self.database.lock("identity_attempts", in: sql)
            // Now and then, rows past the longest window anyone may configure (a day) go, whatever
            // their subject (a subject's own old rows go whenever it is counted again).
            if Int.random(in: 0..<64) == 0 {
                try await sql.raw("DELETE FROM identity_attempts WHERE created_at <= \(bind: now - 86_400_000)").run()
            }
            var refusal = 0
            for (subject, limit) in subjects {
                let since = now - Int64(limit.windowSeconds) * 1000
                try await sql.raw(
                    "DELETE FROM identity_attempts WHERE kind = \(bind: subject.kind) AND subject = \(bind: subject.key) AND created_at <= \(bind: since)"
                ).run()
                let row = try await sql.raw(
                    """
                    SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM identity_attempts \
                    WHERE kind = \(bind: subject.kind) AND subject = \(bind: subject.key)
                    """
                ).first(decoding: Row.self)
                if let row, row.n >= limit.maxFailures {
                    let left = ((row.oldest ?? now) + Int64(limit.windowSeconds) * 1000 - now + 999) / 1000
                    refusal = max(refusal, Int(max(1, left)))
                }
            }
            if refusal > 0 { return .refused(retryAfterSeconds: refusal) }
            var reservation: [String] = []
            for (subject, _) in subjects {
                let id = UUID().uuidString.lowercased()
                try await sql.raw(
                    """
                    INSERT INTO identity_attempts (id, kind, subject, created_at) \
                    VALUES (\(bind: id), \(bind: subject.kind), \(bind: subject.key), \(bind: now))
                    """
                ).run()
                reservation.append(id)
            }
            return .admitted(reservation: reservation)
        }
    }

    public func forgive(_ reservation: [String]) async throws {
        guard !reservation.isEmpty else { return }
        try await self.database.withSQL { sql in
            for id in reservation {
                try await sql.raw("DELETE FROM identity_attempts WHERE id = \(bind: id)").run()
            }
        }
    }

    public func failures(_ subject: AttemptSubject, limit: FailureLimit, at now: Int64) async throws -> Int {
        let since = now - Int64(limit.windowSeconds) * 1000
        return try await self.database.withSQL { sql in
            try await sql.raw(
                """
                SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM identity_attempts \
                WHERE kind = \(bind: subject.kind) AND subject = \(bind: subject.key) AND created_at > \(bind: since)
                """
            ).first(decoding: Row.self)?.n ?? 0
        }
    }
}
