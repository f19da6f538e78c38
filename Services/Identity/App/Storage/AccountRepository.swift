import Foundation
import SQLKit
import ServiceKit
import ServiceStorage
import Shared

/// A stored user. The password is kept only as a bcrypt hash of its SHA-256 (see ``PasswordHasher``).
public struct UserRecord: Sendable, Equatable {
    public var id: String
    /// Normalised (trimmed, lower-case); unique.
    public var email: String
    public var name: String?
    public var passwordHash: String
    public var superadmin: Bool
    public var disabledAt: Int64?
    /// Sessions issued before this (epoch seconds) are revoked: logout, password change, disabling.
    public var sessionsNotBefore: Int64
    public var createdAt: Int64
    /// When the user proved the address (a verification, reset or invitation link spent); nil until then.
    public var verifiedAt: Int64?

    public var summary: UserSummary {
        UserSummary(
            id: self.id, email: self.email, name: self.name, superadmin: self.superadmin, disabled: self.disabledAt != nil,
            createdAt: Timestamp.iso8601(Timestamp.date(millis: self.createdAt)), emailVerified: self.verifiedAt != nil)
    }
}

/// A stored tenant with its quotas.
public struct TenantRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var ownerId: String
    public var quotas: TenantQuotas
    public var createdAt: Int64

    public var summary: TenantSummary {
        TenantSummary(
            id: self.id, name: self.name, ownerId: self.ownerId, quotas: self.quotas, createdAt: Timestamp.iso8601(Timestamp.date(millis: self.createdAt)))
    }
}

/// Users, tenants and who belongs where.
public protocol AccountRepository: Sendable {
    /// Stores a new user with the tenant they own, in one transaction; `beforeCommit` runs inside
    /// it (sign-up assigns the owner role in authz there), and the role intent `clearing` is taken
    /// back in it, so either all of it holds or the intent is left to undo the grant.
    /// - Throws: ``StorageError/conflict(_:)`` when the email is taken.
    func create(user: UserRecord, tenant: TenantRecord, clearing intent: String?, beforeCommit: @escaping @Sendable () async throws -> Void)
        async throws
    func user(email: String) async throws -> UserRecord?
    func user(id: String) async throws -> UserRecord?
    /// Revokes every session of `userId` issued before `notBefore` (never moves it back).
    func endSessions(userId: String, notBefore: Int64) async throws
    /// The tenants `userId` belongs to, in the order they joined.
    func tenants(of userId: String) async throws -> [TenantRecord]
    func tenant(id: String) async throws -> TenantRecord?
    /// Every tenant, in creation order, after the tenant `after`.
    func tenants(after: String?, limit: Int) async throws -> [TenantRecord]
    /// Renames a tenant and/or replaces its quotas; nil when there is no such tenant.
    func updateTenant(id: String, name: String?, quotas: TenantQuotas?) async throws -> TenantRecord?
    /// A tenant's members with the time they joined, in that order.
    func members(of tenantId: String) async throws -> [(user: UserRecord, joinedAt: Int64)]
    /// Adds `userId` to `tenantId` unless it already has `limit` members (checked and written
    /// atomically); false when they were a member already.
    /// - Throws: ``StorageError/quotaExceeded(_:)`` naming `maxMembers`.
    func addMember(tenantId: String, userId: String, limit: Int, at: Int64) async throws -> Bool
    func removeMember(tenantId: String, userId: String) async throws -> Bool
    /// Every user, in creation order, after the user `after`.
    func users(after: String?, limit: Int) async throws -> [UserRecord]
    /// Sets a new password hash and ends every session issued before `sessionsNotBefore`.
    func setPassword(userId: String, hash: String, sessionsNotBefore: Int64) async throws
    /// Disables (ending every session) or re-enables a user; nil when there is no such user.
    func setDisabled(userId: String, disabled: Bool, at: Int64) async throws -> UserRecord?
    /// Records that the user proved their address (kept at the first time).
    func markVerified(userId: String, at: Int64) async throws
}

/// Accounts in identity's SQL store (SQLite or PostgreSQL).
public struct SQLAccountRepository: AccountRepository {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    struct UserRow: Decodable {
        var id: String
        var email: String
        var name: String?
        var password_hash: String
        var superadmin: Bool
        var disabled_at: Int64?
        var sessions_not_before: Int64
        var created_at: Int64
        var verified_at: Int64?

        var record: UserRecord {
            UserRecord(
                id: self.id, email: self.email, name: self.name, passwordHash: self.password_hash, superadmin: self.superadmin,
                disabledAt: self.disabled_at, sessionsNotBefore: self.sessions_not_before, createdAt: self.created_at, verifiedAt: self.verified_at)
        }
    }

    struct TenantRow: Decodable {
        var id: String
        var name: String
        var owner_id: String
        var max_apps: Int
        var max_concurrent_streams: Int
        var max_members: Int
        var max_tokens: Int
        var created_at: Int64

