import ArgumentParser
import Foundation
import IdentityApp
import Logging
import ServiceKit
import ServiceStorage
import Shared

@main
struct StreamHubCommand: AsyncParsableCommand {
    static func main() async {
        await Self.mainReportingFailures()
    }

    static let configuration = CommandConfiguration(
        commandName: "streamhub",
        abstract: "Operator tool for the StreamHub control plane.",
        subcommands: [UpCommand.self, SeedTokenCommand.self, OutboxCommand.self]
    )
}

/// `streamhub seed-token --name NAME`: the overview's `deploy/seed-token.js`.
struct SeedTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed-token",
        abstract: "Mint a global sk_ token into identity's store and print it (shown once; only its hash is kept).",
        discussion: """
            Uses DATABASE_URL when set; else the SQLite store that `streamhub up --data-dir DIR` runs on (DIR/data), \
            or, without --data-dir, the one under STREAMHUB_DATA_DIR (default .streamhub/data). The store must exist: \
            start the system once first.
            """
    )

    @Option(name: .long, help: "A name to recognise the token by in listings.")
    var name: String

    @Option(name: .long, help: "The data directory `streamhub up --data-dir` was given (default of up: .streamhub).")
    var dataDir: String?

    func validate() throws {
        if let problem = Identifier.problem(self.name) { throw ValidationError("--name \(problem)") }
        guard self.name.count <= 100 else { throw ValidationError("--name must be at most 100 characters") }
    }

    func run() async throws {
        var values = ProcessInfo.processInfo.environment
        if let dataDir { values[ConfigKey.dataDir] = UpCommand.storeDirectory(dataDir: dataDir) }
        do {
            let location = try StorageLocation(reader: SettingsReader.values(values), name: "identity")
            print(try await TokenSeeder.mint(name: self.name, location: location, create: false))
        } catch let error as ConfigurationError {
            throw CLIFailure(error.message)
        } catch let error as StorageError {
            throw CLIFailure("\(error)")
        }
    }
}

/// `streamhub outbox`: the newest messages of the local mail outbox, with their links.
struct OutboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "Print the newest mail in the local outbox (where identity writes mail when no SMTP server is set), links included.",
        discussion: "Reads STREAMHUB_MAIL_OUTBOX, else DIR/data/outbox for --data-dir DIR, else $STREAMHUB_DATA_DIR/outbox (default .streamhub/data/outbox)."
    )

    @Option(name: .long, help: "The data directory `streamhub up --data-dir` was given.")
    var dataDir: String?

    @Option(name: .long, help: "How many messages, newest first.")
    var count: Int = 5

    func validate() throws {
        guard (1...1000).contains(self.count) else { throw ValidationError("--count must be in 1...1000") }
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let directory =
            environment[ConfigKey.mailOutbox].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((self.dataDir.map { UpCommand.storeDirectory(dataDir: $0) } ?? environment[ConfigKey.dataDir] ?? ".streamhub/data") as NSString)
            .appendingPathComponent("outbox")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw CLIFailure("no outbox at \(directory) (no mail has been written yet)")
        }
        let messages = names.filter { $0.hasSuffix(".eml") }.sorted().suffix(self.count).reversed()
        if messages.isEmpty { print("The outbox at \(directory) is empty.") }
        for name in messages {
            guard let text = try? String(contentsOfFile: (directory as NSString).appendingPathComponent(name), encoding: .utf8) else { continue }
            let lines = text.components(separatedBy: "\r\n")
            func header(_ key: String) -> String { lines.first { $0.hasPrefix(key + ": ") }.map { String($0.dropFirst(key.count + 2)) } ?? "" }
            print("\(header("Date"))  to \(header("To"))  \(header("Subject"))")
            for line in lines where line.hasPrefix("http://") || line.hasPrefix("https://") { print("  \(line)") }
        }
    }
}

/// A failure the CLI reports as one line on stderr with exit code 2 (no usage block: the command
/// line was fine, the situation is not).
struct CLIFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension AsyncParsableCommand {
    /// Runs the command; a ``CLIFailure`` prints `streamhub: <message>` and exits 2.
    static func mainReportingFailures() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let failure as CLIFailure {
            FileHandle.standardError.write(Data("streamhub: \(failure.description)\n".utf8))
            Foundation.exit(2)
        } catch {
            exit(withError: error)
        }
    }
}

/// Mints global tokens straight into identity's store (the CLI runs where the data lives).
enum TokenSeeder {
    static var quietLogger: Logger {
        var logger = Logger(label: "streamhub")
        logger.logLevel = .warning
        return logger
    }

    /// - Parameter create: whether a missing SQLite store may be created (`up` on a first run);
    ///   false makes it an error, so a wrong `--data-dir` never prints a token nobody will accept.
    static func mint(name: String, location: StorageLocation, create: Bool) async throws -> String {
        let logger = Self.quietLogger
        return try await DatabaseFactory.withDatabase(location, create: create, logger: logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: logger)
            let minted = try await ApiTokenMinter.mint(
                NewApiToken(name: name, scope: .global), into: SQLApiTokenRepository(database: database), now: Date()
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
