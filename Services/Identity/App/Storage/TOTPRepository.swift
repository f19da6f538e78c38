import Foundation
import SQLKit
import ServiceKit
import ServiceStorage

/// A user's TOTP: the sealed secret, whether it is confirmed (then required at sign-in), and the
/// last time step accepted (no code is accepted twice).
public struct TOTPRecord: Sendable, Equatable {
    public var userId: String
    public var sealedSecret: String
    public var confirmedAt: Int64?
    public var lastStep: Int64
}

/// TOTP enrolments and recovery codes (stored as SHA-256 hashes, single use).
public protocol TOTPRepository: Sendable {
    func record(userId: String) async throws -> TOTPRecord?
    /// Starts (or restarts) an enrolment. - Throws: ``StorageError/conflict(_:)`` when TOTP is already on.
    func enroll(userId: String, sealedSecret: String) async throws
    /// Turns TOTP on with the step of the confirming code and the recovery codes' hashes; false when
    /// there is no pending enrolment or that step was used.
    func confirm(userId: String, step: Int64, recoveryHashes: [String], at: Int64) async throws -> Bool
    /// Records `step` as used; false when it (or a later one) was used already.
    func use(userId: String, step: Int64) async throws -> Bool
    /// Spends a recovery code; false when it is unknown or spent.
    func useRecoveryCode(userId: String, hash: String, at: Int64) async throws -> Bool
    func replaceRecoveryCodes(userId: String, hashes: [String]) async throws
    func disable(userId: String) async throws
}

public struct SQLTOTPRepository: TOTPRepository {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    struct Row: Decodable {
        var user_id: String
        var secret_sealed: String
        var confirmed_at: Int64?
        var last_step: Int64
    }

    public func record(userId: String) async throws -> TOTPRecord? {
        try await self.database.withSQL { sql in
            try await sql.raw("SELECT user_id, secret_sealed, confirmed_at, last_step FROM identity_totp WHERE user_id = \(bind: userId)")
                .first(decoding: Row.self).map {
                    TOTPRecord(userId: $0.user_id, sealedSecret: $0.secret_sealed, confirmedAt: $0.confirmed_at, lastStep: $0.last_step)
                }
        }
    }

    public func enroll(userId: String, sealedSecret: String) async throws {
        try await self.database.transaction { sql in
            let existing = try await sql.raw("SELECT user_id, secret_sealed, confirmed_at, last_step FROM identity_totp WHERE user_id = \(bind: userId)")
                .first(decoding: Row.self)
            if existing?.confirmed_at != nil { throw StorageError.conflict("TOTP is already enabled; disable it first") }
            try await sql.raw("DELETE FROM identity_totp WHERE user_id = \(bind: userId)").run()
            try await sql.raw(
                "INSERT INTO identity_totp (user_id, secret_sealed, confirmed_at, last_step) VALUES (\(bind: userId), \(bind: sealedSecret), NULL, 0)"
            ).run()
        }
    }

    public func confirm(userId: String, step: Int64, recoveryHashes: [String], at: Int64) async throws -> Bool {
        try await self.database.transaction { sql in
            let updated = try await sql.raw(
                """
                UPDATE identity_totp SET confirmed_at = \(bind: at), last_step = \(bind: step) \
                WHERE user_id = \(bind: userId) AND confirmed_at IS NULL AND last_step < \(bind: step) RETURNING user_id
                """
            ).all()
            guard !updated.isEmpty else { return false }
            try await Self.replaceCodes(sql, userId: userId, hashes: recoveryHashes)
            return true
        }
    }

    public func use(userId: String, step: Int64) async throws -> Bool {
        try await self.database.withSQL { sql in
            !(try await sql.raw(
                """
                UPDATE identity_totp SET last_step = \(bind: step) \
                WHERE user_id = \(bind: userId) AND confirmed_at IS NOT NULL AND last_step < \(bind: step) RETURNING user_id
                """
            ).all()).isEmpty
        }
    }

    public func useRecoveryCode(userId: String, hash: String, at: Int64) async throws -> Bool {
        try await self.database.withSQL { sql in
            !(try await sql.raw(
                """
                UPDATE identity_recovery_codes SET used_at = \(bind: at) \
                WHERE user_id = \(bind: userId) AND code_hash = \(bind: hash) AND used_at IS NULL RETURNING user_id
                """
            ).all()).isEmpty
        }
    }

    public func replaceRecoveryCodes(userId: String, hashes: [String]) async throws {
        try await self.database.transaction { sql in try await Self.replaceCodes(sql, userId: userId, hashes: hashes) }
    }

    static func replaceCodes(_ sql: any SQLDatabase, userId: String, hashes: [String]) async throws {
        try await sql.raw("DELETE FROM identity_recovery_codes WHERE user_id = \(bind: userId)").run()
        for hash in hashes {
            try await sql.raw("INSERT INTO identity_recovery_codes (user_id, code_hash, used_at) VALUES (\(bind: userId), \(bind: hash), NULL)").run()
        }
    }

    public func disable(userId: String) async throws {
        try await self.database.transaction { sql in
            try await sql.raw("DELETE FROM identity_recovery_codes WHERE user_id = \(bind: userId)").run()
            try await sql.raw("DELETE FROM identity_totp WHERE user_id = \(bind: userId)").run()
        }
    }
}
