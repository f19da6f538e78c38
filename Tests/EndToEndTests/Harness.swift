import AsyncHTTPClient
import Foundation
import NIOCore
import ServiceKit
import Shared
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Starts the real built executables on free loopback ports and talks HTTP to them.
final class Stack: @unchecked Sendable {
    static let services = ["identity", "authz", "media", "gateway"]
    static let internalToken = "e2e-internal-token-" + String(repeating: "x", count: 24)
    static let jwtSecret = "e2e-jwt-secret-" + String(repeating: "y", count: 24)
    static let clusterToken = "e2e-cluster-token-" + String(repeating: "z", count: 24)
    static let livekitKey = "APIe2ekey"
    static let livekitSecret = "e2e-livekit-secret-" + String(repeating: "l", count: 24)

    let dataDir: String
    let ports: [String: Int]
    let environment: [String: String]
    /// Services waited for by liveness (`/internal/v1/health`) rather than readiness.
    var livenessOnly: Set<String> = []
    /// Settings only one service gets (`["authz": ["STREAMHUB_AUTHZ_ENFORCE": "on"]]`).
    let perService: [String: [String: String]]
    var processes: [String: Process] = [:]
    let lock = NSLock()

    /// The directory holding the executables: the one the test bundle was built into.
    static let binDir: String = {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        return (me as NSString).deletingLastPathComponent
    }()

    static func binary(_ name: String) -> String { binDir + "/" + name }

    /// Starts `services` with `extra` settings, runs `body`, and stops everything however it ends.
    static func with(
        extra: [String: String] = [:], perService: [String: [String: String]] = [:], services: [String] = Stack.services,
        livenessOnly: Set<String> = [], _ body: (Stack, HTTPClient) async throws -> Void
    ) async throws {
        await HeavyLoad.shared.acquire()
        do {
            try await Self.withoutLock(extra: extra, perService: perService, services: services, livenessOnly: livenessOnly, body)
        } catch {
            await HeavyLoad.shared.release()
            throw error
        }
        await HeavyLoad.shared.release()
    }

