import Foundation
import Logging
import NIOCore
import ServiceKit
import Testing

/// A transport whose upstreams can be switched between refusing and answering.
final class SwitchableTransport: UpstreamClient, @unchecked Sendable {
    let lock = NSLock()
    var down: Set<String> = []
    var calls: [String] = []

    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        let refused = self.lock.withLock {
            self.calls.append(request.baseURL + request.pathAndQuery)
            return self.down.contains(request.baseURL)
        }
        if refused { throw UpstreamFailure.unavailable("connection refused") }
        let buffer = ByteBuffer(string: "{}")
        return UpstreamResponse(status: .ok, headers: [:], body: .init(byteBuffer: buffer), collect: { _ in buffer })
    }

    func count(_ prefix: String) -> Int { self.lock.withLock { self.calls.filter { $0.hasPrefix(prefix) }.count } }
}

final class Changes: @unchecked Sendable {
    let lock = NSLock()
    var seen: [String] = []
    func add(_ change: String) { self.lock.withLock { self.seen.append(change) } }
    var all: [String] { self.lock.withLock { self.seen } }
}

@Suite("Circuit breaker per upstream")
struct CircuitBreakerTests {
    func request(_ base: String) -> UpstreamRequest {
        UpstreamRequest(method: .get, baseURL: base, pathAndQuery: "/api/v1/apps", headers: [:], body: nil)
    }

    @Test("3 failures open it: calls fail at once without reaching the upstream; a probe closes it when the upstream answers; others are untouched")
    func opensAndCloses() async throws {
        let transport = SwitchableTransport()
        transport.down = ["http://media"]
        let changes = Changes()
        let breaker = CircuitBreakingUpstream(
            inner: transport, threshold: 3, probeInterval: .milliseconds(50), logger: Logger(label: "test"),
            onChange: { base, state in changes.add("\(base) \(state)") })
        for _ in 0..<3 {
            await #expect(throws: UpstreamFailure.self) { try await breaker.send(self.request("http://media"), timeout: .seconds(1)) }
        }
        #expect(breaker.state("http://media") == .open)
        let reachedBefore = transport.count("http://media/api")
        let started = ContinuousClock.now
        for _ in 0..<50 {
            await #expect(throws: UpstreamFailure.self) { try await breaker.send(self.request("http://media"), timeout: .seconds(1)) }
        }
        #expect(ContinuousClock.now - started < .milliseconds(500))
        #expect(transport.count("http://media/api") == reachedBefore, "an open breaker let calls through")
        // Another upstream is not affected.
        _ = try await breaker.send(self.request("http://identity"), timeout: .seconds(1))
        #expect(breaker.state("http://identity") == .closed)

        // The probe asks /internal/v1/health while open, and closes the breaker once it answers.
        let probing = ContinuousClock.now + .seconds(10)
        while transport.count("http://media/internal/v1/health") < 2, ContinuousClock.now < probing { try await Task.sleep(for: .milliseconds(20)) }
        #expect(transport.count("http://media/internal/v1/health") >= 2, "the probe did not ask again")
        #expect(breaker.state("http://media") == .open)
        transport.lock.withLock { transport.down = [] }
        let deadline = ContinuousClock.now + .seconds(10)
        while breaker.state("http://media") == .open, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(breaker.state("http://media") == .closed)
        _ = try await breaker.send(self.request("http://media"), timeout: .seconds(1))
        #expect(changes.all == ["http://media open", "http://media closed"])
    }

    @Test("answers of any status keep it closed; failures must be consecutive")
    func consecutiveOnly() async throws {
        let transport = SwitchableTransport()
        let breaker = CircuitBreakingUpstream(inner: transport, threshold: 3, logger: Logger(label: "test"))
        for _ in 0..<5 {
            transport.lock.withLock { transport.down = ["http://authz"] }
            for _ in 0..<2 {
                await #expect(throws: UpstreamFailure.self) { try await breaker.send(self.request("http://authz"), timeout: .seconds(1)) }
            }
            transport.lock.withLock { transport.down = [] }
            _ = try await breaker.send(self.request("http://authz"), timeout: .seconds(1))
        }
        #expect(breaker.state("http://authz") == .closed)
    }
}
