import ArgumentParser
import AsyncHTTPClient
import Foundation
import ServiceKit
import ServiceStorage
import Shared
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The last SIGINT/SIGTERM received (0 = none). A plain handler sets it; `up` polls it. Dispatch
/// signal sources miss signals here once Foundation's `Process` threads exist.
let receivedStopSignal = Atomic<Int32>(0)

/// `streamhub up`: the whole system on loopback with SQLite, until Ctrl-C.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start all four services on loopback (SQLite under the data directory), print the URL and a global token.",
        discussion: """
            Secrets (STREAMHUB_INTERNAL_TOKEN, STREAMHUB_JWT_SECRET, STREAMHUB_CLUSTER_TOKEN, and a development LiveKit \
            pair LIVEKIT_API_KEY / LIVEKIT_API_SECRET) are generated on the \
            first run and kept in <data-dir>/secrets.env (mode 0600); variables already set in the environment win. \
            Service logs go to <data-dir>/logs/. Ctrl-C stops everything.
            """
    )

    @Option(name: .long, help: "Where data, secrets and logs live.")
    var dataDir: String = ".streamhub"

    @Option(name: .long, help: "Gateway port; identity, authz and media use the next three.")
    var port: Int = DefaultPort.gateway

    @Flag(name: .long, help: "Fetch nothing from the network (Video.js is installed from PyPI on first run otherwise).")
    var offline = false

    static let services: [(name: String, binary: String, offset: Int)] = [
        ("identity", "streamhub-identity", 1),
        ("authz", "streamhub-authz", 2),
        ("media", "streamhub-media", 3),
        ("gateway", "streamhub-gateway", 0),
    ]

    func validate() throws {
        guard (1...65532).contains(self.port) else { throw ValidationError("--port must be in 1...65532") }
    }

    /// Where the services keep their SQLite files for a given `--data-dir` (`seed-token` uses the same).
    static func storeDirectory(dataDir: String) -> String {
        (dataDir as NSString).standardizingPath + "/data"
    }

    func run() async throws {
        // Ctrl-C, SIGTERM and SIGHUP (the terminal closed) all stop the services; a closed
        // terminal's broken pipe must not kill `up` and leave them running.
        for stopSignal in [SIGINT, SIGTERM, SIGHUP] {
            signal(stopSignal) { received in receivedStopSignal.store(received, ordering: .relaxed) }
        }
        signal(SIGPIPE, SIG_IGN)
        // Every port must be free before anything starts: a second `up` must not mistake the first
        // one's services for its own and report success.
        let taken = Self.services.map { self.port + $0.offset }.filter { !Self.isFree(port: $0) }
        guard taken.isEmpty else {
            throw CLIFailure(
                "port\(taken.count == 1 ? "" : "s") \(taken.map(String.init).joined(separator: ", ")) on 127.0.0.1 \(taken.count == 1 ? "is" : "are") in use "
                    + "(another `streamhub up`? stop it, or pick other ports with --port)")
        }
        let binDir = try Self.ensureBinaries()
        let dataDir = (self.dataDir as NSString).standardizingPath
        try FileManager.default.createDirectory(atPath: dataDir + "/logs", withIntermediateDirectories: true)
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in try Self.loadOrCreateSecrets(at: dataDir + "/secrets.env") where environment[key] == nil {
            environment[key] = value
        }
        environment[ConfigKey.host] = "127.0.0.1"
        // The services stop by themselves if `up` dies without stopping them (SIGKILL).
        environment[ServiceMain.supervisorKey] = String(getpid())
        environment[ConfigKey.dataDir] = Self.storeDirectory(dataDir: dataDir)
        environment[ConfigKey.identityURL] = "http://127.0.0.1:\(self.port + 1)"
        environment[ConfigKey.authzURL] = "http://127.0.0.1:\(self.port + 2)"
        environment[ConfigKey.mediaURL] = "http://127.0.0.1:\(self.port + 3)"
        // Mailed links, the sessions' issuer and oEmbed name the port this gateway listens on,
        // unless an operator named a public URL of their own.
        if environment[ConfigKey.publicURL]?.isEmpty ?? true { environment[ConfigKey.publicURL] = "http://127.0.0.1:\(self.port)" }
        // A bad value is the services' to refuse, in their own words (below).
        let mode = try? SettingsReader.values(environment).enforcementMode()

        let supervisor = ProcessSupervisor()
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            for service in Self.services {
                var env = environment
                env[ConfigKey.port] = String(self.port + service.offset)
                try await supervisor.start(
                    name: service.name, executable: binDir + "/" + service.binary, environment: env, logFile: dataDir + "/logs/\(service.name).log"
                )
                let healthPath = "/internal/v1/ready"
                try await Self.waitHealthy(
                    client: client, url: "http://127.0.0.1:\(self.port + service.offset)\(healthPath)", name: service.name, supervisor: supervisor
                )
                say("  \(service.name) is up on 127.0.0.1:\(self.port + service.offset)")
            }
            let identityStore = try StorageLocation(reader: SettingsReader.values(environment), name: "identity")
            say("")
            say("StreamHub is running at http://127.0.0.1:\(self.port)/api/v1")
            if let mode { say((mode == .on ? "" : "WARNING: ") + ServiceMain.modeLine(mode)) }
            if try await TokenSeeder.hasActiveGlobalToken(location: identityStore) {
                say("A global token was minted on the first run; mint another with: streamhub seed-token --name NAME --data-dir \(dataDir)")
            } else {
                let token = try await TokenSeeder.mint(name: "streamhub up (first run)", location: identityStore, create: true)
                say("Global API token (shown once): \(token)")
                say("  curl -H \"Authorization: Bearer \(token)\" http://127.0.0.1:\(self.port)/api/v1/apps")
            }
            if let smtp = environment[ConfigKey.smtpHost], !smtp.isEmpty {
                say("Mail (sign-in, reset and invitation links) goes over SMTP to \(smtp) (\(ConfigKey.smtpHost)); failures are in logs/identity.log")
            } else if let outbox = environment[ConfigKey.mailOutbox], !outbox.isEmpty {
                say("Mail (sign-in, reset and invitation links) goes to \(outbox); read it with: streamhub outbox")
            } else {
                say("Mail (sign-in, reset and invitation links) goes to \(Self.storeDirectory(dataDir: dataDir))/outbox; read it with: streamhub outbox --data-dir \(dataDir)")
            }
            let docsDir = environment[ConfigKey.docsDir].flatMap { $0.isEmpty ? nil : $0 } ?? Self.storeDirectory(dataDir: dataDir) + "/swagger-ui"
            let mediaRoot = environment[ConfigKey.mediaRoot].flatMap { $0.isEmpty ? nil : $0 } ?? Self.storeDirectory(dataDir: dataDir) + "/media"
            if self.offline {
                if !FileManager.default.fileExists(atPath: mediaRoot + "/assets/vendor/video.min.js") {
                    say("Video.js is not installed (--offline); players use the browser's own HLS.")
                }
                if !FileManager.default.fileExists(atPath: docsDir + "/swagger-ui-bundle.js") {
                    say("Swagger UI is not installed (--offline); /api/v1/docs lists the operations without the interactive view.")
                }
            } else {
                WebAssets.ensureVideoJS(mediaRoot: mediaRoot, logs: dataDir + "/logs")
                WebAssets.ensureSwaggerUI(into: docsDir, logs: dataDir + "/logs")
            }
            say("Sign up or sign in: http://127.0.0.1:\(self.port)/login (mailed links open these pages; the mail is in the outbox)")
            say("API docs: http://127.0.0.1:\(self.port)/api/v1/docs (OpenAPI 3.1: /api/v1/openapi.json)")
            if WebAssets.ensureSampleStream(mediaRoot: mediaRoot, logs: dataDir + "/logs"),
                let player = await WebAssets.wireSampleApp(
                    dataDir: dataDir, mediaRoot: mediaRoot, gateway: "http://127.0.0.1:\(self.port)", identityStore: identityStore, client: client)
            {
                say("Sample stream: \(player)  (files: http://127.0.0.1:\(self.port)/samples/demo/index.m3u8)")
            }
            say("Logs: \(dataDir)/logs/   Press Ctrl-C to stop.")
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            await supervisor.stopAll()
            throw error
        }
        var reason = ""
        while reason.isEmpty {
            let signal = receivedStopSignal.load(ordering: .relaxed)
            if signal != 0 {
                reason = signal == SIGINT ? "Ctrl-C" : signal == SIGHUP ? "SIGHUP: the terminal closed" : "SIGTERM"
            } else if let name = await supervisor.anyExited() {
                reason = "\(name) exited unexpectedly: \(await supervisor.lastMessage(name))"
            } else {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        say("\nStopping (\(reason))…")
        await supervisor.stopAll()
        say("Stopped.")
        if reason.contains("unexpectedly") { throw CLIFailure(reason) }
    }

    /// The directory of the service executables, building them first when run from the package
    /// (`swift run streamhub up` builds only the CLI).
    static func ensureBinaries() throws -> String {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let binDir = (me as NSString).deletingLastPathComponent
        let missing = Self.services.map(\.binary).filter { !FileManager.default.isExecutableFile(atPath: binDir + "/" + $0) }
        guard !missing.isEmpty else { return binDir }
        guard FileManager.default.fileExists(atPath: "Package.swift") else {
            throw CLIFailure("missing service executables next to \(me): \(missing.joined(separator: ", "))")
        }
        say("Building \(missing.joined(separator: ", "))…")
        let release = binDir.hasSuffix("/release") || binDir.contains("/release/")
        for product in missing {
            let build = Process()
            build.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            build.arguments = ["swift", "build", "--product", product] + (release ? ["-c", "release"] : [])
            try build.run()
            build.waitUntilExit()
            guard build.terminationStatus == 0 else { throw CLIFailure("building \(product) failed") }
        }
        return binDir
    }

    /// The secrets of `path`, generating (and appending) any that are missing — a data directory
    /// from an older version gains the new ones (the LiveKit pair) without losing the rest.
    static func loadOrCreateSecrets(at path: String) throws -> [String: String] {
        var values: [String: String] = [:]
        let existing = try? String(contentsOfFile: path, encoding: .utf8)
        for line in (existing ?? "").split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        func secret() -> String {
            var generator = SystemRandomNumberGenerator()
            return Base64URL.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        }
        var added: [String: String] = [:]
        for key in [ConfigKey.internalToken, ConfigKey.jwtSecret, ConfigKey.clusterToken, ConfigKey.livekitAPISecret] where values[key] == nil {
            added[key] = secret()
        }
        if values[ConfigKey.livekitAPIKey] == nil { added[ConfigKey.livekitAPIKey] = "APIdev" + String(secret().prefix(10)).filter { $0.isLetter || $0.isNumber } }
        guard !added.isEmpty else { return values }
        values.merge(added) { old, _ in old }
        let header = existing == nil ? "# generated by `streamhub up`; keep private\n" : ""
        let text = (existing ?? "") + header + added.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CLIFailure("cannot write \(path)")
        }
        return values
    }

    static func waitHealthy(client: HTTPClient, url: String, name: String, supervisor: ProcessSupervisor) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if await supervisor.hasExited(name) {
                throw CLIFailure("\(name) stopped during start-up: \(await supervisor.lastMessage(name))")
            }
            if let response = try? await client.execute(HTTPClientRequest(url: url), timeout: .seconds(2)), response.status == .ok {
                // Ready only counts if it is still ours that answers.
                if await supervisor.hasExited(name) { continue }
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CLIFailure("\(name) did not become ready within 60 s: \(await supervisor.lastMessage(name))")
    }

    /// Whether nothing listens on `port` on loopback.
    static func isFree(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // As the servers bind: a port whose last connections linger in TIME_WAIT is free.
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        } == 0
    }
}

