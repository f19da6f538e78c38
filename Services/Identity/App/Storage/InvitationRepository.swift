import Foundation
import SQLKit
import ServiceKit
import ServiceStorage
import Shared

/// A pending offer to join a tenant with a role. The mailed token (stored as its SHA-256) proves
/// the address when the invitee accepts; until then nobody joins and no account is made or bound.
public struct InvitationRecord: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var email: String
    public var role: String
    public var tokenHash: String
    /// The inviting principal's subject (`user:<id>`, `token:<id>`).
    public var invitedBy: String
    public var createdAt: Int64
    public var expiresAt: Int64

    public var summary: InvitationSummary {
        InvitationSummary(
            id: self.id, tenantId: self.tenantId, email: self.email, role: self.role,
            createdAt: Timestamp.iso8601(Timestamp.date(millis: self.createdAt)), expiresAt: Timestamp.iso8601(Timestamp.date(millis: self.expiresAt)))
    }
}

public protocol InvitationRepository: Sendable {
    /// Stores `invitation`, replacing a pending one for the same address in the tenant, when the
    /// tenant's members and other pending invitations leave room within `limit`.
    /// - Throws: ``StorageError/quotaExceeded(_:)`` naming `maxMembers`.
    func create(_ invitation: InvitationRecord, limit: Int) async throws
    /// The tenant's pending (unexpired, not accepted) invitations, oldest first.
    func pending(tenantId: String, at now: Int64) async throws -> [InvitationRecord]
    /// The pending invitation a token stands for.
    func find(tokenHash: String, at now: Int64) async throws -> InvitationRecord?
    /// Accepts invitation `id` for `userId` in one transaction: the membership (within `limit`),
    /// the invitation marked accepted, the role intent `intent` cleared, and — for an invitee
    /// without an account — `newUser` stored. `beforeCommit` runs last inside it (the role grant).
    /// - Returns: false when the invitation was no longer pending (accepted, withdrawn, expired).
    /// - Throws: `conflict` when `newUser`'s email is taken meanwhile.
    func accept(
        id: String, userId: String, newUser: UserRecord?, limit: Int, at now: Int64, clearing intent: String?,
        beforeCommit: @escaping @Sendable () async throws -> Void
    ) async throws -> Bool
    /// Withdraws a pending invitation; nil when there is none with that id in the tenant.
    func withdraw(id: String, tenantId: String, at now: Int64) async throws -> InvitationRecord?
}

public struct SQLInvitationRepository: InvitationRepository {
    let database: any Database
    let accounts: SQLAccountRepository

    public init(database: any Database) {
        self.database = database
        self.accounts = SQLAccountRepository(database: database)
    }

    static let columns = "id, tenant_id, email, role, token_hash, invited_by, created_at, expires_at"

    struct Row: Decodable {
        var id: String
        var tenant_id: String
        var email: String
        var role: String
        var token_hash: String
        var invited_by: String
        var created_at: Int64
        var expires_at: Int64

        var record: InvitationRecord {
            InvitationRecord(
                id: self.id, tenantId: self.tenant_id, email: self.email, role: self.role, tokenHash: self.token_hash, invitedBy: self.invited_by,
                createdAt: self.created_at, expiresAt: self.expires_at)
        }
    }

    struct Count: Decodable { var n: Int }

