import Foundation
import Logging
import ServiceKit
import ServiceStorage

/// The storage backends a repository test runs against: always a fresh SQLite file, and PostgreSQL
/// when `STREAMHUB_TEST_DATABASE_URL` is set (CI sets it), each test in a schema of its own.
public enum TestDatabases {
    public static let postgresURL: String? = {
        let value = ProcessInfo.processInfo.environment["STREAMHUB_TEST_DATABASE_URL"]
        return (value?.isEmpty ?? true) ? nil : value
    }()

    public static var postgresEnabled: Bool { postgresURL != nil }

    /// Backend names for parameterised tests.
    public static var backends: [String] {
        postgresEnabled ? ["sqlite", "postgres"] : ["sqlite"]
    }

    public static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    /// A temporary directory removed by the caller (or left in /tmp).
    public static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "streamhub-test-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A fresh, empty storage location for `backend`.
    public static func freshLocation(_ backend: String, name: String) async throws -> StorageLocation {
        switch backend {
        case "postgres":
            let url = try require0(postgresURL)
            let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
            let base = try PostgresLocation(url: url)
            try await DatabaseFactory.withDatabase(.postgres(base), logger: logger) { database in
                try await database.withSQL { sql in try await sql.raw("CREATE SCHEMA \(unsafeRaw: String(schema))").run() }
            }
            let separator = url.contains("?") ? "&" : "?"
            return .postgres(try PostgresLocation(url: url + separator + "schema=" + schema))
        default:
            return .sqlite(path: try temporaryDirectory() + "/\(name).sqlite")
        }
    }

    /// The `DATABASE_URL` for a fresh schema (end-to-end tests hand it to the services).
    public static func freshPostgresURL() async throws -> String? {
        guard let url = postgresURL else { return nil }
        guard case .postgres(let location) = try await freshLocation("postgres", name: "e2e"), let schema = location.schema else { return nil }
        return url + (url.contains("?") ? "&" : "?") + "schema=" + schema
    }
}

struct MissingValue: Error {}

func require0<T>(_ value: T?) throws -> T {
    guard let value else { throw MissingValue() }
    return value
}
