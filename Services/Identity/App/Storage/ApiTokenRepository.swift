import Foundation
import SQLKit
import ServiceKit
import ServiceStorage
import Shared

/// A stored `sk_` token. The token itself is never stored: only its SHA-256 and a display prefix.
public struct ApiTokenRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var prefix: String
    public var hash: String
    public var scope: ApiTokenSummary.Scope
    public var appId: String?
    public var tenantId: String?
    public var createdAt: Int64
    public var lastUsedAt: Int64?
    public var expiresAt: Int64?
    public var revokedAt: Int64?

    public var summary: ApiTokenSummary {
        ApiTokenSummary(
            id: self.id, name: self.name, prefix: self.prefix, scope: self.scope, appId: self.appId, tenantId: self.tenantId,
            createdAt: Timestamp.iso8601(Timestamp.date(millis: self.createdAt)),
            lastUsedAt: self.lastUsedAt.map { Timestamp.iso8601(Timestamp.date(millis: $0)) },
            expiresAt: self.expiresAt.map { Timestamp.iso8601(Timestamp.date(millis: $0)) },
            revokedAt: self.revokedAt.map { Timestamp.iso8601(Timestamp.date(millis: $0)) }
        )
    }

    /// Usable at `now`: not revoked, not expired.
    public func isActive(at now: Int64) -> Bool {
        self.revokedAt == nil && (self.expiresAt.map { $0 > now } ?? true)
    }

    /// The principal this token stands for.
    public var principal: Principal {
        switch self.scope {
        case .global:
            Principal(kind: .apiToken, scope: .global, subject: "token:\(self.id)", tenantId: self.tenantId)
        case .app:
            Principal(kind: .apiToken, scope: .app, subject: "token:\(self.id)", tenantId: self.tenantId, appId: self.appId)
        }
    }
}

/// What a new token is for.
public struct NewApiToken: Sendable {
    public var name: String
    public var scope: ApiTokenSummary.Scope
    public var appId: String?
    public var tenantId: String?
    public var expiresAt: Int64?

    public init(name: String, scope: ApiTokenSummary.Scope, appId: String? = nil, tenantId: String? = nil, expiresAt: Int64? = nil) {
        self.name = name
        self.scope = scope
        self.appId = appId
        self.tenantId = tenantId
        self.expiresAt = expiresAt
    }
}

/// The secret half of a freshly minted token: shown once, never stored.
public struct MintedApiToken: Sendable {
    public var token: String
    public var record: ApiTokenRecord
}

/// Creates, looks up and revokes `sk_` tokens.
public protocol ApiTokenRepository: Sendable {
    func insert(_ record: ApiTokenRecord) async throws
    /// Inserts `record` unless its tenant already has `limit` active tokens — checked and written
    /// atomically, exact under concurrent requests and across replicas.
    /// - Throws: ``StorageError/quotaExceeded(_:)`` naming `maxTokens` and `limit`.
    func insert(_ record: ApiTokenRecord, limit: Int, at now: Int64) async throws
    /// ``insert(_:limit:at:)`` that also takes back the role intent `intent` and runs
    /// `beforeCommit` (the role grant) in the same transaction: the token exists only if its grant
    /// was made, and a failure anywhere leaves the intent to undo the grant.
    func insert(
        _ record: ApiTokenRecord, limit: Int, at now: Int64, clearing intent: String, beforeCommit: @escaping @Sendable () async throws -> Void
    ) async throws
    func find(id: String) async throws -> ApiTokenRecord?
    /// How many of `tenant`'s tokens are active at `now`.
    func activeCount(tenant: String, at now: Int64) async throws -> Int
    /// Tokens in creation order, those of `tenant` only when given, after the token `after`.
    func list(tenant: String?, after: String?, limit: Int) async throws -> [ApiTokenRecord]
    /// The record whose hash is `hash`, active or not.
    func find(hash: String) async throws -> ApiTokenRecord?
    func markUsed(id: String, at: Int64) async throws
    func revoke(id: String, at: Int64) async throws -> Bool
    func list() async throws -> [ApiTokenRecord]
}