        var record: TenantRecord {
            TenantRecord(
                id: self.id, name: self.name, ownerId: self.owner_id,
                quotas: TenantQuotas(
                    maxApps: self.max_apps, maxConcurrentStreams: self.max_concurrent_streams, maxMembers: self.max_members, maxTokens: self.max_tokens),
                createdAt: self.created_at)
        }
    }

    static let userColumns = "id, email, name, password_hash, superadmin, disabled_at, sessions_not_before, created_at, verified_at"
    static let tenantColumns = "t.id, t.name, t.owner_id, t.max_apps, t.max_concurrent_streams, t.max_members, t.max_tokens, t.created_at"

    public func create(
        user: UserRecord, tenant: TenantRecord, clearing intent: String?, beforeCommit: @escaping @Sendable () async throws -> Void
    ) async throws {
        try await self.database.transaction { sql in
            try await self.insertUser(sql, user)
            let q = tenant.quotas
            try await sql.raw(
                """
                INSERT INTO identity_tenants (id, name, owner_id, max_apps, max_concurrent_streams, max_members, max_tokens, created_at) \
                VALUES (\(bind: tenant.id), \(bind: tenant.name), \(bind: tenant.ownerId), \(bind: q.maxApps), \(bind: q.maxConcurrentStreams), \
                \(bind: q.maxMembers), \(bind: q.maxTokens), \(bind: tenant.createdAt))
                """
            ).run()
            try await sql.raw(
                "INSERT INTO identity_memberships (tenant_id, user_id, created_at) VALUES (\(bind: tenant.id), \(bind: user.id), \(bind: tenant.createdAt))"
            ).run()
            if let intent { try await SQLRoleIntentRepository.clear(id: intent, in: sql) }
            try await beforeCommit()
        }
    }

