import AsyncHTTPClient
import Foundation
import ServiceKit
import Shared
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension RealExecutables {
    /// What a new operator runs, following only the README and docs/: the CLI, start-up, readiness,
    /// logs and metrics.
    @Suite("Operator", .serialized)
    struct OperatorTests {
        static let metricsToken = "e2e-metrics-token-0123456789abcdefgh"

        @Test("seed-token --data-dir means what up --data-dir means; a directory without a store is an error, not a new store")
        func seedTokenDataDir() async throws {
            let empty = try TestDatabases.temporaryDirectory()
            let environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
            let refused = try await Stack.run(Stack.binary("streamhub"), ["seed-token", "--name", "x", "--data-dir", empty], environment: environment)
            #expect(refused.status == 2)
            #expect(refused.stdout.isEmpty)
            #expect(refused.stderr == "streamhub: no StreamHub store at \(empty)/data/identity.sqlite\n")
            #expect(!FileManager.default.fileExists(atPath: empty + "/data"), "a store was created")

            // The layout `up --data-dir D` gives the services: D/data.
            let upDir = try TestDatabases.temporaryDirectory()
            try await Stack.with(extra: ["STREAMHUB_DATA_DIR": upDir + "/data", "DATABASE_URL": ""]) { stack, client in
                let seeded = try await Stack.run(Stack.binary("streamhub"), ["seed-token", "--name", "ops", "--data-dir", upDir], environment: environment)
                #expect(seeded.status == 0, "\(seeded.stderr)")
                let token = seeded.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let apps = try await client.call(stack.gatewayURL + "/api/v1/apps", headers: [("Authorization", "Bearer \(token)")])
                #expect(apps.status == 200)
            }
        }

        @Test("a second up whose ports are taken fails before printing success or minting a token")
        func upPortsTaken() async throws {
            let port = try Stack.freePortBlock()
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port + 2).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try #require(bound == 0 && listen(fd, 1) == 0)
            let dir = try TestDatabases.temporaryDirectory()
            let result = try await Stack.run(
                Stack.binary("streamhub"), ["up", "--data-dir", dir, "--port", String(port)],
                environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"])
            #expect(result.status == 2)
            #expect(!result.stdout.contains("running") && !result.stdout.contains("token"))
            #expect(result.stderr.contains("\(port + 2)") && result.stderr.contains("in use"), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/data/identity.sqlite"))
        }

        @Test("a service that stops during up's start-up: its own message, exit 2, nothing left running")
        func upServiceFails() async throws {
            let port = try Stack.freePortBlock()
            let dir = try TestDatabases.temporaryDirectory()
            var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
            environment["STREAMHUB_AUTHZ_ENFORCE"] = "maybe"
            let result = try await Stack.run(Stack.binary("streamhub"), ["up", "--data-dir", dir, "--port", String(port)], environment: environment)
            #expect(result.status == 2)
            #expect(result.stderr.contains(#"STREAMHUB_AUTHZ_ENFORCE must be off, log or on (got "maybe")"#), "\(result.stderr)")
            #expect(!result.stderr.contains("USAGE") && !result.stderr.contains("see its log"))
            #expect(!result.stdout.contains("StreamHub is running"))
            #expect(Stack.isFree(port: port + 1), "identity was left running")
        }

        /// `up` run in the background: its process and everything it printed so far.
        func startUp(port: Int, dir: String) async throws -> (process: Process, output: OutputCollector) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Stack.binary("streamhub"))
            process.arguments = ["up", "--data-dir", dir, "--port", String(port), "--offline"]
            process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
            let output = OutputCollector()
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            pipe.fileHandleForReading.readabilityHandler = { handle in output.append(handle.availableData) }
            try process.run()
            try await Stack.waitFor(deadline: .seconds(60), "up to be ready") {
                guard process.isRunning else { throw HarnessError("up exited") }
                guard !Stack.isFree(port: port) else { return false }
                return (try? await HTTPClient.shared.call("http://127.0.0.1:\(port)/api/v1/health").status) == 200
            }
            return (process, output)
        }

        @Test("up stops every service on SIGHUP (a closed terminal)")
        func upSignalsAndDeaths() async throws {
            let port = try Stack.freePortBlock()
            let dir = try TestDatabases.temporaryDirectory()
            let first = try await self.startUp(port: port, dir: dir)
            kill(first.process.processIdentifier, SIGHUP)
            try await Stack.waitFor(deadline: .seconds(60), "up to stop on SIGHUP: \(first.output.text)") { !first.process.isRunning }
            #expect(first.process.terminationStatus == 0)
            for offset in 0..<4 { #expect(Stack.isFree(port: port + offset), "port \(port + offset) still taken after SIGHUP") }
            try await Task.sleep(for: .milliseconds(200))
            let said = first.output.text
            #expect(said.contains("Stopping (SIGHUP: the terminal closed)") && said.contains("Stopped."), "\(said)")
        }

        @Test("up killed with SIGKILL (nothing it can trap): its services see it is gone and stop by themselves, freeing the ports")
        func upKilled() async throws {
            let port = try Stack.freePortBlock()
            let dir = try TestDatabases.temporaryDirectory()
            let first = try await self.startUp(port: port, dir: dir)
            kill(first.process.processIdentifier, SIGKILL)
            try await Stack.waitFor(deadline: .seconds(15), "the services to stop once up was killed") {
                (0..<4).allSatisfy { Stack.isFree(port: port + $0) }
            }
            let logs = (try? String(contentsOfFile: dir + "/logs/identity.log", encoding: .utf8)) ?? ""
            #expect(logs.contains("the supervisor is gone; stopping"), "\(logs.suffix(800))")
        }

        @Test("service executables: --help prints usage and exits; an unknown argument is a usage error; neither starts a server")
        func serviceArguments() async throws {
            for service in ["gateway", "identity", "authz", "media"] {
                let help = try await Stack.run(Stack.binary("streamhub-\(service)"), ["--help"], environment: [:])
                #expect(help.status == 0)
                #expect(help.stdout.hasPrefix("USAGE: streamhub-\(service)"))
                let unknown = try await Stack.run(Stack.binary("streamhub-\(service)"), ["serve"], environment: [:])
                #expect(unknown.status == 64)
                #expect(unknown.stderr.hasPrefix("streamhub-\(service): unknown argument serve"))
            }
        }

        @Test("eval refuses a model the service would refuse (exit 2, the same message) and says plainly why a file cannot be read")
        func evalRefusals() async throws {
            let dir = try TestDatabases.temporaryDirectory()
            let model = dir + "/bad.conf"
            try """
            [request_definition]
            r = sub, dom, obj, act
            [policy_definition]
            p = sub, dom, obj, act
            [role_definition]
            g = _, _, _
            [policy_effect]
            e = some(where (p.eft == allow))
            [matchers]
            m = r.sub == (p.sub
            """.write(toFile: model, atomically: true, encoding: .utf8)
            let service = try await Stack.run(
                Stack.binary("streamhub-authz"), [],
                environment: ["STREAMHUB_INTERNAL_TOKEN": Stack.internalToken, "STREAMHUB_AUTHZ_MODEL": model, "PORT": "0", "STREAMHUB_DATA_DIR": dir])
            #expect(service.status == 2)
            let serviceMessage = try #require(service.stderr.split(separator: "\n").last?.dropFirst("streamhub-authz: ".count))
            #expect(serviceMessage.contains("matcher"))
            let eval = try await Stack.run(Stack.binary("streamhub-authz"), ["eval", "--model", model], environment: [:])
            #expect(eval.status == 2)
            #expect(eval.stdout.isEmpty)
            #expect(eval.stderr == "streamhub-authz eval: \(serviceMessage)\n")
            let directory = try await Stack.run(Stack.binary("streamhub-authz"), ["eval", "--model", dir], environment: [:])
            #expect(directory.status == 2)
            #expect(directory.stderr.contains("cannot read \(dir): not a file"))
            #expect(!directory.stderr.contains("NSCocoaErrorDomain"))
        }

        @Test("start-up: every service says the authorization mode (a warning for the default log, the only one on a fresh install; none with on); ready once migrated; the gateway's readiness names a missing upstream")
        func startupAndReadiness() async throws {
            try await Stack.with(extra: ["LOG_LEVEL": "info", "STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, _ in
                for service in Stack.services {
                    let lines = stack.log(service).split(separator: "\n")
                    let warnings = lines.filter { $0.contains(#""level":"warning""#) || $0.contains(#""level":"error""#) }
                    #expect(warnings.isEmpty, "\(service) warned on a fresh start: \(warnings)")
                    #expect(lines.contains { $0.contains("authorization mode: on (roles are enforced)") }, "\(service)")
                }
            }
            try await Stack.with(extra: ["LOG_LEVEL": "info"]) { stack, client in
                for service in Stack.services {
                    let ready = try await client.call("http://127.0.0.1:\(stack.ports[service]!)/internal/v1/ready")
                    #expect(ready.status == 200, "\(service): \(ready.body)")
                    #expect(try ready.json()["ready"] as? Bool == true)
                    let warnings = stack.log(service).split(separator: "\n").filter { $0.contains(#""level":"warning""#) || $0.contains(#""level":"error""#) }
                    #expect(warnings.count == 1 && warnings.first?.contains("authorization mode: log: roles are evaluated and denials logged, never enforced") == true,
                        "\(service) warned on a fresh start: \(warnings)")
                }
                let loaded = stack.log("authz").split(separator: "\n").first { $0.contains(#""msg":"policy loaded""#) }
                #expect(loaded?.contains(#""model":"built-in default_model.conf""#) == true, "\(loaded ?? "no policy loaded line")")
                let health = try await client.call(stack.gatewayURL + "/api/v1/health")
                #expect(Set(try health.json().keys) == ["status", "up", "version", "ts", "uptimeSeconds"])
                try await stack.stop("media")
                let notReady = try await client.call(stack.gatewayURL + "/internal/v1/ready")
                #expect(notReady.status == 503)
                #expect(try notReady.json()["message"] as? String == "not ready: media: The media service is unavailable")
            }
        }

        @Test("an unreachable PostgreSQL fails start-up within DATABASE_CONNECT_TIMEOUT_S, naming host and port")
        func unreachablePostgres() async throws {
            let port = try Stack.freePort()
            let started = ContinuousClock.now
            let result = try await Stack.run(
                Stack.binary("streamhub-identity"), [],
                environment: [
                    "STREAMHUB_INTERNAL_TOKEN": Stack.internalToken, "STREAMHUB_JWT_SECRET": Stack.jwtSecret, "PORT": "0",
                    "DATABASE_URL": "postgres://u:secret-pass@127.0.0.1:\(port)/db", "DATABASE_CONNECT_TIMEOUT_S": "2",
                ])
            let elapsed = ContinuousClock.now - started
            #expect(result.status == 1)
            #expect(elapsed < .seconds(10), "took \(elapsed)")
            let last = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
            #expect(
                last == "streamhub-identity: stopped: cannot reach PostgreSQL at 127.0.0.1:\(port) (DATABASE_URL, user u, database db) within 2 s: "
                    + "connection refused: nothing listens at that host and port", "\(last)")
            #expect(!result.stderr.contains("secret-pass"))
            let retries = result.stderr.split(separator: "\n").filter { $0.contains("PostgreSQL not reachable yet") }
            #expect(!retries.isEmpty && retries.allSatisfy { $0.contains(#""level":"warning""#) })
            #expect(!result.stderr.contains(#""level":"info""#) || !result.stderr.contains("connectionCreationCircuitBreakerTripped"))
        }

        @Test("PostgreSQL that answers but refuses: a wrong password and a missing database are named as such, not as a timeout", .enabled(if: TestDatabases.postgresEnabled))
        func refusingPostgres() async throws {
            let url = try #require(ProcessInfo.processInfo.environment["STREAMHUB_TEST_DATABASE_URL"])
            var components = try #require(URLComponents(string: url))
            let host = components.host ?? "127.0.0.1"
            let port = components.port ?? 5432
            func start(_ databaseURL: String) async throws -> String {
                let result = try await Stack.run(
                    Stack.binary("streamhub-identity"), [],
                    environment: [
                        "STREAMHUB_INTERNAL_TOKEN": Stack.internalToken, "STREAMHUB_JWT_SECRET": Stack.jwtSecret, "PORT": "0",
                        "DATABASE_URL": databaseURL, "DATABASE_CONNECT_TIMEOUT_S": "2",
                    ])
                #expect(result.status == 1)
                #expect(!result.stderr.contains("not-the-password"))
                return result.stderr.split(separator: "\n").last.map(String.init) ?? ""
            }
            components.password = "not-the-password"
            let wrongPassword = try await start(try #require(components.string))
            #expect(wrongPassword.contains("cannot reach PostgreSQL at \(host):\(port) (DATABASE_URL, user \(components.user ?? "")"), "\(wrongPassword)")
            #expect(wrongPassword.contains("authentication failed: check the user and password in DATABASE_URL"), "\(wrongPassword)")
            #expect(!wrongPassword.contains("timed out"))
            var missing = try #require(URLComponents(string: url))
            missing.path = "/no_such_database_here"
            let noDatabase = try await start(try #require(missing.string))
            #expect(noDatabase.contains("the database does not exist"), "\(noDatabase)")
            #expect(noDatabase.contains("database no_such_database_here"), "\(noDatabase)")
        }

        @Test("logs: one request-id key, one access line per request; metrics: HELP and TYPE for every metric; mounts answer OPTIONS")
        func logsMetricsMounts() async throws {
            let dir = try TestDatabases.temporaryDirectory()
            try FileManager.default.createDirectory(atPath: dir + "/media/hls/live", withIntermediateDirectories: true)
            try "#EXTM3U\n".write(toFile: dir + "/media/hls/live/index.m3u8", atomically: true, encoding: .utf8)
            try await Stack.with(extra: ["LOG_LEVEL": "info", "METRICS_TOKEN": Self.metricsToken, "STREAMHUB_MEDIA_ROOT": dir + "/media"]) {
                stack, client in
                let token = try await stack.seedToken(name: "ops").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let apps = try await client.call(
                    stack.gatewayURL + "/api/v1/apps", headers: [("Authorization", "Bearer \(token)"), ("X-Request-Id", "ops-log-1")])
                #expect(apps.status == 200)
                for service in ["gateway", "media"] {
                    let lines = stack.log(service).split(separator: "\n").filter { $0.contains("ops-log-1") }
                    #expect(!lines.isEmpty)
                    #expect(lines.allSatisfy { !$0.contains("hb.request.id") })
                    let access = try lines.compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                        .filter { $0["msg"] as? String == "request" }
                    #expect(access.count == 1, "\(service): \(lines)")
                    let line = try #require(access.first)
                    #expect(line["level"] as? String == "info")
                    #expect(line["method"] as? String == "GET" && line["status"] as? String == "200" && line["request_id"] as? String == "ops-log-1")
                    #expect(line["duration_ms"] != nil && line["route"] != nil)
                }
                // Polls and probes log at debug: the gateway's policy-version poll (10 a second) and
                // health checks would otherwise fill the log.
                for _ in 0..<5 {
                    _ = try await client.call("http://127.0.0.1:\(stack.ports["authz"]!)/internal/v1/policy/version", headers: [("X-StreamHub-Internal-Token", Stack.internalToken)])
                    _ = try await client.call(stack.gatewayURL + "/api/v1/health")
                }
                try await Task.sleep(for: .milliseconds(300))
                #expect(!stack.log("authz").contains("/internal/v1/policy/version"), "the version poll is logged at info")
                #expect(!stack.log("gateway").contains(#""route":"/api/v1/health""#), "health checks are logged at info")
                let gatewayMetrics = try await client.call(stack.gatewayURL + "/metrics", headers: [("Authorization", "Bearer \(Self.metricsToken)")]).body
                for upstream in ["identity", "authz", "media"] {
                    // Documented and on the dashboard: there from start-up at 0, not after the first opening.
                    #expect(gatewayMetrics.contains(#"streamhub_upstream_circuit_openings_total{service="gateway",upstream="\#(upstream)"} 0"#), "\(upstream)")
                }
                for service in Stack.services {
                    let metrics = try await client.call(
                        "http://127.0.0.1:\(stack.ports[service]!)/metrics", headers: [("Authorization", "Bearer \(Self.metricsToken)")]
                    ).body
                    let names = Set(metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> String? in
                        let name = line.prefix { $0 != "{" && $0 != " " }
                        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
                        return String(name)
                    })
                    #expect(!names.isEmpty)
                    for name in names {
                        #expect(metrics.contains("# HELP \(name) "), "\(service): \(name) has no HELP")
                        #expect(metrics.contains("# TYPE \(name) "), "\(service): \(name) has no TYPE")
                    }
                }
                let options = try await client.call(stack.gatewayURL + "/hls/live/index.m3u8", method: "OPTIONS")
                #expect(options.status == 204)
                #expect(options.header("Allow") == "GET, HEAD, OPTIONS")
                let head = try await client.call(stack.gatewayURL + "/hls/live/index.m3u8", method: "HEAD")
                #expect(head.status == 200)
                let post = try await client.call(stack.gatewayURL + "/hls/live/index.m3u8", method: "POST")
                #expect(post.status == 405 && post.header("Allow") == "GET, HEAD, OPTIONS")
                let wrong = try await client.call(stack.gatewayURL + "/api/v1/apps", method: "PUT", headers: [("Authorization", "Bearer \(token)")])
                #expect(wrong.status == 405 && wrong.header("Allow") == "GET, HEAD, POST")
            }
        }
    }
}
