import Foundation
import Logging
import NIOCore
@testable import ServiceKit
import Testing

/// Replicas whose behaviour is scripted per base URL: answering, refusing before sending
/// (`notSent`), or failing after sending (`reset`); readiness answers can be turned off.
final class ReplicaTransport: UpstreamClient, @unchecked Sendable {
    enum Mode { case up, notSent, reset }
    let lock = NSLock()
    var modes: [String: Mode] = [:]
    var unready: Set<String> = []
    var calls: [String] = []

    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        let (mode, ready) = self.lock.withLock { () -> (Mode, Bool) in
            if request.pathAndQuery != "/internal/v1/ready" && request.pathAndQuery != "/internal/v1/health" {
                self.calls.append("\(request.method.rawValue) \(request.baseURL)")
            }
            return (self.modes[request.baseURL] ?? .up, !self.unready.contains(request.baseURL))
        }
        switch mode {
        case .notSent: throw UpstreamFailure.unavailable(UpstreamFailure.notSentPrefix + "connection refused")
        case .reset: throw UpstreamFailure.unavailable("connection reset by peer")
        case .up:
            let buffer = ByteBuffer(string: "{}")
            let status: HTTPResponse.Status = request.pathAndQuery == "/internal/v1/ready" && !ready ? .serviceUnavailable : .ok
            return UpstreamResponse(status: status, headers: [:], body: .init(byteBuffer: buffer), collect: { _ in buffer })
        }
    }

    var made: [String] { self.lock.withLock { self.calls } }
    func reset() { self.lock.withLock { self.calls = [] } }
}

import HTTPTypes

@Suite("Replicas")
struct ReplicaTests {
    static let configured = "http://127.0.0.1:1,http://127.0.0.1:2"
    static let a = "http://127.0.0.1:1"
    static let b = "http://127.0.0.1:2"

    func upstream(_ transport: ReplicaTransport, threshold: Int = 3) throws -> ReplicatedUpstream {
        let logger = Logger(label: "test")
        return UpstreamStack.make(
            transport: transport, upstreams: [("identity", try UpstreamTargets(key: "IDENTITY_URL", value: Self.configured))], threshold: threshold,
            logger: logger)
    }

    func call(_ upstream: ReplicatedUpstream, _ method: HTTPRequest.Method, idempotent: Bool? = nil) async throws {
        _ = try await upstream.send(
            UpstreamRequest(method: method, baseURL: Self.configured, pathAndQuery: "/api/v1/x", headers: [:], body: nil, idempotent: idempotent),
            timeout: .seconds(1))
    }

    @Test("a list of URLs is its replicas; bad entries name the variable")
    func parsing() async throws {
        let targets = try UpstreamTargets(key: "AUTHZ_URL", value: " http://127.0.0.1:1 , http://127.0.0.1:2/ ")
        #expect(targets.urls == [Self.a, Self.b])
        #expect(await targets.resolved() == [Self.a, Self.b])
        #expect(throws: ConfigurationError.self) { try UpstreamTargets(key: "AUTHZ_URL", value: "http://a:1,ftp://b") }
        #expect(throws: ConfigurationError.self) { try UpstreamTargets(key: "AUTHZ_URL", value: " , ") }
        #expect(throws: ConfigurationError.self) { try UpstreamTargets(key: "AUTHZ_URL", value: "http://a:1/path") }
        // A name resolving to several addresses is one replica per address.
        let localhost = await (try UpstreamTargets(key: "AUTHZ_URL", value: "http://localhost:9")).resolved()
        #expect(localhost.contains("http://127.0.0.1:9"), "\(localhost)")
        // Before the first resolution (when the upstream starts running), names are replicas as
        // written: building the stack never waits on DNS.
        let named = UpstreamStack.make(
            transport: ReplicaTransport(), upstreams: [("media", try UpstreamTargets(key: "MEDIA_URL", value: "http://media.invalid:1,http://127.0.0.1:2"))],
            logger: Logger(label: "test"))
        #expect(named.replicas(of: "http://media.invalid:1,http://127.0.0.1:2") == ["http://media.invalid:1", Self.b])
        #expect(UpstreamTargets.isLiteralAddress("127.0.0.1") && UpstreamTargets.isLiteralAddress("[::1]") && !UpstreamTargets.isLiteralAddress("localhost"))
    }

