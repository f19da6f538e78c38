import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit
import SQLiteNIO
import ServiceLifecycle
import Shared

/// Where a service keeps its tables: SQLite under the data directory (the embedded default) or
/// PostgreSQL when `DATABASE_URL` is set.
public enum StorageLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresLocation)
    /// The service has no tables (the gateway).
    case none

    /// `DATABASE_URL` wins; else `STREAMHUB_DATA_DIR/<name>.sqlite` (default `./.streamhub/data`).
    public init(reader: SettingsReader, name: String) throws {
        if let url = reader.string(Shared.ConfigKey.databaseURL, isSecret: true) {
            self = .postgres(try PostgresLocation(url: url))
        } else {
            let directory = reader.string(Shared.ConfigKey.dataDir, default: ".streamhub/data")
            self = .sqlite(path: (directory as NSString).appendingPathComponent("\(name).sqlite"))
        }
    }
}

/// A parsed `postgres://user:password@host:port/database?sslmode=…&schema=…` URL.
public struct PostgresLocation: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// `disable` (default), `prefer` or `require`.
    public var sslMode: String
    /// Optional schema put first on the `search_path` (isolates test runs sharing one database).
    public var schema: String?

    public init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "postgres" || components.scheme == "postgresql" else {
            throw ConfigurationError("\(Shared.ConfigKey.databaseURL) must look like postgres://user:password@host:5432/database")
        }
        guard let host = components.host, !host.isEmpty else {
            throw ConfigurationError("\(Shared.ConfigKey.databaseURL) has no host")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        self.password = components.password.flatMap { $0.removingPercentEncoding }
        let database = String(components.path.drop(while: { $0 == "/" }))
        self.database = database.isEmpty ? self.username : database
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        self.sslMode = query["sslmode"] ?? "disable"
        guard ["disable", "prefer", "require"].contains(self.sslMode) else {
            throw ConfigurationError("\(Shared.ConfigKey.databaseURL) sslmode must be disable, prefer or require")
        }
        if let schema = query["schema"], !schema.isEmpty {
            guard schema.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }) else {
                throw ConfigurationError("\(Shared.ConfigKey.databaseURL) schema may hold only a-z, 0-9 and _")
            }
            self.schema = schema
        } else {
            self.schema = nil
        }
    }

    func clientConfiguration() -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch self.sslMode {
        case "require": tls = .require(.makeClientConfiguration())
        case "prefer": tls = .prefer(.makeClientConfiguration())
        default: tls = .disable
        }
        var configuration = PostgresClient.Configuration(
            host: self.host, port: self.port, username: self.username, password: self.password, database: self.database, tls: tls
        )
        if let schema {
            configuration.options.additionalStartupParameters = [("search_path", "\(schema),public")]
        }
        return configuration
    }
}

/// The SQL dialect a store speaks; the few places SQL differs check it.
public enum SQLDialectKind: Sendable {
    case sqlite, postgres
}

/// A service's database: one code path (SQLKit) over SQLite or PostgreSQL.
///
/// Repositories call ``withSQL(_:)`` for a unit of work and ``transaction(_:)`` for an atomic
/// one; they never see which engine is underneath except through ``dialect``.
public protocol Database: Sendable {
    var dialect: SQLDialectKind { get }
    func withSQL<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T
}

/// Opens the database a ``StorageLocation`` names, and the long-lived service that owns it.
public enum DatabaseFactory {
    /// - Returns: the database and the `Service` that must run for as long as it is used.
    public static func open(_ location: StorageLocation, logger: Logger) async throws -> (any Database, any Service)? {
        switch location {
        case .none:
            return nil
        case .sqlite(let path):
            let database = try await SQLiteStore.open(path: path, logger: logger)
            return (database, database)
        case .postgres(let postgres):
            let database = PostgresStore(location: postgres, logger: logger)
            return (database, database)
        }
    }
}

/// SQLite: one connection per process (SQLite has one writer anyway), WAL, a busy timeout so
/// several processes (a service and the CLI) can share the file. Access is serialised so a
/// transaction never interleaves with another task's statements.
public final class SQLiteStore: Database, Service {
    public let dialect = SQLDialectKind.sqlite
    let connection: SQLiteConnection
    let gate = SerialGate()

    init(connection: SQLiteConnection) {
        self.connection = connection
    }

    public static func open(path: String, logger: Logger) async throws -> SQLiteStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        let store = SQLiteStore(connection: connection)
        let sql = connection.sql()
        try await sql.raw("PRAGMA busy_timeout = 5000").run()
        try await sql.raw("PRAGMA journal_mode = WAL").run()
        try await sql.raw("PRAGMA foreign_keys = ON").run()
        return store
    }

    /// An in-memory database (tests).
    public static func inMemory(logger: Logger = Logger(label: "sqlite")) async throws -> SQLiteStore {
        SQLiteStore(connection: try await SQLiteConnection.open(storage: .memory, logger: logger))
    }

    public func withSQL<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await self.gate.run { try await body(self.connection.sql()) }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await self.gate.run {
            let sql = self.connection.sql()
            try await sql.raw("BEGIN IMMEDIATE").run()
            do {
                let result = try await body(sql)
                try await sql.raw("COMMIT").run()
                return result
            } catch {
                try? await sql.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await self.close()
    }

    public func close() async throws {
        try await self.connection.close()
    }
}

/// PostgreSQL through a `PostgresClient` pool; the client must run as a service.
public final class PostgresStore: Database, Service {
    public let dialect = SQLDialectKind.postgres
    public let client: PostgresClient
    let logger: Logger

    public init(location: PostgresLocation, logger: Logger) {
        self.client = PostgresClient(configuration: location.clientConfiguration(), backgroundLogger: logger)
        self.logger = logger
    }

    public func withSQL<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await self.client.withConnection { connection in
            try await body(connection.sql())
        }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await self.client.withConnection { connection in
            let sql = connection.sql()
            try await sql.raw("BEGIN").run()
            do {
                let result = try await body(sql)
                try await sql.raw("COMMIT").run()
                return result
            } catch {
                try? await sql.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    public func run() async throws {
        await self.client.run()
    }
}

/// Runs async closures one at a time, in arrival order.
public actor SerialGate {
    var busy = false
    var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await self.acquire()
        defer { self.release() }
        return try await body()
    }

    func acquire() async {
        if !self.busy {
            self.busy = true
            return
        }
        await withCheckedContinuation { self.waiters.append($0) }
    }

    func release() {
        if self.waiters.isEmpty {
            self.busy = false
        } else {
            self.waiters.removeFirst().resume()
        }
    }
}

extension DatabaseFactory {
    /// Opens the database for one unit of work outside a service group (the CLI, tests), runs
    /// `body`, and closes it.
    public static func withDatabase<T: Sendable>(
        _ location: StorageLocation, logger: Logger, _ body: @escaping @Sendable (any Database) async throws -> T
    ) async throws -> T {
        switch location {
        case .none:
            throw ConfigurationError("no database configured")
        case .sqlite(let path):
            let store = try await SQLiteStore.open(path: path, logger: logger)
            do {
                let result = try await body(store)
                try await store.close()
                return result
            } catch {
                try? await store.close()
                throw error
            }
        case .postgres(let postgres):
            let store = PostgresStore(location: postgres, logger: logger)
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    await store.client.run()
                    return nil
                }
                group.addTask { try await body(store) }
                defer { group.cancelAll() }
                while let next = try await group.next() {
                    if let result = next { return result }
                }
                throw CancellationError()
            }
        }
    }
}
