import Foundation
import SQLKit
import ServiceKit

/// A service's idempotency keys in its own database (`<prefix>_idempotency`), so every replica
/// agrees. Keys and requests are stored as SHA-256 digests; answers for 24 h.
public struct SQLIdempotencyStore: IdempotencyStore {
    let database: any Database
    let table: String
    /// How long answers are kept.
    public static let retention: Int64 = 24 * 3600 * 1000
    /// A key claimed before leases existed (no `lease_until`) and still running after this long
    /// belongs to a request whose process most likely died.
    public static let abandonAfter: Int64 = 10 * 60 * 1000

    /// `prefix`: the service's table prefix (`identity`, `media`, `authz`).
    public init(database: any Database, prefix: String) {
        self.database = database
        self.table = prefix + "_idempotency"
    }

    /// The migration statements that create the table.
    public static func migration(prefix: String) -> [String] {
        [
            """
            CREATE TABLE \(prefix)_idempotency (
                scope TEXT NOT NULL,
                key_hash TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                status INTEGER,
                content_type TEXT,
                body TEXT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (scope, key_hash)
            )
            """,
            "CREATE INDEX \(prefix)_idempotency_created ON \(prefix)_idempotency (created_at)",
        ]
    }

    /// The second migration: a running key's lease, renewed by the process running its request.
    public static func leaseMigration(prefix: String) -> [String] {
        ["ALTER TABLE \(prefix)_idempotency ADD COLUMN lease_until BIGINT"]
    }

    struct Row: Decodable {
        var request_hash: String
        var status: Int?
        var content_type: String?
        var body: String?
        var created_at: Int64
        var lease_until: Int64?
    }

    public func claim(scope: String, key: String, request: String, at now: Int64) async throws -> IdempotencyClaim {
        try await self.database.transaction { sql in
            try await self.database.lock("\(self.table):\(scope):\(key)", in: sql)
            if Int.random(in: 0..<64) == 0 {
                try await sql.raw("DELETE FROM \(unsafeRaw: self.table) WHERE created_at < \(bind: now - Self.retention)").run()
            }
            let existing = try await sql.raw(
                """
                SELECT request_hash, status, content_type, body, created_at, lease_until FROM \(unsafeRaw: self.table) \
                WHERE scope = \(bind: scope) AND key_hash = \(bind: key)
                """
            ).first(decoding: Row.self)
            if let existing, existing.created_at >= now - Self.retention {
                guard existing.request_hash == request else { return .otherRequest }
                guard let status = existing.status else {
                    let abandoned = existing.lease_until.map { $0 < now } ?? (now - existing.created_at > Self.abandonAfter)
                    return .running(abandoned: abandoned)
                }
                return .answered(StoredAnswer(status: status, contentType: existing.content_type, body: existing.body ?? ""))
            }
            if existing != nil {
                try await sql.raw("DELETE FROM \(unsafeRaw: self.table) WHERE scope = \(bind: scope) AND key_hash = \(bind: key)").run()
            }
            try await sql.raw(
                """
                INSERT INTO \(unsafeRaw: self.table) (scope, key_hash, request_hash, status, content_type, body, created_at, lease_until) \
                VALUES (\(bind: scope), \(bind: key), \(bind: request), NULL, NULL, NULL, \(bind: now), \(bind: now + IdempotencyLease.length))
                """
            ).run()
            return .fresh
        }
    }

    public func complete(scope: String, key: String, answer: StoredAnswer, at now: Int64) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                UPDATE \(unsafeRaw: self.table) SET status = \(bind: answer.status), content_type = \(bind: answer.contentType), \
                body = \(bind: answer.body) WHERE scope = \(bind: scope) AND key_hash = \(bind: key)
                """
            ).run()
        }
    }

    public func renew(scope: String, key: String, until: Int64) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                UPDATE \(unsafeRaw: self.table) SET lease_until = \(bind: until) \
                WHERE scope = \(bind: scope) AND key_hash = \(bind: key) AND status IS NULL
                """
            ).run()
        }
    }

    public func release(scope: String, key: String) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw("DELETE FROM \(unsafeRaw: self.table) WHERE scope = \(bind: scope) AND key_hash = \(bind: key) AND status IS NULL").run()
        }
    }
}
