import Foundation
import Logging
import SQLKit
import ServiceKit

/// One schema change. `statements` get the dialect for the rare type that differs.
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var statements: @Sendable (SQLDialectKind) throws -> [String]

    public init(version: Int, name: String, statements: @escaping @Sendable (SQLDialectKind) throws -> [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// Applies a service's migrations in order, each in its own transaction, recording them in
/// `<service>_schema_migrations`. On PostgreSQL an advisory lock keeps replicas that start together
/// from racing.
public struct Migrator: Sendable {
    public var service: String
    public var migrations: [Migration]

    public init(service: String, migrations: [Migration]) {
        self.service = service
        self.migrations = migrations
    }

    var table: String { "\(self.service)_schema_migrations" }

    public func migrate(_ database: any Database, logger: Logger) async throws {
        // Schema changes may rewrite large tables: they get minutes, not a request's deadline.
        try await DatabaseDeadline.$override.withValue(.seconds(600)) {
            try await self.migrateWithinDeadline(database, logger: logger)
        }
    }

    func migrateWithinDeadline(_ database: any Database, logger: Logger) async throws {
        try await database.waitUntilReachable(logger: logger)
        let table = self.table
        let lockKey = Int64(self.service.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 })
        // The lock comes first, even for the bookkeeping table: two replicas creating it at once on
        // a fresh database race in PostgreSQL's catalog (`duplicate key … pg_type_typname_nsp_index`)
        // despite `IF NOT EXISTS`.
        try await database.transaction { sql in
            if database.dialect == .postgres {
                try await sql.raw("SELECT pg_advisory_xact_lock(\(bind: lockKey))").run()
            }
            try await sql.raw(
                "CREATE TABLE IF NOT EXISTS \(unsafeRaw: table) (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
            ).run()
        }
        for migration in self.migrations.sorted(by: { $0.version < $1.version }) {
            let applied = try await database.transaction { sql -> Bool in
                if database.dialect == .postgres {
                    try await sql.raw("SELECT pg_advisory_xact_lock(\(bind: lockKey))").run()
                }
                let rows = try await sql.raw("SELECT version FROM \(unsafeRaw: table) WHERE version = \(bind: migration.version)").all()
                guard rows.isEmpty else { return false }
                for statement in try migration.statements(database.dialect) {
                    try await sql.raw(SQLQueryString(statement)).run()
                }
                try await sql.raw(
                    "INSERT INTO \(unsafeRaw: table) (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: Timestamp.millis(Date())))"
                ).run()
                return true
            }
            if applied {
                logger.info(
                    "applied migration", metadata: ["service": "\(self.service)", "version": "\(migration.version)", "name": "\(migration.name)"])
            }
        }
    }

    struct VersionRow: Decodable { var version: Int? }

    /// Whether every migration of this service has been applied.
    public func isCurrent(_ database: any Database) async throws -> Bool {
        let latest = self.migrations.map(\.version).max() ?? 0
        let table = self.table
        let applied = try await database.withSQL { sql in
            try await sql.raw("SELECT MAX(version) AS version FROM \(unsafeRaw: table)").first(decoding: VersionRow.self)?.version
        }
        return (applied ?? 0) >= latest
    }

    /// The readiness check of a service's database: reachable and migrated.
    public func readiness(_ database: any Database) -> ReadinessCheck {
        ReadinessCheck(name: "database") {
            do {
                return try await ReadinessCheck.within(.seconds(2)) {
                    try await self.isCurrent(database) ? nil : "migrations not applied"
                }
            } catch let error as StorageError {
                return "unreachable: \(error)"
            } catch {
                return "unreachable: \(PostgresStore.describe(error))"
            }
        }
    }
}