    @Test("calls alternate between replicas")
    func roundRobin() async throws {
        let transport = ReplicaTransport()
        let upstream = try self.upstream(transport)
        for _ in 0..<4 { try await self.call(upstream, .get) }
        #expect(transport.made.filter { $0.hasSuffix(":1") }.count == 2 && transport.made.filter { $0.hasSuffix(":2") }.count == 2)
    }

    @Test("a GET whose replica fails is sent once to the other; a POST only when it never left")
    func retries() async throws {
        let transport = ReplicaTransport()
        transport.modes[Self.a] = .reset
        let upstream = try self.upstream(transport, threshold: 100)
        for _ in 0..<4 { try await self.call(upstream, .get) }
        #expect(transport.made.filter { $0 == "GET \(Self.b)" }.count == 4)
        // Internal reads say they are idempotent.
        for _ in 0..<2 { try await self.call(upstream, .post, idempotent: true) }
        // A POST that may have reached the failing replica is not repeated: the caller sees it.
        transport.reset()
        var failures = 0
        for _ in 0..<4 {
            do { try await self.call(upstream, .post) } catch { failures += 1 }
        }
        #expect(failures == 2 && transport.made.count == 4)
        // One that never left (connection refused) goes to the other replica.
        transport.modes[Self.a] = .notSent
        for _ in 0..<4 { try await self.call(upstream, .post) }
    }

    @Test("a replica whose breaker is open leaves rotation; calls no longer reach it")
    func breakerRotation() async throws {
        let transport = ReplicaTransport()
        transport.modes[Self.a] = .notSent
        let upstream = try self.upstream(transport, threshold: 2)
        for _ in 0..<4 { try await self.call(upstream, .post) }
        transport.reset()
        for _ in 0..<6 { try await self.call(upstream, .post) }
        #expect(transport.made == Array(repeating: "POST \(Self.b)", count: 6))
    }

    @Test("a replica failing readiness leaves rotation within a check and comes back")
    func readiness() async throws {
        let transport = ReplicaTransport()
        transport.unready = [Self.a]
        let upstream = ReplicatedUpstream(
            breaker: CircuitBreakingUpstream(inner: transport, logger: Logger(label: "test")),
            upstreams: [try UpstreamTargets(key: "IDENTITY_URL", value: Self.configured)], checkInterval: .milliseconds(50),
            logger: Logger(label: "test"))
        let running = Task { try await upstream.run() }
        defer { running.cancel() }
        // Polled, not slept: a loaded machine may run the first check late.
        func sixCalls() async throws -> [String] {
            transport.reset()
            for _ in 0..<6 { try await self.call(upstream, .get) }
            return transport.made
        }
        let deadline = ContinuousClock.now + .seconds(10)
        var made = try await sixCalls()
        while made != Array(repeating: "GET \(Self.b)", count: 6), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            made = try await sixCalls()
        }
        #expect(made == Array(repeating: "GET \(Self.b)", count: 6), "the unready replica stayed in rotation")
        transport.lock.withLock { transport.unready = [] }
        made = try await sixCalls()
        while made.filter({ $0 == "GET \(Self.a)" }).count != 3, ContinuousClock.now < deadline + .seconds(10) {
            try await Task.sleep(for: .milliseconds(20))
            made = try await sixCalls()
        }
        #expect(made.filter { $0 == "GET \(Self.a)" }.count == 3, "the ready replica did not come back: \(made)")
    }
}