/// Token format and hashing, shared by every repository.
public enum ApiTokenMinter {
    /// `sk_` + 43 base64url characters (32 random bytes).
    public static func generateToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "sk_" + Base64URL.encode(bytes)
    }

    /// Lower-case hex SHA-256 of the token: how it is stored and looked up.
    public static func hash(_ token: String) -> String {
        SecretDigest.sha256Hex(token)
    }

    /// The first characters shown in listings (`sk_` + 8).
    public static func displayPrefix(_ token: String) -> String {
        String(token.prefix(11))
    }

    static func quotaExceeded(_ limit: Int) -> StorageError {
        StorageError.quotaExceeded("Quota maxTokens (\(limit)) reached: revoke a token or raise the tenant's quota")
    }

    /// Mints a token and stores its hash; with `quota`, only while its tenant has fewer active tokens.
    /// With `grant`, the token's id is `grant.id`, and the token is stored in the transaction that
    /// clears the role intent `grant.intent` and runs `grant.run` (the role grant), committed last.
    public static func mint(
        _ new: NewApiToken, into repository: any ApiTokenRepository, now: Date, quota: Int? = nil,
        grant: (id: String, intent: String, run: @Sendable () async throws -> Void)? = nil
    ) async throws -> MintedApiToken {
        let name = try Identifier.validate(new.name, field: "name")
        guard name.count <= 100 else { throw ServiceError.badRequest("name must be at most 100 characters") }
        if new.scope == .app && (new.appId ?? "").isEmpty {
            throw ServiceError.badRequest("appId is required for an app-scoped token")
        }
        let token = self.generateToken()
        let record = ApiTokenRecord(
            id: grant?.id ?? UUID().uuidString.lowercased(), name: name, prefix: self.displayPrefix(token), hash: self.hash(token), scope: new.scope,
            appId: new.scope == .app ? new.appId : nil, tenantId: new.tenantId, createdAt: Timestamp.millis(now), lastUsedAt: nil,
            expiresAt: new.expiresAt, revokedAt: nil
        )
        if let grant {
            try await repository.insert(record, limit: quota ?? Int.max, at: Timestamp.millis(now), clearing: grant.intent, beforeCommit: grant.run)
        } else if let quota {
            try await repository.insert(record, limit: quota, at: Timestamp.millis(now))
        } else {
            try await repository.insert(record)
        }
        return MintedApiToken(token: token, record: record)
    }
}

/// In-memory tokens (tests).
public actor InMemoryApiTokenRepository: ApiTokenRepository {
    var records: [String: ApiTokenRecord] = [:]

    public init() {}

    public func insert(_ record: ApiTokenRecord) async throws {
        self.records[record.id] = record
    }

    public func insert(_ record: ApiTokenRecord, limit: Int, at now: Int64) async throws {
        let active = self.records.values.filter { $0.tenantId == record.tenantId && $0.isActive(at: now) }.count
        guard active < limit else { throw ApiTokenMinter.quotaExceeded(limit) }
        self.records[record.id] = record
    }

    public func insert(
        _ record: ApiTokenRecord, limit: Int, at now: Int64, clearing intent: String, beforeCommit: @escaping @Sendable () async throws -> Void
    ) async throws {
        let active = self.records.values.filter { $0.tenantId == record.tenantId && $0.isActive(at: now) }.count
        guard active < limit else { throw ApiTokenMinter.quotaExceeded(limit) }
        try await beforeCommit()
        self.records[record.id] = record
    }

    public func find(id: String) async throws -> ApiTokenRecord? { self.records[id] }

    public func activeCount(tenant: String, at now: Int64) async throws -> Int {
        self.records.values.filter { $0.tenantId == tenant && $0.isActive(at: now) }.count
    }

    public func list(tenant: String?, after: String?, limit: Int) async throws -> [ApiTokenRecord] {
        var all = self.records.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        if let tenant { all = all.filter { $0.tenantId == tenant } }
        if let after, let cursor = self.records[after] {
            all = all.filter { ($0.createdAt, $0.id) > (cursor.createdAt, cursor.id) }
        }
        return Array(all.prefix(limit))
    }

    public func find(hash: String) async throws -> ApiTokenRecord? {
        self.records.values.first { ConstantTime.equals($0.hash, hash) }
    }

    public func markUsed(id: String, at: Int64) async throws {
        self.records[id]?.lastUsedAt = at
    }

    public func revoke(id: String, at: Int64) async throws -> Bool {
        guard self.records[id]?.revokedAt == nil, self.records[id] != nil else { return false }
        self.records[id]?.revokedAt = at
        return true
    }

    public func list() async throws -> [ApiTokenRecord] {
        self.records.values.sorted { $0.createdAt < $1.createdAt }
    }
}

/// Tokens in identity's SQL store (SQLite or PostgreSQL).
public struct SQLApiTokenRepository: ApiTokenRepository {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    struct Row: Decodable {
        var id: String
        var name: String
        var prefix: String
        var token_hash: String
        var scope: String
        var app_id: String?
        var tenant_id: String?
        var created_at: Int64
        var last_used_at: Int64?
        var expires_at: Int64?
        var revoked_at: Int64?

        var record: ApiTokenRecord {
            ApiTokenRecord(
                id: self.id, name: self.name, prefix: self.prefix, hash: self.token_hash, scope: ApiTokenSummary.Scope(rawValue: self.scope) ?? .app,
                appId: self.app_id, tenantId: self.tenant_id, createdAt: self.created_at, lastUsedAt: self.last_used_at,
                expiresAt: self.expires_at, revokedAt: self.revoked_at
            )
        }
    }

    static let columns = "id, name, prefix, token_hash, scope, app_id, tenant_id, created_at, last_used_at, expires_at, revoked_at"

