import AsyncHTTPClient
import Foundation
import ServiceKit
import Shared
import TestSupport
import Testing

extension RealExecutables {
    /// The real executables, on loopback, over HTTP. Serialized: each test starts its own processes.
    @Suite("End to end", .serialized)
    struct EndToEndTests {
        static let metricsToken = "e2e-metrics-token-0123456789abcdefgh"

        @Test("the README's first calls: health, seed-token, /apps, bad tokens, unknown routes, metrics")
        func walkingSkeleton() async throws {
            try await Stack.with(extra: ["METRICS_TOKEN": Self.metricsToken]) { stack, client in
                let base = stack.gatewayURL
                let health = try await client.call(base + "/api/v1/health")
                #expect(health.status == 200)
                let object = try health.json()
                #expect(Set(object.keys) == ["status", "up", "version", "ts", "uptimeSeconds"])
                #expect(object["status"] as? String == "ok" && object["up"] as? Bool == true && object["version"] as? String == "0.1.0")

                let seeded = try await stack.seedToken(name: "e2e")
                #expect(seeded.status == 0, "\(seeded.stderr)")
                let token = seeded.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(token.hasPrefix("sk_") && token.count == 46 && !token.contains("\n"))

                let apps = try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer \(token)")])
                #expect(apps.status == 200)
                #expect(apps.body == #"{"data":[],"error":null}"#)
                #expect(apps.header("X-Request-Id") != nil)

                let anonymous = try await client.call(base + "/api/v1/apps")
                #expect(anonymous.status == 401)
                #expect(try anonymous.json()["message"] as? String == "Unauthorized")

                let bad = try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer sk_nope")])
                #expect(bad.status == 401)
                let badBody = try JSONDecoder().decode(ErrorBody.self, from: Data(bad.body.utf8))
                #expect(badBody == ErrorBody(statusCode: 401, message: "Invalid or revoked API token", error: "Unauthorized"))
                #expect(Set(try bad.json().keys) == ["statusCode", "message", "error"])

                let malformed = try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Token abc")])
                #expect(malformed.status == 401)

                let unknown = try await client.call(base + "/api/v1/nope")
                #expect(unknown.status == 404)
                #expect(try unknown.json()["message"] as? String == "Cannot GET /api/v1/nope")

                let internalRoute = try await client.call(base + "/internal/v1/tokens/resolve", method: "POST", body: #"{"token":"\#(token)"}"#)
                #expect(internalRoute.status == 404)

                let wrongMethod = try await client.call(base + "/api/v1/apps", method: "PUT", headers: [("Authorization", "Bearer \(token)")])
                #expect(wrongMethod.status == 405)

                let tooLarge = try await client.call(
                    base + "/api/v1/apps", method: "POST", headers: [("Authorization", "Bearer \(token)")], body: String(repeating: "a", count: 2 << 20)
                )
                #expect(tooLarge.status == 413)
                #expect(try tooLarge.json()["error"] as? String == "Payload Too Large")

                // Metrics: right token by header and by query, wrong and missing → 403.
                let metrics = try await client.call(base + "/metrics", headers: [("Authorization", "Bearer \(Self.metricsToken)")])
                #expect(metrics.status == 200)
                #expect(metrics.body.contains("streamhub_http_requests_total"))
                #expect(try await client.call(base + "/metrics?token=\(Self.metricsToken)").status == 200)
                #expect(try await client.call(base + "/metrics", headers: [("Authorization", "Bearer wrong")]).status == 403)
                #expect(try await client.call(base + "/metrics").status == 403)

                // A second token works independently; nothing secret was written to the logs.
                let second = try await stack.seedToken(name: "second").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(second != token)
                #expect(try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer \(second)")]).status == 200)
                for service in Stack.services {
                    let log = stack.log(service)
                    #expect(!log.contains(token) && !log.contains(Stack.internalToken), "\(service) logged a secret")
                }
            }
        }

        @Test("client-sent X-StreamHub-* headers have no effect")
        func spoofedHeaders() async throws {
            try await Stack.with { stack, client in
                let forged = Base64URL.encode(Data(#"{"kind":"apiToken","scope":"global","subject":"token:forged","superadmin":true}"#.utf8))
                let response = try await client.call(
                    stack.gatewayURL + "/api/v1/apps",
                    headers: [("X-StreamHub-Principal", forged), ("X-StreamHub-Internal-Token", Stack.internalToken)]
                )
                #expect(response.status == 401)
                #expect(try response.json()["message"] as? String == "Unauthorized")
            }
        }

        @Test("metrics are a plain 404 when METRICS_TOKEN is unset")
        func metricsDisabled() async throws {
            try await Stack.with(services: ["gateway"]) { stack, client in
                let response = try await client.call(stack.gatewayURL + "/metrics", headers: [("Authorization", "Bearer anything")])
                #expect(response.status == 404)
            }
        }

        @Test("a stopped upstream is a 503 in the error body; the gateway stays up")
        func upstreamStopped() async throws {
            try await Stack.with { stack, client in
                let token = try await stack.seedToken(name: "e2e").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(try await client.call(stack.gatewayURL + "/api/v1/apps", headers: [("Authorization", "Bearer \(token)")]).status == 200)
                let exitStatus = try await stack.stop("media")
                #expect(exitStatus == 0, "media did not shut down gracefully")
                let down = try await client.call(stack.gatewayURL + "/api/v1/apps", headers: [("Authorization", "Bearer \(token)")])
                #expect(down.status == 503)
                #expect(try down.json()["error"] as? String == "Service Unavailable")
                #expect(try await client.call(stack.gatewayURL + "/api/v1/health").status == 200)
            }
        }

        @Test("circuit breaker: media down → its routes 503 within milliseconds, identity's keep working; media back → success within 2 s")
        func breaker() async throws {
            try await Stack.with(extra: ["METRICS_TOKEN": "metrics-token-for-e2e-0123456789"]) { stack, client in
                let token = try await stack.seedToken(name: "e2e").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let auth = ("Authorization", "Bearer \(token)")
                #expect(try await client.call(stack.gatewayURL + "/api/v1/apps", headers: [auth]).status == 200)
                try await stack.stop("media")
                for _ in 0..<3 { _ = try await client.call(stack.gatewayURL + "/api/v1/apps", headers: [auth]) }
                var slowest = Duration.zero
                for _ in 0..<20 {
                    let started = ContinuousClock.now
                    let answer = try await client.call(stack.gatewayURL + "/api/v1/apps", headers: [auth])
                    slowest = max(slowest, ContinuousClock.now - started)
                    let message = try answer.json()["message"] as? String
                    #expect(answer.status == 503 && message == "The media service is unavailable")
                }
                print("breaker: slowest 503 while media was down: \(slowest)")
                #expect(slowest < .milliseconds(250), "\(slowest)")
                #expect(try await client.call(stack.gatewayURL + "/api/v1/tokens", headers: [auth]).status == 200)
                let metrics = try await client.call(stack.gatewayURL + "/metrics", headers: [("Authorization", "Bearer metrics-token-for-e2e-0123456789")])
                #expect(metrics.body.contains(#"streamhub_upstream_circuit_open{service="gateway",upstream="media"} 1"#), "\(metrics.body.prefix(3000))")
                #expect(stack.log("gateway").contains("circuit open"))

                try await stack.start(["media"], client: client)
                let back = ContinuousClock.now
                try await Stack.waitFor(deadline: .seconds(2), "media routes to answer again through the gateway") {
                    try await client.call(stack.gatewayURL + "/api/v1/apps", headers: [auth]).status == 200
                }
                print("breaker: media routes answered again \(ContinuousClock.now - back) after media was ready")
            }
        }

        @Test("a missing secret stops a service at start with a clear message and exit code 2")
        func missingSecret() async throws {
            for service in ["gateway", "identity", "authz", "media"] {
                let result = try await Stack.run(Stack.binary("streamhub-\(service)"), [], environment: ["PATH": "/usr/bin:/bin", "PORT": "0"])
                #expect(result.status == 2, "\(service): \(result.stderr)")
                #expect(result.stderr.contains("STREAMHUB_INTERNAL_TOKEN is required"), "\(service): \(result.stderr)")
            }
        }
    }
}

extension RealExecutables {
    @Suite("streamhub up", .serialized)
    struct UpCommandTests {
        func freePortBlock() throws -> Int { try Stack.freePortBlock() }

        @Test("up starts everything, mints a token once, serves it and the sample stream (with ffmpeg), and stops cleanly on Ctrl-C")
        func upAndDown() async throws {
            let dataDir = try TestDatabases.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dataDir) }
            let port = try self.freePortBlock()
            let client = HTTPClient(eventLoopGroupProvider: .singleton)

            func runUp() async throws -> (process: Process, output: OutputCollector) {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: Stack.binary("streamhub"))
                process.arguments = ["up", "--data-dir", dataDir, "--port", String(port), "--offline"]
                process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
                let output = OutputCollector()
                let pipe = Pipe()
                process.standardOutput = pipe
                process.standardError = pipe
                pipe.fileHandleForReading.readabilityHandler = { handle in output.append(handle.availableData) }
                try process.run()
                try await Stack.waitFor(deadline: .seconds(60), "streamhub up to be ready: \(output.text)") {
                    guard process.isRunning else { throw HarnessError("up exited: \(output.text)") }
                    return output.text.contains("Press Ctrl-C to stop")
                }
                return (process, output)
            }

            do {
                try await self.startStopStart(client: client, port: port, dataDir: dataDir, runUp: runUp)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }

        func startStopStart(
            client: HTTPClient, port: Int, dataDir: String, runUp: () async throws -> (process: Process, output: OutputCollector)
        ) async throws {
            let first = try await runUp()
            let token = try #require(
                first.output.text.split(separator: " ").first { $0.hasPrefix("sk_") }.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) })
            let base = "http://127.0.0.1:\(port)"
            #expect(try await client.call(base + "/api/v1/health").status == 200)
            let apps = try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer \(token)")])
            #expect(first.output.text.contains("Video.js is not installed (--offline)"))
            // The mode is said at start: the default (log) enforces nothing.
            #expect(first.output.text.contains("WARNING: authorization mode: log: roles are evaluated and denials logged, never enforced"))
            // --port is the public URL's port: sessions are issued for it, and oEmbed knows its pages.
            let signup = try await client.call(
                base + "/api/v1/auth/signup", method: "POST", headers: [("Content-Type", "application/json")],
                body: #"{"email":"port@example.com","password":"correct horse battery"}"#)
            let session = try #require((try signup.json()["data"] as? [String: Any])?["token"] as? String, "\(signup.body)")
            let payload = try #require(Base64URL.decode(session.split(separator: ".")[1]))
            let claims = try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
            #expect(claims["iss"] as? String == base)
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/ffmpeg") {
                // The sample stream plays through an app of its own.
                let line = try #require(first.output.text.split(separator: "\n").first { $0.hasPrefix("Sample stream: ") }, "\(first.output.text)")
                let player = String(line.dropFirst("Sample stream: ".count).split(separator: " ")[0])
                let app = String(player.split(separator: "/").dropLast().last ?? "")
                #expect(apps.body.contains(#""id":"\#(app)""#) && apps.body.contains(#""name":"Samples""#), "\(apps.body)")
                let page = try await client.call(player)
                #expect(page.status == 200 && page.body.contains("streamhub-player.js"))
                let oembed = try await client.call(base + "/api/v1/oembed?url=" + (player.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? player))
                #expect(oembed.status == 200, "\(oembed.body)")
                #expect(try await client.call(base + "/api/v1/apps/\(app)/play-token/demo").status == 200)
                #expect(try await client.call(base + "/hls/\(app)/demo/index.m3u8").status == 200)
                #expect(try await client.call(base + "/samples/demo/index.m3u8").status == 200)
                // The helper token that created the sample app was revoked again.
                let tokens = try await client.call(base + "/api/v1/tokens", headers: [("Authorization", "Bearer \(token)")])
                #expect(tokens.body.contains("streamhub up (sample app)") && tokens.body.contains("revokedAt"))
            } else {
                #expect(apps.body == #"{"data":[],"error":null}"#)
                #expect(first.output.text.contains("No sample stream: ffmpeg is not installed (apt-get install ffmpeg"))
            }
            let secrets = try FileManager.default.attributesOfItem(atPath: dataDir + "/secrets.env")
            #expect((secrets[FileAttributeKey.posixPermissions] as? Int) == 0o600)

