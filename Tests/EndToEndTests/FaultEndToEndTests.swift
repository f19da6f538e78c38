import AsyncHTTPClient
import Foundation
import Shared
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP forwarder in front of PostgreSQL the tests can cut (`kill`: every connection closes) or
/// freeze (`freeze`: connections stay open and nothing answers, as a database host that hangs or
/// a network that drops packets looks to a client).
final class DatabaseProxy: @unchecked Sendable {
    let port: Int
    var process: Process?

    init() throws {
        self.port = try Stack.freePort()
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("interop/tcp_proxy.py").path

    static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") }

    /// `url` with PostgreSQL's loopback address replaced by the proxy's.
    func route(_ url: String) throws -> String {
        let routed = url.replacingOccurrences(of: "127.0.0.1:5432", with: "127.0.0.1:\(self.port)")
        guard routed != url else { throw HarnessError("DATABASE_URL does not name 127.0.0.1:5432: \(url)") }
        return routed
    }

    func start() async throws {
        let process = Process()
        // The interpreter itself (no wrapper script in between), so signals reach the proxy.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Self.script, String(self.port), "127.0.0.1", "5432"]
        // Never the test's own pipes: a child left behind would hold them open.
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try await Stack.waitFor(deadline: .seconds(10), "the proxy to listen") { !Stack.isFree(port: self.port) }
    }

    /// Every connection closes at once.
    func kill() async throws {
        guard let process else { return }
        Glibc.kill(process.processIdentifier, SIGCONT)
        Glibc.kill(process.processIdentifier, SIGKILL)
        try await Stack.waitFor(deadline: .seconds(5), "the proxy to stop") { !process.isRunning }
    }

    /// Connections stay open and nothing more crosses them (new ones are accepted by the kernel and
    /// never answered).
    func freeze() { if let process { Glibc.kill(process.processIdentifier, SIGSTOP) } }

    func thaw() { if let process { Glibc.kill(process.processIdentifier, SIGCONT) } }

    deinit {
        if let process, process.isRunning {
            Glibc.kill(process.processIdentifier, SIGCONT)
            Glibc.kill(process.processIdentifier, SIGKILL)
        }
    }
}

extension RealExecutables {
    /// Faults of the database under the services (PostgreSQL behind a proxy the test cuts or
    /// freezes): bounded 503s, never a hang or a 500, recovery on their own, stale replicas that say so.
    @Suite("Database faults end to end", .serialized, .enabled(if: TestDatabases.postgresEnabled && DatabaseProxy.available))
    struct FaultEndToEndTests {
        static let json = ("Content-Type", "application/json")

        func forwarded(_ client: HTTPClient, port: Int, _ method: String, _ path: String, body: String? = nil, bearer: String? = nil)
            async throws -> HTTPResult
        {
            var headers = [Self.json, (StreamHubHeader.internalToken, Stack.internalToken), (StreamHubHeader.clientIP, "192.0.2.9")]
            if let bearer { headers.append(("Authorization", "Bearer \(bearer)")) }
            return try await client.call("http://127.0.0.1:\(port)\(path)", method: method, headers: headers, body: body)
        }