    public func insert(_ record: ApiTokenRecord) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                INSERT INTO identity_api_tokens (\(unsafeRaw: Self.columns)) VALUES (\(bind: record.id), \(bind: record.name), \(bind: record.prefix), \
                \(bind: record.hash), \(bind: record.scope.rawValue), \(bind: record.appId), \(bind: record.tenantId), \(bind: record.createdAt), \
                \(bind: record.lastUsedAt), \(bind: record.expiresAt), \(bind: record.revokedAt))
                """
            ).run()
        }
    }

    public func insert(_ record: ApiTokenRecord, limit: Int, at now: Int64) async throws {
        try await self.insertCounted(record, limit: limit, at: now, clearing: nil, beforeCommit: nil)
    }

    public func insert(
        _ record: ApiTokenRecord, limit: Int, at now: Int64, clearing intent: String, beforeCommit: @escaping @Sendable () async throws -> Void
    ) async throws {
        try await self.insertCounted(record, limit: limit, at: now, clearing: intent, beforeCommit: beforeCommit)
    }

    /// Counts the tenant's active tokens and inserts `record` in one transaction (serialised per tenant).
    func insertCounted(
        _ record: ApiTokenRecord, limit: Int, at now: Int64, clearing intent: String?, beforeCommit: (@Sendable () async throws -> Void)?
    ) async throws {
        try await self.database.transaction { sql in
            let tenant = record.tenantId ?? ""
            // Serialises the tenant's mints (PostgreSQL advisory lock; SQLite writers are serial).
            try await self.database.lock("identity_api_tokens:" + tenant, in: sql)
            struct Count: Decodable { var n: Int }
            let active =
                try await sql.raw(
                    """
                    SELECT COUNT(*) AS n FROM identity_api_tokens WHERE COALESCE(tenant_id, '') = \(bind: tenant) \
                    AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > \(bind: now))
                    """
                ).first(decoding: Count.self)?.n ?? 0
            guard active < limit else { throw ApiTokenMinter.quotaExceeded(limit) }
            try await sql.raw(
                """
                INSERT INTO identity_api_tokens (\(unsafeRaw: Self.columns)) VALUES (\(bind: record.id), \(bind: record.name), \(bind: record.prefix), \
                \(bind: record.hash), \(bind: record.scope.rawValue), \(bind: record.appId), \(bind: record.tenantId), \(bind: record.createdAt), \
                \(bind: record.lastUsedAt), \(bind: record.expiresAt), \(bind: record.revokedAt))
                """
            ).run()
            if let intent { try await SQLRoleIntentRepository.clear(id: intent, in: sql) }
            try await beforeCommit?()
        }
    }

    public func activeCount(tenant: String, at now: Int64) async throws -> Int {
        struct Count: Decodable { var n: Int }
        return try await self.database.withSQL { sql in
            try await sql.raw(
                """
                SELECT COUNT(*) AS n FROM identity_api_tokens WHERE tenant_id = \(bind: tenant) \
                AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > \(bind: now))
                """
            ).first(decoding: Count.self)?.n ?? 0
        }
    }

    public func find(id: String) async throws -> ApiTokenRecord? {
        try await self.database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: Self.columns) FROM identity_api_tokens WHERE id = \(bind: id)").first(decoding: Row.self)?.record
        }
    }

    public func list(tenant: String?, after: String?, limit: Int) async throws -> [ApiTokenRecord] {
        try await self.database.withSQL { sql in
            var query: SQLQueryString = "SELECT \(unsafeRaw: Self.columns) FROM identity_api_tokens WHERE 1 = 1"
            if let tenant { query = query + " AND tenant_id = \(bind: tenant)" }
            if let after {
                query =
                    query
                    + """
                     AND (created_at > (SELECT created_at FROM identity_api_tokens WHERE id = \(bind: after)) \
                    OR (created_at = (SELECT created_at FROM identity_api_tokens WHERE id = \(bind: after)) AND id > \(bind: after)))
                    """
            }
            return try await sql.raw(query + " ORDER BY created_at, id LIMIT \(bind: limit)").all(decoding: Row.self).map(\.record)
        }
    }

    public func find(hash: String) async throws -> ApiTokenRecord? {
        let row = try await self.database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: Self.columns) FROM identity_api_tokens WHERE token_hash = \(bind: hash)").first(decoding: Row.self)
        }
        guard let record = row?.record, ConstantTime.equals(record.hash, hash) else { return nil }
        return record
    }

    public func markUsed(id: String, at: Int64) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw("UPDATE identity_api_tokens SET last_used_at = \(bind: at) WHERE id = \(bind: id)").run()
        }
    }

    public func revoke(id: String, at: Int64) async throws -> Bool {
        try await self.database.withSQL { sql in
            let rows = try await sql.raw(
                "UPDATE identity_api_tokens SET revoked_at = \(bind: at) WHERE id = \(bind: id) AND revoked_at IS NULL RETURNING id"
            ).all()
            return !rows.isEmpty
        }
    }

    public func list() async throws -> [ApiTokenRecord] {
        try await self.database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: Self.columns) FROM identity_api_tokens ORDER BY created_at, id").all(decoding: Row.self).map(
                \.record)
        }
    }
}
