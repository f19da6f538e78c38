import Foundation
import Logging
import ServiceKit
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
import Synchronization

/// Where a service keeps its tables: SQLite under the data directory (the embedded default) or
/// PostgreSQL when `DATABASE_URL` is set.
public enum StorageLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    /// `DATABASE_URL` wins (with `DATABASE_CONNECT_TIMEOUT_S`, default 10); else
    /// `STREAMHUB_DATA_DIR/<name>.sqlite` (default `./.streamhub/data`).
    public init(reader: SettingsReader, name: String) throws {
        if let url = reader.string(Shared.ConfigKey.databaseURL, isSecret: true) {
            var location = try PostgresLocation(url: url)
            location.connectTimeout = .seconds(try reader.int(Shared.ConfigKey.databaseConnectTimeout, default: 10, range: 1...600))
            location.queryTimeout = .seconds(try reader.int(Shared.ConfigKey.databaseQueryTimeout, default: 5, range: 1...600))
            self = .postgres(location)
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
    /// How long start-up waits for the server before giving up (`DATABASE_CONNECT_TIMEOUT_S`).
    public var connectTimeout: Duration = .seconds(10)
    /// How long one unit of work (a query or a transaction) may run once it holds a connection
    /// (`DATABASE_QUERY_TIMEOUT_S`, default 5): past it the connection is closed, the work fails as
    /// unavailable (503) and nothing of it is committed.
    public var queryTimeout: Duration = .seconds(5)

    /// `host:port`, for messages (never the password).
    public var endpoint: String { "\(self.host):\(self.port)" }

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
        configuration.options.connectTimeout = min(self.connectTimeout, .seconds(5))
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
    func withSQL<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    /// Waits until the database answers, retrying (logged at warning) until its connect timeout.
    /// - Throws: ``StorageError/unavailable(_:)`` naming where it looked.
    func waitUntilReachable(logger: Logger) async throws
    /// Calls `onChange` for every notification on `channel` from any process, until cancelled.
    /// Returns false at once when the database cannot push notifications (then polling is all there is).
    func listen(channel: String, _ onChange: @escaping @Sendable () async -> Void) async throws -> Bool
    /// Serialises, until the transaction of `sql` ends, every transaction that takes the same `key`
    /// (PostgreSQL: a transaction-scoped advisory lock; SQLite's writers are serial already). For
    /// check-then-write rules such as quotas, exact under concurrency and across replicas.
    func lock(_ key: String, in sql: any SQLDatabase) async throws
    /// Announces a change on `channel` to every listener when the transaction of `sql` commits;
    /// nothing where the database has no notifications.
    func notify(channel: String, in sql: any SQLDatabase) async throws
}

extension Database {
    public func waitUntilReachable(logger: Logger) async throws {
        _ = try await self.withSQL { sql in try await sql.raw("SELECT 1").all() }
    }

    public func listen(channel: String, _ onChange: @escaping @Sendable () async -> Void) async throws -> Bool { false }

    public func notify(channel: String, in sql: any SQLDatabase) async throws {}

    public func lock(_ key: String, in sql: any SQLDatabase) async throws {
        guard self.dialect == .postgres else { return }
        try await sql.raw("SELECT pg_advisory_xact_lock(hashtextextended(\(bind: key), 0))").run()
    }
}

/// What storage code throws; controllers map it to HTTP (see ``StorageError/serviceError``).
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible, ServiceErrorConvertible {
    /// The thing asked for does not exist.
    case notFound(String)
    /// The write contradicts what is stored (a duplicate, a stale version).
    case conflict(String)
    /// The value cannot be stored as given.
    case invalid(String)
    /// The database cannot be reached.
    case unavailable(String)
    /// A quota would be exceeded (the message names the quota and its value).
    case quotaExceeded(String)

    /// Whether this is ``conflict(_:)``.
    public var isConflict: Bool {
        if case .conflict = self { return true }
        return false
    }

    /// Whether this is ``quotaExceeded(_:)``.
    public var isQuota: Bool {
        if case .quotaExceeded = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .notFound(let message), .conflict(let message), .invalid(let message), .unavailable(let message), .quotaExceeded(let message):
            message
        }
    }

    /// The client-facing error: 404, 409, 400, 503 or 403 with the message.
    public var serviceError: ServiceError {
        switch self {
        case .notFound(let message): ServiceError(.notFound, message: message)
        case .conflict(let message): ServiceError(.conflict, message: message)
        case .invalid(let message): ServiceError(.badRequest, message: message)
        case .unavailable(let message): ServiceError(.serviceUnavailable, message: message)
        case .quotaExceeded(let message): ServiceError(.forbidden, message: message)
        }
    }
}