    static func withoutLock(
        extra: [String: String], perService: [String: [String: String]], services: [String], livenessOnly: Set<String>,
        _ body: (Stack, HTTPClient) async throws -> Void
    ) async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let stack = try await Stack(extra: extra, perService: perService)
        stack.livenessOnly = livenessOnly
        do {
            try await stack.start(services, client: client)
            try await body(stack, client)
        } catch {
            await stack.stopAll()
            try? await client.shutdown()
            throw error
        }
        await stack.stopAll()
        try await client.shutdown()
    }

    init(extra: [String: String] = [:], perService: [String: [String: String]] = [:]) async throws {
        self.perService = perService
        self.dataDir = try TestDatabases.temporaryDirectory()
        var ports: [String: Int] = [:]
        // Distinct ports: the kernel may hand the same free port out twice in a row, and two
        // services on one number would answer each other's requests.
        for service in Self.services {
            var port = try Self.freePort()
            while ports.values.contains(port) { port = try Self.freePort() }
            ports[service] = port
        }
        self.ports = ports
        var environment: [String: String] = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOST": "127.0.0.1",
            "STREAMHUB_DATA_DIR": self.dataDir + "/data",
            "STREAMHUB_INTERNAL_TOKEN": Self.internalToken,
            "STREAMHUB_JWT_SECRET": Self.jwtSecret,
            "STREAMHUB_CLUSTER_TOKEN": Self.clusterToken,
            "LIVEKIT_API_KEY": Self.livekitKey,
            "LIVEKIT_API_SECRET": Self.livekitSecret,
            "LIVEKIT_URL": "ws://127.0.0.1:7880",
            "IDENTITY_URL": "http://127.0.0.1:\(ports["identity"]!)",
            "AUTHZ_URL": "http://127.0.0.1:\(ports["authz"]!)",
            "MEDIA_URL": "http://127.0.0.1:\(ports["media"]!)",
            "LOG_LEVEL": "warning",
        ]
        if let url = try await TestDatabases.freshPostgresURL() {
            environment["DATABASE_URL"] = url
        }
        environment.merge(extra) { _, new in new }
        self.environment = environment
    }

    /// A dashboard session as identity mints them (issuer: the default `STREAMHUB_PUBLIC_URL`).
    static func session(sub: String, tenantId: String?, superadmin: Bool = false) -> String {
        let tokens = SessionTokens(secret: Self.jwtSecret, issuer: "http://127.0.0.1:8080")
        return tokens.sign(tokens.claims(userId: sub, tenantId: tenantId, superadmin: superadmin, now: Date()))
    }

    var gatewayURL: String { "http://127.0.0.1:\(self.ports["gateway"]!)" }

    /// Starts `services` in order and waits until each answers its health check.
    func start(_ services: [String] = Stack.services, client: HTTPClient) async throws {
        for service in services {
            try await self.launch(service, as: service, port: self.ports[service]!, client: client)
        }
    }

    /// Ports of the extra replicas started by ``startReplica(of:client:)``, by process name.
    var replicaPorts: [String: Int] = [:]

    /// Starts one more process of `service` on a port of its own (same settings, same database);
    /// it is named `identity#2`, `identity#3`, … in ``processes`` and for ``log(_:)``.
    @discardableResult
    func startReplica(of service: String, client: HTTPClient, extra: [String: String] = [:]) async throws -> (name: String, port: Int) {
        let (name, port) = try self.lock.withLock {
            let name = "\(service)#\(self.processes.keys.filter { $0 == service || $0.hasPrefix(service + "#") }.count + 1)"
            var port = try Self.freePort()
            while self.ports.values.contains(port) || self.replicaPorts.values.contains(port) { port = try Self.freePort() }
            self.replicaPorts[name] = port
            return (name, port)
        }
        try await self.launch(service, as: name, port: port, client: client, extra: extra)
        return (name, port)
    }

    func launch(_ service: String, as name: String, port: Int, client: HTTPClient, extra: [String: String] = [:]) async throws {
        var env = self.environment.merging(self.perService[service] ?? [:]) { _, new in new }.merging(extra) { _, new in new }
        env["PORT"] = String(port)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary("streamhub-\(service)"))
        process.environment = env
        let log = self.dataDir + "/\(name).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        self.lock.withLock { self.processes[name] = process }
        // The gateway is ready only when every upstream is; some tests run it without one.
        let path = service == "gateway" || self.livenessOnly.contains(service) ? "/internal/v1/health" : "/internal/v1/ready"
        try await Self.waitFor(deadline: .seconds(30), "\(name) healthy (log: \(log))") {
            guard process.isRunning else { throw HarnessError("\(name) exited: \(self.log(name))") }
            let response = try? await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(1))
            // Ready only if it is this service answering on its port, not another one.
            return response?.status == .ok && response?.headers.first(name: "Server") == "streamhub-\(service)"
        }
    }

    /// `kill -9`: no shutdown, connections cut mid-request.
    func kill9(_ name: String) async throws {
        guard let process = self.lock.withLock({ self.processes[name] }) else { throw HarnessError("no process \(name)") }
        kill(process.processIdentifier, SIGKILL)
        try await Self.waitFor(deadline: .seconds(5), "\(name) to die") { !process.isRunning }
    }

    /// Starts `name` (`identity`, `identity#2`, …) again on its own port, with its own settings.
    func restart(_ name: String, client: HTTPClient, extra: [String: String] = [:]) async throws {
        let service = String(name.split(separator: "#")[0])
        guard let port = self.lock.withLock({ self.replicaPorts[name] ?? self.ports[service] }) else { throw HarnessError("no port for \(name)") }
        try await self.launch(service, as: name, port: port, client: client, extra: extra)
    }

    /// The port a process listens on.
    func port(of name: String) -> Int? {
        self.lock.withLock { self.replicaPorts[name] ?? self.ports[name] }
    }

    func log(_ service: String) -> String {
        (try? String(contentsOfFile: self.dataDir + "/\(service).log", encoding: .utf8)) ?? ""
    }

    /// SIGTERM, then wait for a clean exit.
    @discardableResult
    func stop(_ service: String) async throws -> Int32 {
        guard let process = self.lock.withLock({ self.processes[service] }) else { return 0 }
        if process.isRunning { process.terminate() }
        try await Self.waitFor(deadline: .seconds(15), "\(service) to stop") { !process.isRunning }
        return process.terminationStatus
    }

    func stopAll() async {
        for service in Self.services.reversed() {
            _ = try? await self.stop(service)
        }
        for name in self.lock.withLock({ Array(self.replicaPorts.keys) }) {
            _ = try? await self.stop(name)
        }
        for process in self.lock.withLock({ Array(self.processes.values) }) where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        try? FileManager.default.removeItem(atPath: self.dataDir)
    }

    /// A tenant that exists (a sign-up through the gateway): global callers' policy writes need one.
    func newTenant(_ client: HTTPClient) async throws -> String {
        let email = "tenant-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let answer = try await client.call(
            self.gatewayURL + "/api/v1/auth/signup", method: "POST", headers: [("Content-Type", "application/json")],
            body: #"{"email":"\#(email)","password":"correct horse battery"}"#)
        guard let data = try answer.json()["data"] as? [String: Any], let tenant = data["tenantId"] as? String else {
            throw HarnessError("sign-up for a tenant answered \(answer.status): \(answer.body)")
        }
        return tenant
    }

    /// Verifies `email`'s address as its owner would: the link from the verification mail in the
    /// outbox (`/login/verify?token=`) spent through the gateway.
    func verifyEmail(_ client: HTTPClient, _ email: String) async throws {
        let outbox = self.dataDir + "/data/outbox"
        var token: String?
        try await Self.waitFor(deadline: .seconds(10), "the verification mail to \(email) in \(outbox)") {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []) where name.hasSuffix(".eml") {
                let text = (try? String(contentsOfFile: outbox + "/" + name, encoding: .utf8)) ?? ""
                let lines = text.components(separatedBy: "\r\n")
                guard lines.contains(where: { $0.lowercased() == "to: \(email.lowercased())" }) else { continue }
                if let line = lines.first(where: { $0.contains("/login/verify?token=") }) { token = line.components(separatedBy: "token=").last }
            }
            return token != nil
        }
        let answer = try await client.call(
            self.gatewayURL + "/api/v1/auth/verify", method: "POST", headers: [("Content-Type", "application/json")],
            body: #"{"token":"\#(token ?? "")"}"#)
        guard answer.status == 200 else { throw HarnessError("verifying \(email) answered \(answer.status): \(answer.body)") }
    }

    /// Runs `streamhub seed-token` against this stack's store; returns stdout.
    func seedToken(name: String) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await Self.run(Self.binary("streamhub"), ["seed-token", "--name", name], environment: self.environment)
    }

    /// Runs a child process to completion. Its blocking waits happen on a thread of their own, never
    /// on one of the concurrency pool's (two here): a child that runs for seconds must not starve
    /// other tests' timers (the 1 s replica window, the 5 s revocation window).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]) async throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try Self.runBlocking(executable, arguments, environment: environment) })
            }
            thread.start()
        }
    }

    static func runBlocking(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    static func waitFor(deadline: Duration, _ what: String, _ condition: () async throws -> Bool) async throws {
        try await Waiting.until(deadline: deadline, what, condition)
    }

    /// Whether nothing listens on `port` on loopback (we could bind it).
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

    /// A port the kernel just handed out on loopback.
    /// A base port with the next `count - 1` free too, below the ephemeral range (32768–60999 here),
    /// so no client connection of a test running beside takes one meanwhile (`up --port P` uses
    /// P to P+3; an ephemeral P once met P+2 taken).
    static func freePortBlock(_ count: Int = 4) throws -> Int {
        for _ in 0..<200 {
            let base = Int.random(in: 20_000...(32_000 - count))
            if (0..<count).allSatisfy({ Self.isFree(port: base + $0) }) { return base }
        }
        throw HarnessError("no block of \(count) free ports")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw HarnessError("bind failed") }
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw HarnessError("getsockname failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A response with its whole body.
struct HTTPResult {
    var status: Int
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(self.body.utf8)) as? [String: Any] else {
            throw HarnessError("not a JSON object: \(self.body)")
        }
        return object
    }
}

extension HTTPClient {
    func call(_ url: String, method: String = "GET", headers: [(String, String)] = [], body: String? = nil) async throws -> HTTPResult {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await self.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return HTTPResult(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: String(buffer: buffer))
    }
}

/// Every suite that starts the real executables is nested here, so they run one test at a time:
/// on two cores, several stacks of four services at once (plus the PostgreSQL tests) starve each
/// other's timers and make timing windows (revocation within 5 s, replicas within 1 s) flaky.
@Suite("Real executables", .serialized)
enum RealExecutables {}