    public func user(email: String) async throws -> UserRecord? {
        try await self.database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: Self.userColumns) FROM identity_users WHERE email = \(bind: email)").first(decoding: UserRow.self)?
                .record
        }
    }

    public func user(id: String) async throws -> UserRecord? {
        try await self.database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: Self.userColumns) FROM identity_users WHERE id = \(bind: id)").first(decoding: UserRow.self)?.record
        }
    }

    public func endSessions(userId: String, notBefore: Int64) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                UPDATE identity_users SET sessions_not_before = \(bind: notBefore) \
                WHERE id = \(bind: userId) AND sessions_not_before < \(bind: notBefore)
                """
            ).run()
        }
    }

    /// `AND (created_at, id) > the cursor's` for keyset pages, or nothing.
    static func after(_ id: String?, table: String, alias: String) -> SQLQueryString {
        guard let id else { return "" }
        return """
             AND (\(unsafeRaw: alias).created_at > (SELECT created_at FROM \(unsafeRaw: table) WHERE id = \(bind: id)) \
            OR (\(unsafeRaw: alias).created_at = (SELECT created_at FROM \(unsafeRaw: table) WHERE id = \(bind: id)) AND \(unsafeRaw: alias).id > \(bind: id)))
            """
    }

    public func tenants(after: String?, limit: Int) async throws -> [TenantRecord] {
        try await self.database.withSQL { sql in
            try await sql.raw(
                "SELECT \(unsafeRaw: Self.tenantColumns) FROM identity_tenants t WHERE 1 = 1"
                    + Self.after(after, table: "identity_tenants", alias: "t") + " ORDER BY t.created_at, t.id LIMIT \(bind: limit)"
            ).all(decoding: TenantRow.self).map(\.record)
        }
    }

    public func updateTenant(id: String, name: String?, quotas: TenantQuotas?) async throws -> TenantRecord? {
        try await self.database.transaction { sql in
            if let name {
                try await sql.raw("UPDATE identity_tenants SET name = \(bind: name) WHERE id = \(bind: id)").run()
            }
            if let q = quotas {
                try await sql.raw(
                    """
                    UPDATE identity_tenants SET max_apps = \(bind: q.maxApps), max_concurrent_streams = \(bind: q.maxConcurrentStreams), \
                    max_members = \(bind: q.maxMembers), max_tokens = \(bind: q.maxTokens) WHERE id = \(bind: id)
                    """
                ).run()
            }
            return try await sql.raw("SELECT \(unsafeRaw: Self.tenantColumns) FROM identity_tenants t WHERE t.id = \(bind: id)")
                .first(decoding: TenantRow.self)?.record
        }
    }

    public func members(of tenantId: String) async throws -> [(user: UserRecord, joinedAt: Int64)] {
        let rows = try await self.database.withSQL { sql in
            try await sql.raw(
                """
                SELECT u.id, u.email, u.name, u.password_hash, u.superadmin, u.disabled_at, u.sessions_not_before, u.created_at, \
                m.created_at AS joined_at FROM identity_memberships m JOIN identity_users u ON u.id = m.user_id \
                WHERE m.tenant_id = \(bind: tenantId) ORDER BY m.created_at, u.id
                """
            ).all()
        }
        // One row, two readings: the user's columns and the membership's time.
        return try rows.map { row in (try row.decode(model: UserRow.self).record, try row.decode(column: "joined_at", as: Int64.self)) }
    }

    public func addMember(tenantId: String, userId: String, limit: Int, at: Int64) async throws -> Bool {
        try await self.database.transaction { sql in
            try await self.insertMembership(sql, tenantId: tenantId, userId: userId, limit: limit, at: at)
        }
    }

    /// Stores a new user; `conflict` when the email is taken.
    func insertUser(_ sql: any SQLDatabase, _ user: UserRecord) async throws {
        let taken = try await sql.raw("SELECT id FROM identity_users WHERE email = \(bind: user.email)").all()
        guard taken.isEmpty else { throw StorageError.conflict("An account with this email already exists") }
        try await sql.raw(
            """
            INSERT INTO identity_users (\(unsafeRaw: Self.userColumns)) VALUES (\(bind: user.id), \(bind: user.email), \(bind: user.name), \
            \(bind: user.passwordHash), \(bind: user.superadmin), \(bind: user.disabledAt), \(bind: user.sessionsNotBefore), \(bind: user.createdAt), \
            \(bind: user.verifiedAt))
            """
        ).run()
    }

    /// Under the tenant's membership lock, so the member quota is exact under concurrency.
    func insertMembership(_ sql: any SQLDatabase, tenantId: String, userId: String, limit: Int, at: Int64) async throws -> Bool {
        try await self.database.lock("identity_memberships:" + tenantId, in: sql)
        let existing = try await sql.raw(
            "SELECT user_id FROM identity_memberships WHERE tenant_id = \(bind: tenantId) AND user_id = \(bind: userId)"
        ).all()
        guard existing.isEmpty else { return false }
        struct Count: Decodable { var n: Int }
        let count =
            try await sql.raw("SELECT COUNT(*) AS n FROM identity_memberships WHERE tenant_id = \(bind: tenantId)").first(decoding: Count.self)?.n ?? 0
        guard count < limit else {
            throw StorageError.quotaExceeded("Quota maxMembers (\(limit)) reached: remove a member or raise the tenant's quota")
        }
        try await sql.raw(
            "INSERT INTO identity_memberships (tenant_id, user_id, created_at) VALUES (\(bind: tenantId), \(bind: userId), \(bind: at))"
        ).run()
        return true
    }

    public func removeMember(tenantId: String, userId: String) async throws -> Bool {
        try await self.database.withSQL { sql in
            !(try await sql.raw(
                "DELETE FROM identity_memberships WHERE tenant_id = \(bind: tenantId) AND user_id = \(bind: userId) RETURNING user_id"
            ).all()).isEmpty
        }
    }

    public func users(after: String?, limit: Int) async throws -> [UserRecord] {
        try await self.database.withSQL { sql in
            try await sql.raw(
                "SELECT \(unsafeRaw: Self.userColumns) FROM identity_users u WHERE 1 = 1"
                    + Self.after(after, table: "identity_users", alias: "u") + " ORDER BY u.created_at, u.id LIMIT \(bind: limit)"
            ).all(decoding: UserRow.self).map(\.record)
        }
    }

    public func setPassword(userId: String, hash: String, sessionsNotBefore: Int64) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                UPDATE identity_users SET password_hash = \(bind: hash), \
                sessions_not_before = CASE WHEN sessions_not_before < \(bind: sessionsNotBefore) THEN \(bind: sessionsNotBefore) ELSE sessions_not_before END \
                WHERE id = \(bind: userId)
                """
            ).run()
        }
    }

    public func markVerified(userId: String, at: Int64) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw("UPDATE identity_users SET verified_at = \(bind: at) WHERE id = \(bind: userId) AND verified_at IS NULL").run()
        }
    }

    public func setDisabled(userId: String, disabled: Bool, at: Int64) async throws -> UserRecord? {
        try await self.database.withSQL { sql in
            if disabled {
                // Disabling ends every session issued until now, and keeps the first disabling time.
                let notBefore = at / 1000 + 1
                try await sql.raw(
                    """
                    UPDATE identity_users SET disabled_at = COALESCE(disabled_at, \(bind: at)), \
                    sessions_not_before = CASE WHEN sessions_not_before < \(bind: notBefore) THEN \(bind: notBefore) ELSE sessions_not_before END \
                    WHERE id = \(bind: userId)
                    """
                ).run()
            } else {
                try await sql.raw("UPDATE identity_users SET disabled_at = NULL WHERE id = \(bind: userId)").run()
            }
            return try await sql.raw("SELECT \(unsafeRaw: Self.userColumns) FROM identity_users WHERE id = \(bind: userId)").first(decoding: UserRow.self)?
                .record
        }
    }

    public func tenant(id: String) async throws -> TenantRecord? {
        try await self.database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: Self.tenantColumns) FROM identity_tenants t WHERE t.id = \(bind: id)").first(decoding: TenantRow.self)?
                .record
        }
    }

    public func tenants(of userId: String) async throws -> [TenantRecord] {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.tenantColumns) FROM identity_tenants t JOIN identity_memberships m ON m.tenant_id = t.id \
                WHERE m.user_id = \(bind: userId) ORDER BY m.created_at, t.id
                """
            ).all(decoding: TenantRow.self).map(\.record)
        }
    }
}
