import AsyncHTTPClient
import Foundation
import Shared
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension RealExecutables {
    /// Several processes of one service on one PostgreSQL: what correctness depends on lives in
    /// the database, so replicas agree. Runs when `STREAMHUB_TEST_DATABASE_URL` is set.
    @Suite("Replicas on PostgreSQL", .serialized)
    struct ReplicaEndToEndTests {
        static let json = ("Content-Type", "application/json")

        /// A request to one identity process as the gateway forwards it: internal token, client IP.
        func forwarded(_ client: HTTPClient, port: Int, _ path: String, body: String, ip: String) async throws -> HTTPResult {
            try await client.call(
                "http://127.0.0.1:\(port)/api/v1\(path)", method: "POST",
                headers: [Self.json, (StreamHubHeader.internalToken, Stack.internalToken), (StreamHubHeader.clientIP, ip)], body: body)
        }

        func outboxCount(_ stack: Stack) -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: stack.dataDir + "/data/outbox")) ?? []).filter { $0.hasSuffix(".eml") }.count
        }

        @Test(
            "two identity processes: the mail limiter (3 per email, 10 per IP) and the 60 s cooldown are exact across both",
            .enabled(if: TestDatabases.postgresEnabled))
        func mailLimiterAcrossIdentities() async throws {
            try await Stack.with(extra: ["LOG_LEVEL": "notice"]) { stack, client in
                let second = try await stack.startReplica(of: "identity", client: client)
                let ports = [stack.ports["identity"]!, second.port]
                let signup = try await client.call(
                    stack.gatewayURL + "/api/v1/auth/signup", method: "POST", headers: [Self.json],
                    body: #"{"email":"twice@example.com","password":"correct horse battery"}"#)
                #expect(signup.status == 201)

                // 100 reset requests for one email, alternating between the two processes, each from its own IP.
                let resets = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<100 {
                        group.addTask {
                            try await self.forwarded(
                                client, port: ports[index % 2], "/auth/reset-request", body: #"{"email":"twice@example.com"}"#, ip: "203.0.113.\(index)"
                            ).status
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(resets.allSatisfy { $0 == 200 }, "\(Set(resets))")
                try await Stack.waitFor(deadline: .seconds(10), "3 mails in the outbox") { self.outboxCount(stack) >= 3 }
                try await Task.sleep(for: .milliseconds(700))
                // Sign-up's verification mail was the first of the three.
                #expect(self.outboxCount(stack) == 3, "exactly 3 mails for one email across both processes")

                // One IP, 30 unknown emails spread over both: exactly 10 counted (none mailed: unknown).
                let perIP = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<30 {
                        group.addTask {
                            try await self.forwarded(
                                client, port: ports[index % 2], "/auth/reset-request", body: #"{"email":"nobody\#(index)@example.com"}"#,
                                ip: "198.51.100.77"
                            ).status
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(perIP.allSatisfy { $0 == 200 })
                let limited = stack.log("identity").components(separatedBy: "mail request over the limit").count - 1
                    + stack.log(second.name).components(separatedBy: "mail request over the limit").count - 1
                // 98 of the first burst (sign-up's mail and two resets passed) and 20 of this one were over the limit.
                #expect(limited == 98 + 20, "\(limited) requests over the limit")

                // The magic-link cooldown: 20 parallel requests over both processes, exactly one passes.
                let magic = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<20 {
                        group.addTask {
                            try await self.forwarded(
                                client, port: ports[index % 2], "/auth/magic-link", body: #"{"email":"cool@example.com"}"#, ip: "192.0.2.\(index)"
                            ).status
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(magic.filter { $0 == 200 }.count == 1 && magic.filter { $0 == 429 }.count == 19, "\(magic)")
            }
        }

        @Test("the database going away after start-up: identity answers 503 in the error body (never 500), and recovers when it is back",
              .enabled(if: TestDatabases.postgresEnabled && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
        func databaseGoesAway() async throws {
            try await Stack.with { stack, client in
                let databaseURL = try #require(stack.environment["DATABASE_URL"])
                let proxyPort = try Stack.freePort()
                let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("interop/tcp_proxy.py").path
                func startProxy() async throws -> Process {
                    let process = Process()
                    // The interpreter itself (no wrapper script in between), so killing it kills the proxy.
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
                    process.arguments = [script, String(proxyPort), "127.0.0.1", "5432"]
                    // Never the test's own pipes: a child left behind would hold them open.
                    process.standardOutput = FileHandle.nullDevice
                    process.standardError = FileHandle.nullDevice
                    try process.run()
                    try await Stack.waitFor(deadline: .seconds(10), "the proxy to listen") { !Stack.isFree(port: proxyPort) }
                    return process
                }
                var proxy = try await startProxy()
                defer { if proxy.isRunning { kill(proxy.processIdentifier, SIGKILL) } }
                let viaProxy = databaseURL.replacingOccurrences(of: "127.0.0.1:5432", with: "127.0.0.1:\(proxyPort)")
                try #require(viaProxy != databaseURL, "DATABASE_URL does not name 127.0.0.1:5432: \(databaseURL)")
                let identity = try await stack.startReplica(of: "identity", client: client, extra: ["DATABASE_URL": viaProxy])
                let login = #"{"email":"nobody@example.com","password":"correct horse battery"}"#
                #expect(try await self.forwarded(client, port: identity.port, "/auth/login", body: login, ip: "192.0.2.1").status == 401)

                // The database host drops away: every connection to it closes at once.
                kill(proxy.processIdentifier, SIGKILL)
                try await Stack.waitFor(deadline: .seconds(5), "the proxy to stop") { !proxy.isRunning }
                var statuses: [Int] = []
                for _ in 0..<2 {
                    let started = ContinuousClock.now
                    let answer = try await self.forwarded(client, port: identity.port, "/auth/login", body: login, ip: "192.0.2.1")
                    statuses.append(answer.status)
                    #expect(answer.status == 503, "\(answer.body)")
                    #expect((try? answer.json()["error"] as? String) == "Service Unavailable", "\(answer.body)")
                    #expect(ContinuousClock.now - started < .seconds(12))
                }
                #expect(!stack.log(identity.name).contains("unhandled error"), "\(stack.log(identity.name).suffix(2000))")

                proxy = try await startProxy()
                try await Stack.waitFor(deadline: .seconds(15), "identity to answer from its database again") {
                    try await self.forwarded(client, port: identity.port, "/auth/login", body: login, ip: "192.0.2.1").status == 401
                }
            }
        }
    }
}
