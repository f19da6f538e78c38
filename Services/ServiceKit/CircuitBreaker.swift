import Foundation
import HTTPTypes
import Logging
import Synchronization

/// A circuit breaker per upstream (keyed by base URL) in front of an ``UpstreamClient``.
///
/// `threshold` consecutive transport failures (refused or reset connections, timeouts) open the
/// breaker: from then on calls to that upstream fail at once with ``UpstreamFailure/unavailable(_:)``
/// (503) instead of waiting on connects and timeouts, while a probe asks the upstream's
/// `/internal/v1/health` every `probeInterval`. The first answer closes the breaker. Any answer at
/// all (even a 4xx or 5xx) counts as the upstream being there; only transport failures count
/// against it.
public final class CircuitBreakingUpstream: UpstreamClient {
    public enum State: Sendable, Equatable {
        case closed
        case open
    }

    struct Breaker {
        var failures = 0
        var open = false
    }

    let inner: any UpstreamClient
    let threshold: Int
    let probeInterval: Duration
    let probeTimeout: Duration
    let logger: Logger
    let breakers = Mutex<[String: Breaker]>([:])
    /// Called when a breaker opens or closes (metrics).
    let onChange: @Sendable (_ baseURL: String, _ state: State) -> Void

    public init(
        inner: any UpstreamClient, threshold: Int = 3, probeInterval: Duration = .milliseconds(200), probeTimeout: Duration = .milliseconds(500),
        logger: Logger, onChange: @escaping @Sendable (_ baseURL: String, _ state: State) -> Void = { _, _ in }
    ) {
        self.inner = inner
        self.threshold = max(1, threshold)
        self.probeInterval = probeInterval
        self.probeTimeout = probeTimeout
        self.logger = logger
        self.onChange = onChange
    }

    /// How the reason of a refusal by an open breaker starts.
    public static let openReason = "circuit open for"

    public func state(_ baseURL: String) -> State {
        self.breakers.withLock { $0[baseURL]?.open == true ? .open : .closed }
    }

    public func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        if self.state(request.baseURL) == .open {
            throw UpstreamFailure.unavailable("\(Self.openReason) \(request.baseURL)")
        }
        do {
            let response = try await self.inner.send(request, timeout: timeout)
            self.succeeded(request.baseURL)
            return response
        } catch let failure as UpstreamFailure {
            self.failed(request.baseURL, failure)
            throw failure
        }
    }

    func succeeded(_ baseURL: String) {
        let closed = self.breakers.withLock { breakers -> Bool in
            let wasOpen = breakers[baseURL]?.open == true
            breakers[baseURL] = Breaker()
            return wasOpen
        }
        if closed {
            self.logger.notice("upstream back, circuit closed", metadata: ["upstream": "\(baseURL)"])
            self.onChange(baseURL, .closed)
        }
    }

    func failed(_ baseURL: String, _ failure: UpstreamFailure) {
        let opened = self.breakers.withLock { breakers -> Bool in
            var breaker = breakers[baseURL] ?? Breaker()
            breaker.failures += 1
            let opening = !breaker.open && breaker.failures >= self.threshold
            if opening { breaker.open = true }
            breakers[baseURL] = breaker
            return opening
        }
        guard opened else { return }
        self.logger.warning(
            "upstream failing, circuit open: answering 503 at once until it is back", metadata: ["upstream": "\(baseURL)", "error": "\(failure)"])
        self.onChange(baseURL, .open)
        Task { await self.probe(baseURL) }
    }

    /// Asks the upstream's liveness until it answers, then closes the breaker.
    func probe(_ baseURL: String) async {
        while self.state(baseURL) == .open {
            do {
                let response = try await self.inner.send(
                    UpstreamRequest(method: .get, baseURL: baseURL, pathAndQuery: "/internal/v1/health", headers: [:], body: nil),
                    timeout: self.probeTimeout)
                _ = try? await response.collect(4096)
                self.succeeded(baseURL)
                return
            } catch {
                try? await Task.sleep(for: self.probeInterval)
            }
        }
    }
}

/// Counts and times every call to an upstream (`streamhub_upstream_requests_total` by outcome,
/// `streamhub_upstream_request_duration_seconds` to the response head) — outside the breaker, so
/// calls it refuses count as `circuit_open`.
public struct MeasuredUpstream: UpstreamClient {
    struct Instruments: Sendable {
        let ok, error5xx, refused, timeout, circuitOpen, failed: MetricCounter
        let duration: MetricHistogram

        init(upstream: String, metrics: ServiceMetrics) {
            func outcome(_ name: String) -> MetricCounter {
                metrics.counter(.upstreamRequests, labels: [("upstream", upstream), ("outcome", name)])
            }
            (self.ok, self.error5xx, self.refused) = (outcome("ok"), outcome("error_5xx"), outcome("refused"))
            (self.timeout, self.circuitOpen, self.failed) = (outcome("timeout"), outcome("circuit_open"), outcome("failed"))
            self.duration = metrics.histogram(.upstreamDuration, labels: [("upstream", upstream)])
        }
    }

    let inner: any UpstreamClient
    let instruments: [String: Instruments]

    /// `names`: each upstream's base URL → its name in the labels.
    public init(inner: any UpstreamClient, names: [String: String], metrics: ServiceMetrics) {
        self.inner = inner
        self.instruments = names.mapValues { Instruments(upstream: $0, metrics: metrics) }
    }

    /// Counts an answer obtained elsewhere (``OnLoopUpstream``) as ``send(_:timeout:)`` would.
    func recordAnswer(baseURL: String, status: Int, duration: Duration) {
        guard let measure = self.instruments[baseURL] else { return }
        measure.duration.record(duration)
        (status >= 500 ? measure.error5xx : measure.ok).increment()
    }

    /// Counts a call that got no answer in time, made elsewhere (``OnLoopUpstream``).
    func recordTimeout(baseURL: String) {
        self.instruments[baseURL]?.timeout.increment()
    }

    public func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        guard let measure = self.instruments[request.baseURL] else { return try await self.inner.send(request, timeout: timeout) }
        let start = ContinuousClock.now
        do {
            let response = try await self.inner.send(request, timeout: timeout)
            measure.duration.record(.now - start)
            (response.status.code >= 500 ? measure.error5xx : measure.ok).increment()
            return response
        } catch UpstreamFailure.timeout {
            measure.timeout.increment()
            throw UpstreamFailure.timeout
        } catch UpstreamFailure.unavailable(let reason) {
            (reason.hasPrefix(CircuitBreakingUpstream.openReason) ? measure.circuitOpen : measure.refused).increment()
            throw UpstreamFailure.unavailable(reason)
        } catch {
            measure.failed.increment()
            throw error
        }
    }
}
