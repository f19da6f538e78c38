import Foundation
import Logging
import SQLKit
import ServiceKit
import ServiceLifecycle
import ServiceStorage
import Shared

/// A role grant identity asked (or is about to ask) authz for, recorded in identity's database
/// before the call, and taken back in the same transaction that makes the grant true (the new user
/// and tenant, the membership). An intent still there afterwards means the two steps did not
/// become one outcome: the request failed, timed out or the process died between them. It is
/// then settled from identity's own rows — a member of the tenant gets the role, anyone else has
/// every role in the tenant revoked — so authz never keeps a grant for a user or membership that
/// does not exist (and never lacks one that does).
public struct RoleIntent: Sendable, Equatable {
    public var id: String
    /// `user:<id>` or `token:<id>`.
    public var subject: String
    public var role: String
    public var tenantId: String
    public var attempts: Int

    public init(id: String, subject: String, role: String, tenantId: String, attempts: Int) {
        self.id = id
        self.subject = subject
        self.role = role
        self.tenantId = tenantId
        self.attempts = attempts
    }
}

public protocol RoleIntentRepository: Sendable {
    /// Records an intent, not due for settling before `dueAt` (its request has the time to finish).
    func record(_ intent: RoleIntent, at now: Int64, dueAt: Int64) async throws
    /// Takes an intent back (its grant and identity's rows agree).
    func clear(id: String) async throws
    /// Claims up to `limit` due intents (each by one replica; due again a minute later unless cleared).
    func claimDue(at now: Int64, limit: Int) async throws -> [RoleIntent]
    /// Whether `subject` should hold roles in `tenantId` now: a user who belongs to it, an active
    /// (unrevoked) token of it.
    func holdsRoles(subject: String, tenantId: String) async throws -> Bool
}

public struct SQLRoleIntentRepository: RoleIntentRepository {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    /// The statement that takes an intent back inside another transaction.
    static func clear(id: String, in sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM identity_role_intents WHERE id = \(bind: id)").run()
    }