            kill(first.process.processIdentifier, SIGINT)
            try await Stack.waitFor(deadline: .seconds(20), "up to stop") { !first.process.isRunning }
            #expect(first.process.terminationStatus == 0, "\(first.output.text)")
            #expect(first.output.text.contains("Stopped."))
            // Every service is gone: the gateway port no longer answers.
            #expect((try? await client.call(base + "/api/v1/health")) == nil)

            // Second run: same data, no new token printed, the first one still works.
            let second = try await runUp()
            #expect(!second.output.text.contains("Global API token"))
            #expect(second.output.text.contains("Sample stream: ") == FileManager.default.isExecutableFile(atPath: "/usr/bin/ffmpeg"))
            #expect(try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer \(token)")]).status == 200)
            second.process.terminate()
            try await Stack.waitFor(deadline: .seconds(20), "up to stop") { !second.process.isRunning }
            #expect(second.process.terminationStatus == 0)
        }
    }
}

/// Thread-safe accumulation of a child's output.
final class OutputCollector: @unchecked Sendable {
    let lock = NSLock()
    var data = Data()

    func append(_ chunk: Data) {
        self.lock.withLock { self.data.append(chunk) }
    }

    var text: String { self.lock.withLock { String(decoding: self.data, as: UTF8.self) } }
}
