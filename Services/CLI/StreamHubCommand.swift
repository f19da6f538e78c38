import ArgumentParser
import Foundation
import IdentityApp
import Logging
import ServiceKit
import Shared

@main
struct StreamHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streamhub",
        abstract: "Operator tool for the StreamHub control plane.",
        subcommands: [UpCommand.self, SeedTokenCommand.self]
    )
}

/// `streamhub seed-token --name NAME`: the overview's `deploy/seed-token.js`.
struct SeedTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed-token",
        abstract: "Mint a global sk_ token into identity's store and print it (shown once; only its hash is kept).",
        discussion: "Uses DATABASE_URL when set, else the SQLite store under STREAMHUB_DATA_DIR (default .streamhub/data)."
    )

    @Option(name: .long, help: "A name to recognise the token by in listings.")
    var name: String

    @Option(name: .long, help: "Data directory of the SQLite store (overrides STREAMHUB_DATA_DIR).")
    var dataDir: String?

    func run() async throws {
        var values = ProcessInfo.processInfo.environment
        if let dataDir { values[ConfigKey.dataDir] = dataDir }
        let location: StorageLocation
        do {
            location = try StorageLocation(reader: SettingsReader.values(values), name: "identity")
        } catch let error as ConfigurationError {
            throw ValidationError(error.message)
        }
        let token = try await TokenSeeder.mint(name: self.name, location: location)
        print(token)
    }
}

/// Mints global tokens straight into identity's store (the CLI runs where the data lives).
enum TokenSeeder {
    static var quietLogger: Logger {
        var logger = Logger(label: "streamhub")
        logger.logLevel = .warning
        return logger
    }

    static func mint(name: String, location: StorageLocation) async throws -> String {
        let logger = Self.quietLogger
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= 100 else { throw ValidationError("--name must be 1 to 100 characters") }
        return try await DatabaseFactory.withDatabase(location, logger: logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: logger)
            let minted = try await ApiTokenMinter.mint(
                NewApiToken(name: trimmed, scope: .global), into: SQLApiTokenRepository(database: database), now: Date()
            )
            return minted.token
        }
    }

    /// Whether identity's store holds any global token that is still active.
    static func hasActiveGlobalToken(location: StorageLocation) async throws -> Bool {
        let logger = Self.quietLogger
        return try await DatabaseFactory.withDatabase(location, logger: logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: logger)
            let now = Timestamp.millis(Date())
            return try await SQLApiTokenRepository(database: database).list().contains { $0.scope == .global && $0.isActive(at: now) }
        }
    }
}