/// Starts child processes and stops them (SIGTERM, then SIGKILL after 10 s).
actor ProcessSupervisor {
    var processes: [(name: String, process: Process)] = []
    var exited: Set<String> = []
    /// Where each service's log of this run starts (logs are appended across runs).
    var logStarts: [String: (path: String, offset: UInt64)] = [:]

    func start(name: String, executable: String, environment: [String: String], logFile: String) throws {
        if !FileManager.default.fileExists(atPath: logFile) { _ = FileManager.default.createFile(atPath: logFile, contents: nil) }
        guard let log = FileHandle(forWritingAtPath: logFile) else { throw CLIFailure("cannot write \(logFile)") }
        self.logStarts[name] = (logFile, log.seekToEndOfFile())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        process.terminationHandler = { [weak self] _ in
            guard let self else { return }
            Task { await self.markExited(name) }
        }
        try process.run()
        self.processes.append((name, process))
    }

    func markExited(_ name: String) {
        self.exited.insert(name)
    }

    func hasExited(_ name: String) -> Bool { self.exited.contains(name) }

    /// The service's own last words in this run: its plain-text stop message, else its last
    /// critical or error line (`msg: error`); failing both, how it ended (an exit code or a signal)
    /// and where its log is — never an access line's `request`.
    func lastMessage(_ name: String) -> String {
        guard let start = self.logStarts[name], let handle = FileHandle(forReadingAtPath: start.path) else { return "no log" }
        defer { try? handle.close() }
        handle.seek(toFileOffset: start.offset)
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        if let plain = lines.last(where: { !$0.hasPrefix("{") }) { return String(plain) }
        for line in lines.reversed() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let level = object["level"] as? String, ["critical", "error"].contains(level), let message = object["msg"] as? String
            else { continue }
            return [message, object["error"] as? String].compactMap { $0 }.joined(separator: ": ")
        }
        var ending = "it logged no error"
        if let process = self.processes.first(where: { $0.name == name })?.process, !process.isRunning {
            ending =
                process.terminationReason == .uncaughtSignal
                ? "killed by signal \(process.terminationStatus)\(process.terminationStatus == SIGKILL ? " (SIGKILL: out of memory, or killed by hand?)" : "")"
                : "exit code \(process.terminationStatus), and it logged no error"
        }
        return "\(ending) (log: \(start.path))"
    }

    func anyExited() -> String? { self.exited.first }

    func stopAll() async {
        for (_, process) in self.processes.reversed() where process.isRunning {
            process.terminate()
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while self.processes.contains(where: { $0.process.isRunning }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for (_, process) in self.processes where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }
}

/// Writes a line to stdout unbuffered, so progress shows even when stdout is a pipe or a file.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