/// Opens the database a ``StorageLocation`` names, and the long-lived service that owns it.
public enum DatabaseFactory {
    /// - Returns: the database and the `Service` that must run for as long as it is used.
    public static func open(_ location: StorageLocation, logger: Logger) async throws -> (any Database, any Service) {
        switch location {
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

    /// Opens (and, when `create`, creates) the SQLite file at `path`.
    /// - Throws: ``StorageError/notFound(_:)`` when `create` is false and there is no such file.
    public static func open(path: String, create: Bool = true, logger: Logger) async throws -> SQLiteStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !create {
            guard FileManager.default.fileExists(atPath: path) else { throw StorageError.notFound("no StreamHub store at \(path)") }
        } else if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // Query logs carry bound values (hashes, mail bodies): never below info, whatever LOG_LEVEL says.
        var queryLogger = logger
        queryLogger.logLevel = max(logger.logLevel, .info)
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: queryLogger)
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

    public func withSQL<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await self.gate.run { try await body(self.connection.sql()) }
    }

    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
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
    let client: PostgresClient
    let location: PostgresLocation
    let logger: Logger
    /// How long a caller waits for a pooled connection before the database counts as away.
    var leaseTimeout: Duration { min(self.location.connectTimeout, self.location.queryTimeout, .seconds(5)) }
    /// Set when a unit of work lost its connection or got none in time, cleared when one gets a
    /// connection: while the database is known to be away (stopped, restarting, cut off), a unit
    /// waits at most ``awayLeaseTimeout`` for a connection — a stopped database is a 503 in about a
    /// second, not at the full deadline.
    let away = DatabaseAway()
    static let awayLeaseTimeout: Duration = .seconds(1)

    public init(location: PostgresLocation, logger: Logger) {
        // The pool's own connection retries are noisy at info; start-up reports them itself (warning).
        var background = logger
        background.logLevel = max(logger.logLevel, .warning)
        self.client = PostgresClient(configuration: location.clientConfiguration(), backgroundLogger: background)
        self.location = location
        self.logger = logger
    }

    public func waitUntilReachable(logger: Logger) async throws {
        let deadline = ContinuousClock.now + self.location.connectTimeout
        var attempt = 0
        var lastError = "no answer"
        while ContinuousClock.now < deadline {
            attempt += 1
            let remaining = deadline - ContinuousClock.now
            do {
                // A connection of its own, not the pool's: the pool retries a refused login or a
                // missing database until it times out, and the reason would be lost.
                try await Self.withTimeout(min(remaining, .seconds(2))) { try await self.probe() }
                return
            } catch {
                lastError = Self.describe(error)
                logger.warning(
                    "PostgreSQL not reachable yet, retrying",
                    metadata: ["endpoint": "\(self.location.endpoint)", "attempt": "\(attempt)", "error": "\(lastError)"])
            }
            try await Task.sleep(for: min(.milliseconds(500), max(.zero, deadline - ContinuousClock.now)))
        }
        throw StorageError.unavailable(
            "cannot reach PostgreSQL at \(self.location.endpoint) (DATABASE_URL, user \(self.location.username), database \(self.location.database)) "
                + "within \(self.location.connectTimeout.components.seconds) s: \(lastError)")
    }