        @Test("a database that stops answering: identity's requests in flight and new ones are 503 within DATABASE_QUERY_TIMEOUT_S, SIGTERM still stops it, and it recovers")
        func frozenDatabase() async throws {
            try await Stack.with(extra: ["LOG_LEVEL": "notice"]) { stack, client in
                let proxy = try DatabaseProxy()
                try await proxy.start()
                let identity = try await stack.startReplica(
                    of: "identity", client: client,
                    extra: ["DATABASE_URL": try proxy.route(try #require(stack.environment["DATABASE_URL"])), "DATABASE_QUERY_TIMEOUT_S": "2"])
                let signup = try await self.forwarded(
                    client, port: identity.port, "POST", "/api/v1/auth/signup", body: #"{"email":"frozen@example.com","password":"correct horse battery"}"#)
                #expect(signup.status == 201, "\(signup.body)")
                let login = #"{"email":"frozen@example.com","password":"correct horse battery"}"#
                #expect(try await self.forwarded(client, port: identity.port, "POST", "/api/v1/auth/login", body: login).status == 200)

                proxy.freeze()
                // Several at once, so some hold pooled connections when the database stops answering.
                let answers = try await withThrowingTaskGroup(of: (Int, String, Duration).self) { group in
                    for index in 0..<6 {
                        group.addTask {
                            let started = ContinuousClock.now
                            let answer =
                                index % 2 == 0
                                ? try await self.forwarded(client, port: identity.port, "POST", "/api/v1/auth/login", body: login)
                                : try await self.forwarded(
                                    client, port: identity.port, "POST", "/api/v1/auth/signup",
                                    body: #"{"email":"frozen\#(index)@example.com","password":"correct horse battery"}"#)
                            return (answer.status, answer.body, ContinuousClock.now - started)
                        }
                    }
                    return try await group.reduce(into: [(Int, String, Duration)]()) { $0.append($1) }
                }
                for (status, body, took) in answers {
                    #expect(status == 503, "\(body)")
                    // 2 s deadline; a password hash (~0.4 s) may come before it.
                    #expect(took < .seconds(5), "\(took)")
                }
                #expect(!stack.log(identity.name).contains("unhandled error"))

                // Shutdown completes while the database is still frozen.
                let stopping = ContinuousClock.now
                #expect(try await stack.stop(identity.name) == 0)
                #expect(ContinuousClock.now - stopping < .seconds(10))

                proxy.thaw()
                try await stack.restart(identity.name, client: client)
                #expect(try await self.forwarded(client, port: identity.port, "POST", "/api/v1/auth/login", body: login).status == 200)
                // What was answered 503 was not half-written: no account exists for the refused sign-ups.
                for index in [1, 3, 5] {
                    let retry = try await self.forwarded(
                        client, port: identity.port, "POST", "/api/v1/auth/login",
                        body: #"{"email":"frozen\#(index)@example.com","password":"correct horse battery"}"#)
                    #expect(retry.status == 401 || retry.status == 200)
                }
                try await proxy.kill()
            }
        }

        @Test("an authz replica that loses its database: readiness fails past AUTHZ_POLICY_STALENESS_S and the metric shows it; back, it follows the policy again within 2 s")
        func authzReplicaFollowsPolicyAfterOutage() async throws {
            let metricsToken = "metrics-token-for-e2e-0123456789"
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on", "LOG_LEVEL": "notice", "METRICS_TOKEN": metricsToken]) { stack, client in
                let proxy = try DatabaseProxy()
                try await proxy.start()
                let replica = try await stack.startReplica(
                    of: "authz", client: client,
                    extra: [
                        "DATABASE_URL": try proxy.route(try #require(stack.environment["DATABASE_URL"])), "DATABASE_QUERY_TIMEOUT_S": "1",
                        "AUTHZ_POLICY_STALENESS_S": "2",
                    ])
                let root = try await stack.seedToken(name: "root").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let tenant = try await stack.newTenant(client)
                let question = #"{"subject":"user:dora","tenant":"\#(tenant)","resource":"app","action":"read"}"#
                func allowedAtReplica() async throws -> Bool? {
                    let answer = try await self.forwarded(client, port: replica.port, "POST", "/internal/v1/enforce", body: question)
                    guard answer.status == 200 else { return nil }
                    return try answer.json()["allowed"] as? Bool
                }
                func grant(_ method: String) async throws -> Int {
                    if method == "DELETE" {
                        return try await client.call(
                            stack.gatewayURL + "/api/v1/authz/roles?tenant=\(tenant)&user=user:dora&role=viewer", method: method,
                            headers: [("Authorization", "Bearer \(root)")]
                        ).status
                    }
                    return try await client.call(
                        stack.gatewayURL + "/api/v1/authz/roles?tenant=\(tenant)", method: method,
                        headers: [("Authorization", "Bearer \(root)"), Self.json], body: #"{"user":"user:dora","role":"viewer"}"#
                    ).status
                }
                #expect(try await allowedAtReplica() == false)
                func ready() async throws -> Int {
                    try await client.call("http://127.0.0.1:\(replica.port)/internal/v1/ready").status
                }

                for fault in ["cut", "freeze"] {
                    // The replica's database goes away (every connection cut, or nothing answering).
                    if fault == "cut" { try await proxy.kill() } else { proxy.freeze() }
                    // A change lands through the other replica while this one cannot see the store.
                    #expect(try await grant(fault == "cut" ? "POST" : "DELETE") == (fault == "cut" ? 201 : 200))
                    // The database check fails at once; the policy one past the staleness bound (2 s).
                    try await Stack.waitFor(deadline: .seconds(6), "the replica's readiness to name the unconfirmed policy") {
                        let answer = try await client.call("http://127.0.0.1:\(replica.port)/internal/v1/ready")
                        return answer.status == 503 && answer.body.contains("policy: policy version not confirmed")
                    }
                    let metrics = try await client.call(
                        "http://127.0.0.1:\(replica.port)/metrics", headers: [("Authorization", "Bearer \(metricsToken)")])
                    let line = metrics.body.split(separator: "\n").first { $0.hasPrefix("streamhub_authz_policy_unconfirmed_seconds{") }
                    let age = line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
                    #expect((age ?? 0) >= 1, "\(line ?? "no metric")")

                    // Back: within 2 s the replica decides with the change it missed, and is ready.
                    if fault == "cut" { try await proxy.start() } else { proxy.thaw() }
                    let back = ContinuousClock.now
                    let expected = fault == "cut"
                    try await Stack.waitFor(deadline: .seconds(2), "the replica to follow the policy (\(fault))") {
                        try await allowedAtReplica() == expected
                    }
                    try await Stack.waitFor(deadline: .seconds(2), "the replica to be ready (\(fault))") { try await ready() == 200 }
                    #expect(ContinuousClock.now - back < .seconds(3))
                    // And later changes reach it too (the listener or the poll is alive again).
                    #expect(try await grant(expected ? "DELETE" : "POST") == (expected ? 200 : 201))
                    try await Stack.waitFor(deadline: .seconds(2), "the replica to follow a later change (\(fault))") {
                        try await allowedAtReplica() == !expected
                    }
                    #expect(try await grant(expected ? "POST" : "DELETE") == (expected ? 201 : 200))
                    try await Stack.waitFor(deadline: .seconds(2), "the replica to follow the last change (\(fault))") {
                        try await allowedAtReplica() == expected
                    }
                }
                let log = stack.log(replica.name)
                #expect(log.contains("policy watcher: cannot confirm the policy version"))
                #expect(log.contains("policy watcher: store reachable again, version confirmed"))
                try await proxy.kill()
            }
        }
    }
}