    public func create(_ invitation: InvitationRecord, limit: Int) async throws {
        try await self.database.transaction { sql in
            // The membership lock: members and pending invitations are counted together.
            try await self.database.lock("identity_memberships:" + invitation.tenantId, in: sql)
            try await sql.raw(
                """
                DELETE FROM identity_invitations WHERE tenant_id = \(bind: invitation.tenantId) AND email = \(bind: invitation.email) \
                AND accepted_at IS NULL
                """
            ).run()
            let members =
                try await sql.raw("SELECT COUNT(*) AS n FROM identity_memberships WHERE tenant_id = \(bind: invitation.tenantId)")
                .first(decoding: Count.self)?.n ?? 0
            let pending =
                try await sql.raw(
                    """
                    SELECT COUNT(*) AS n FROM identity_invitations WHERE tenant_id = \(bind: invitation.tenantId) \
                    AND accepted_at IS NULL AND expires_at > \(bind: invitation.createdAt)
                    """
                ).first(decoding: Count.self)?.n ?? 0
            guard members + pending < limit else {
                throw StorageError.quotaExceeded(
                    "Quota maxMembers (\(limit)) reached: members and pending invitations count; remove a member, withdraw an invitation or raise the tenant's quota"
                )
            }
            try await sql.raw(
                """
                INSERT INTO identity_invitations (\(unsafeRaw: Self.columns)) VALUES (\(bind: invitation.id), \(bind: invitation.tenantId), \
                \(bind: invitation.email), \(bind: invitation.role), \(bind: invitation.tokenHash), \(bind: invitation.invitedBy), \
                \(bind: invitation.createdAt), \(bind: invitation.expiresAt))
                """
            ).run()
        }
    }

    public func pending(tenantId: String, at now: Int64) async throws -> [InvitationRecord] {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.columns) FROM identity_invitations WHERE tenant_id = \(bind: tenantId) AND accepted_at IS NULL \
                AND expires_at > \(bind: now) ORDER BY created_at, id
                """
            ).all(decoding: Row.self).map(\.record)
        }
    }

    public func find(tokenHash: String, at now: Int64) async throws -> InvitationRecord? {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.columns) FROM identity_invitations WHERE token_hash = \(bind: tokenHash) AND accepted_at IS NULL \
                AND expires_at > \(bind: now)
                """
            ).first(decoding: Row.self)?.record
        }
    }

    public func accept(
        id: String, userId: String, newUser: UserRecord?, limit: Int, at now: Int64, clearing intent: String?,
        beforeCommit: @escaping @Sendable () async throws -> Void
    ) async throws -> Bool {
        try await self.database.transaction { sql in
            try await self.database.lock("identity_invitations:" + id, in: sql)
            guard
                let invitation = try await sql.raw(
                    """
                    SELECT \(unsafeRaw: Self.columns) FROM identity_invitations WHERE id = \(bind: id) AND accepted_at IS NULL \
                    AND expires_at > \(bind: now)
                    """
                ).first(decoding: Row.self)
            else { return false }
            if let newUser {
                try await self.accounts.insertUser(sql, newUser)
            }
            _ = try await self.accounts.insertMembership(sql, tenantId: invitation.tenant_id, userId: userId, limit: limit, at: now)
            try await sql.raw(
                "UPDATE identity_invitations SET accepted_at = \(bind: now), accepted_by = \(bind: userId) WHERE id = \(bind: id)"
            ).run()
            if let intent { try await SQLRoleIntentRepository.clear(id: intent, in: sql) }
            try await beforeCommit()
            return true
        }
    }

    public func withdraw(id: String, tenantId: String, at now: Int64) async throws -> InvitationRecord? {
        try await self.database.transaction { sql in
            guard
                let row = try await sql.raw(
                    """
                    SELECT \(unsafeRaw: Self.columns) FROM identity_invitations WHERE id = \(bind: id) AND tenant_id = \(bind: tenantId) \
                    AND accepted_at IS NULL AND expires_at > \(bind: now)
                    """
                ).first(decoding: Row.self)
            else { return nil }
            try await sql.raw("DELETE FROM identity_invitations WHERE id = \(bind: id)").run()
            return row.record
        }
    }

    /// The table (identity migration 10).
    static let migration = [
        """
        CREATE TABLE identity_invitations (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            email TEXT NOT NULL,
            role TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            invited_by TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            accepted_at BIGINT,
            accepted_by TEXT
        )
        """,
        "CREATE INDEX identity_invitations_tenant ON identity_invitations (tenant_id, email)",
    ]
}