    public func record(_ intent: RoleIntent, at now: Int64, dueAt: Int64) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                INSERT INTO identity_role_intents (id, subject, role, tenant_id, created_at, next_attempt_at, attempts) \
                VALUES (\(bind: intent.id), \(bind: intent.subject), \(bind: intent.role), \(bind: intent.tenantId), \(bind: now), \(bind: dueAt), 0)
                """
            ).run()
        }
    }

    public func clear(id: String) async throws {
        try await self.database.withSQL { sql in try await Self.clear(id: id, in: sql) }
    }

    struct Row: Decodable {
        var id: String
        var subject: String
        var role: String
        var tenant_id: String
        var attempts: Int
    }

    public func claimDue(at now: Int64, limit: Int) async throws -> [RoleIntent] {
        let skipLocked: SQLQueryString = self.database.dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await self.database.transaction { sql in
            try await sql.raw(
                """
                UPDATE identity_role_intents SET attempts = attempts + 1, next_attempt_at = \(bind: now + 60_000) \
                WHERE id IN (SELECT id FROM identity_role_intents WHERE next_attempt_at <= \(bind: now) ORDER BY created_at LIMIT \(bind: limit)
                """ + skipLocked + ") RETURNING id, subject, role, tenant_id, attempts"
            ).all(decoding: Row.self).map { RoleIntent(id: $0.id, subject: $0.subject, role: $0.role, tenantId: $0.tenant_id, attempts: $0.attempts) }
        }
    }

    public func holdsRoles(subject: String, tenantId: String) async throws -> Bool {
        try await self.database.withSQL { sql in
            if subject.hasPrefix("token:") {
                let id = String(subject.dropFirst("token:".count))
                return !(try await sql.raw(
                    "SELECT id FROM identity_api_tokens WHERE id = \(bind: id) AND tenant_id = \(bind: tenantId) AND revoked_at IS NULL"
                ).all()).isEmpty
            }
            let userId = String(subject.dropFirst("user:".count))
            return !(try await sql.raw(
                "SELECT user_id FROM identity_memberships WHERE tenant_id = \(bind: tenantId) AND user_id = \(bind: userId)"
            ).all()).isEmpty
        }
    }
}

/// Records intents and settles them: at once when a request fails, and in the background
/// (``RoleIntentSettler``) for whatever is left.
public struct RoleIntents: Sendable {
    let store: any RoleIntentRepository
    let authz: InternalClient
    let authzURL: String
    let timeSource: any TimeSource
    /// How long a request has before its intent may be settled by anyone else.
    static let grace: Int64 = 60_000

    public init(store: any RoleIntentRepository, authz: InternalClient, authzURL: String, timeSource: any TimeSource) {
        self.store = store
        self.authz = authz
        self.authzURL = authzURL
        self.timeSource = timeSource
    }

    /// Records the intent to grant `role` to `subject` in `tenantId`; its id, for the transaction
    /// that takes it back.
    func record(subject: String, role: String, tenantId: String) async throws -> String {
        let now = Timestamp.millis(self.timeSource.now())
        let id = UUID().uuidString.lowercased()
        try await self.store.record(
            RoleIntent(id: id, subject: subject, role: role, tenantId: tenantId, attempts: 0), at: now, dueAt: now + Self.grace)
        return id
    }

    func record(userId: String, role: String, tenantId: String) async throws -> String {
        try await self.record(subject: "user:\(userId)", role: role, tenantId: tenantId)
    }

    /// Grants the role in authz.
    func grant(subject: String, role: String, tenantId: String, requestID: String) async throws {
        let _: PolicyChangeResult = try await self.authz.call(
            service: "authz", baseURL: self.authzURL, path: "/internal/v1/roles",
            body: RoleGrant(subject: subject, role: role, tenant: tenantId), requestID: requestID)
    }

    func grant(userId: String, role: String, tenantId: String, requestID: String) async throws {
        try await self.grant(subject: "user:\(userId)", role: role, tenantId: tenantId, requestID: requestID)
    }

    /// Makes authz agree with identity's rows for one intent, then takes it back: a member gets the
    /// role; otherwise every role of the user in the tenant goes (the grant may have landed even
    /// though its call failed).
    func settle(_ intent: RoleIntent, requestID: String) async throws {
        if try await self.store.holdsRoles(subject: intent.subject, tenantId: intent.tenantId) {
            try await self.grant(subject: intent.subject, role: intent.role, tenantId: intent.tenantId, requestID: requestID)
        } else {
            let _: PolicyChangeResult = try await self.authz.call(
                service: "authz", baseURL: self.authzURL, path: "/internal/v1/roles/revoke",
                body: SubjectInTenant(subject: intent.subject, tenant: intent.tenantId), requestID: requestID)
        }
        try await self.store.clear(id: intent.id)
    }

    /// After a failed request: settles its intent now if it can; the settler does it later if not.
    func settleAfterFailure(id: String, subject: String, role: String, tenantId: String, requestID: String, logger: Logger) async {
        do {
            try await self.settle(RoleIntent(id: id, subject: subject, role: role, tenantId: tenantId, attempts: 0), requestID: requestID)
        } catch {
            logger.warning(
                "role grant left to settle later", metadata: ["subject": "\(subject)", "tenant": "\(tenantId)", "error": "\(error)"])
        }
    }

    func settleAfterFailure(id: String, userId: String, role: String, tenantId: String, requestID: String, logger: Logger) async {
        await self.settleAfterFailure(id: id, subject: "user:\(userId)", role: role, tenantId: tenantId, requestID: requestID, logger: logger)
    }

    /// Settles every due intent; how many were settled.
    @discardableResult
    public func settleDue(logger: Logger) async -> Int {
        var settled = 0
        do {
            for intent in try await self.store.claimDue(at: Timestamp.millis(self.timeSource.now()), limit: 50) {
                do {
                    try await self.settle(intent, requestID: RequestIDs.generate())
                    settled += 1
                    logger.notice("role grant settled", metadata: ["subject": "\(intent.subject)", "tenant": "\(intent.tenantId)"])
                } catch {
                    logger.warning(
                        "role grant not settled yet", metadata: ["subject": "\(intent.subject)", "attempt": "\(intent.attempts)", "error": "\(error)"])
                }
            }
        } catch {
            logger.debug("role intents not readable", metadata: ["error": "\(error)"])
        }
        return settled
    }
}

/// Settles left-over role intents every few seconds, in every replica (each intent claimed by one).
public struct RoleIntentSettler: Service {
    let intents: RoleIntents
    let interval: Duration
    let logger: Logger

    public init(intents: RoleIntents, interval: Duration = .seconds(2), logger: Logger) {
        self.intents = intents
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.intents.settleDue(logger: self.logger)
                try? await Task.sleep(for: self.interval)
            }
        }
    }
}