    /// Connects once with the configured settings, asks `SELECT 1`, and closes.
    func probe() async throws {
        let location = self.location
        let tls: PostgresConnection.Configuration.TLS
        switch location.sslMode {
        case "require": tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case "prefer": tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        default: tls = .disable
        }
        let configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password, database: location.database, tls: tls)
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: 0, logger: self.logger
        ).get()
        do {
            _ = try await connection.query("SELECT 1", logger: self.logger)
        } catch {
            try? await connection.close().get()
            throw error
        }
        try? await connection.close().get()
    }

    static func withTimeout(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await body()
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            defer { group.cancelAll() }
            guard try await group.next() == true else { throw StorageError.unavailable("timed out") }
        }
    }

    /// What PostgreSQL (or the network) said, in words an operator acts on.
    static func describe(_ error: any Error) -> String {
        if let psql = error as? PSQLError {
            if let message = psql.serverInfo?[.message] {
                let state = psql.serverInfo?[.sqlState] ?? ""
                let meaning: String
                switch state {
                case "28P01", "28000": meaning = "authentication failed: check the user and password in DATABASE_URL"
                case "3D000": meaning = "the database does not exist: create it, or name another in DATABASE_URL"
                case "53300": meaning = "too many connections"
                case "57P03": meaning = "the server is starting up or shutting down"
                default: meaning = "PostgreSQL refused the connection"
                }
                return "\(meaning) (PostgreSQL said: \(message)\(state.isEmpty ? "" : ", SQLSTATE \(state)"))"
            }
            if let underlying = psql.underlying { return Self.describe(underlying) }
            return "\(psql.code)"
        }
        if let storage = error as? StorageError, case .unavailable("timed out") = storage { return "no answer (the server did not respond)" }
        let text = "\(error)"
        if text.contains("connection refused") || text.contains("Connection refused") || text.contains("ECONNREFUSED") {
            return "connection refused: nothing listens at that host and port"
        }
        return text
    }

    public func listen(channel: String, _ onChange: @escaping @Sendable () async -> Void) async throws -> Bool {
        try await self.client.withConnection { connection in
            try await connection.listen(on: channel) { notifications in
                for try await _ in notifications { await onChange() }
            }
        }
        return true
    }

    public func notify(channel: String, in sql: any SQLDatabase) async throws {
        try await sql.raw("SELECT pg_notify(\(bind: channel), '')").run()
    }

    public func withSQL<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            return try await self.leased { connection in try await body(connection.sql()) }
        } catch {
            throw Self.storageError(error)
        }
    }

    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            return try await self.leased { connection in
                let sql = connection.sql()
                try await sql.raw("BEGIN").run()
                do {
                    let result = try await body(sql)
                    try await sql.raw("COMMIT").run()
                    return result
                } catch {
                    // A closed connection (lost, or closed at the deadline) has no transaction left
                    // on the server, and a statement sent on it may never complete.
                    if !connection.isClosed { try? await sql.raw("ROLLBACK").run() }
                    throw error
                }
            }
        } catch {
            throw Self.storageError(error)
        }
    }

    /// What the watchdog of one unit of work knows: when a connection was leased, and which; and
    /// the caller's continuation, resumed once by whichever ends first (the work or the deadline).
    final class DatabaseAway: Sendable {
        let flag = Mutex(false)
        var isSet: Bool { self.flag.withLock { $0 } }
        func set(_ value: Bool) { self.flag.withLock { $0 = value } }
    }

    final class LeaseState<T: Sendable>: Sendable {
        let away: DatabaseAway
        init(away: DatabaseAway) { self.away = away }

        struct Held {
            var since: ContinuousClock.Instant?
            var connection: PostgresConnection?
            var continuation: CheckedContinuation<T, any Error>?
        }
        let held = Mutex(Held())

        func acquired(_ connection: PostgresConnection) {
            self.held.withLock {
                $0.since = .now
                $0.connection = connection
            }
            self.away.set(false)
            // A connection lost mid-work answers the caller at once: statements sent on it after
            // the loss would never complete.
            connection.closeFuture.whenComplete { _ in
                if self.finish(.failure(StorageError.unavailable("The database is not reachable; try again shortly"))) {
                    self.away.set(true)
                }
            }
        }

        var since: ContinuousClock.Instant? { self.held.withLock { $0.since } }

        /// Resumes the caller unless it was resumed already. - Returns: whether this did.
        @discardableResult
        func finish(_ result: Result<T, any Error>) -> Bool {
            guard let continuation = self.held.withLock({ held -> CheckedContinuation<T, any Error>? in
                defer { held.continuation = nil }
                return held.continuation
            }) else { return false }
            continuation.resume(with: result)
            return true
        }

        /// Closes the held connection: a statement waiting on a database that went away (or on a
        /// lock) fails instead of holding the connection.
        func abandon() {
            guard let connection = self.held.withLock({ $0.connection }) else { return }
            connection.close().whenComplete { _ in }
        }
    }

    /// Runs `body` on a pooled connection within one deadline, `queryTimeout` from the call
    /// (``DatabaseDeadline`` may say otherwise). While the database is away the pool waits for a
    /// connection indefinitely: a caller that has none within `leaseTimeout` (or the deadline) gets
    /// ``StorageError/unavailable(_:)`` (503). Once a connection is held, the work runs until the
    /// deadline: past it the connection is closed — which fails the statement in flight and rolls
    /// back its transaction on the server — and the caller gets the same 503.
    ///
    /// The caller is answered at the deadline whatever the work does: it runs in a task of its own
    /// that the caller does not wait for. (A statement sent on a connection that has just closed
    /// never completes in postgres-nio — its write fails with no one told — so waiting for the work
    /// could mean waiting forever: the hang of requests and of shutdown seen at a PostgreSQL
    /// restart.) So no unit of work holds its caller longer than `DATABASE_QUERY_TIMEOUT_S`.
    func leased<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let state = LeaseState<T>(away: self.away)
        let leaseTimeout = self.away.isSet ? min(self.leaseTimeout, Self.awayLeaseTimeout) : self.leaseTimeout
        let workTimeout = DatabaseDeadline.override ?? self.location.queryTimeout
        let deadline = ContinuousClock.now + workTimeout
        let logger = self.logger
        let client = self.client
        var work: Task<Void, Never>?
        var watchdog: Task<Void, Never>?
        defer {
            watchdog?.cancel()
            work?.cancel()
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                state.held.withLock { $0.continuation = continuation }
                work = Task {
                    do {
                        let value = try await client.withConnection { connection in
                            state.acquired(connection)
                            return try await body(connection)
                        }
                        state.finish(.success(value))
                    } catch {
                        state.finish(.failure(error))
                    }
                }
                watchdog = Task {
                    try? await Task.sleep(until: min(ContinuousClock.now + leaseTimeout, deadline), clock: .continuous)
                    if Task.isCancelled { return }
                    guard state.since != nil else {
                        if state.finish(.failure(StorageError.unavailable("The database is not reachable; try again shortly"))) {
                            state.away.set(true)
                        }
                        return
                    }
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    if Task.isCancelled { return }
                    if state.finish(.failure(StorageError.unavailable("The database did not answer in time; try again shortly"))) {
                        state.abandon()
                        logger.warning(
                            "database work past its deadline; connection closed",
                            metadata: ["deadline_ms": "\(workTimeout.components.seconds * 1000 + workTimeout.components.attoseconds / 1_000_000_000_000_000)"])
                    }
                }
            }
        } onCancel: {
            // The caller is gone (shutdown): its work must not outlive it.
            if state.finish(.failure(CancellationError())) { state.abandon() }
        }
    }

    /// What a driver error means to callers: a unique key taken by a concurrent writer is a
    /// conflict (409), a lost or refused connection is the database being away (503); anything
    /// else stays as it is (a bug: 500).
    static func storageError(_ error: any Error) -> any Error {
        guard let psql = error as? PSQLError else { return error }
        switch psql.code {
        case .server:
            let state = psql.serverInfo?[.sqlState] ?? ""
            if state == PostgresError.Code.uniqueViolation.raw {
                return StorageError.conflict("This was created by a concurrent request; try again")
            }
            if Self.meansUnavailable(sqlState: state) {
                return StorageError.unavailable("The database is not reachable; try again shortly")
            }
            return error
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .sslUnsupported,
            .failedToAddSSLHandler, .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            return StorageError.unavailable("The database is not reachable; try again shortly")
        default:
            return error
        }
    }

    /// Whether a server error's SQLSTATE says the database is away or cannot take work now rather
    /// than that the statement is wrong: class 08 (connection exception), 57 (operator
    /// intervention: `57P01` administrator shutdown, `57014` statement cancelled by the deadline),
    /// 53 (insufficient resources: too many connections, disk full) and 58 (system error).
    public static func meansUnavailable(sqlState: String) -> Bool {
        ["08", "57", "53", "58"].contains(String(sqlState.prefix(2)))
    }

    public func run() async throws {
        await self.client.run()
    }
}

/// The deadline of a unit of work on PostgreSQL, when it should not be the store's
/// `DATABASE_QUERY_TIMEOUT_S` (migrations, which may rewrite large tables, run under a longer one).
public enum DatabaseDeadline {
    @TaskLocal public static var override: Duration?
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
        try await self.withDatabase(location, create: true, logger: logger, body)
    }

    /// Like ``withDatabase(_:logger:_:)``; with `create` false a missing SQLite file is
    /// ``StorageError/notFound(_:)`` instead of a new empty store.
    public static func withDatabase<T: Sendable>(
        _ location: StorageLocation, create: Bool, logger: Logger, _ body: @escaping @Sendable (any Database) async throws -> T
    ) async throws -> T {
        switch location {
        case .sqlite(let path):
            let store = try await SQLiteStore.open(path: path, create: create, logger: logger)
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
                group.addTask {
                    try await store.waitUntilReachable(logger: logger)
                    return try await body(store)
                }
                defer { group.cancelAll() }
                while let next = try await group.next() {
                    if let result = next { return result }
                }
                throw CancellationError()
            }
        }
    }
}
