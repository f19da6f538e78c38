import Foundation
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The replicas of one upstream service as configured: a comma-separated list of base URLs, or one
/// URL whose host name resolves to several addresses (container DNS, a Kubernetes Service), each
/// address a replica.
public struct UpstreamTargets: Sendable, Equatable {
    /// The configured value, which is also the upstream's key (`UpstreamRequest.baseURL`).
    public var configured: String
    /// The base URLs as written.
    public var urls: [String]

    /// - Throws: ``ConfigurationError`` naming `key` for an empty list or a URL that is not `http://host[:port]`.
    public init(key: String, value: String) throws {
        let urls = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !urls.isEmpty else { throw ConfigurationError("\(key) is empty") }
        for url in urls {
            guard let components = URLComponents(string: url), components.scheme == "http" || components.scheme == "https",
                let host = components.host, !host.isEmpty, components.path.isEmpty || components.path == "/", components.query == nil
            else {
                throw ConfigurationError("\(key): \"\(url)\" is not a base URL like http://identity:8081")
            }
        }
        self.configured = value
        self.urls = urls.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    /// Each URL with its host resolved: one base URL per address (IPv6 in brackets). A literal
    /// address stays as written; a name that does not resolve keeps its URL (the next resolution
    /// may do better, and the breaker answers 503 meanwhile).
    ///
    /// `getaddrinfo` blocks (a DNS server that does not answer holds it for seconds), so it runs on
    /// Dispatch's global queue, never on the concurrency pool's few threads, which every request
    /// of the service needs; literal addresses skip it.
    public func resolved() async -> [String] {
        var replicas: [String] = []
        for url in self.urls {
            guard let components = URLComponents(string: url), let host = components.host else {
                replicas.append(url)
                continue
            }
            let addresses = Self.isLiteralAddress(host) ? [host] : await Self.lookUp(host)
            if addresses.isEmpty || addresses == [host] {
                replicas.append(url)
                continue
            }
            for address in addresses {
                var replica = components
                replica.host = address.contains(":") ? "[\(address)]" : address
                replicas.append(replica.string ?? url)
            }
        }
        var seen = Set<String>()
        return replicas.filter { seen.insert($0).inserted }
    }

    /// An IPv4 or IPv6 literal (brackets allowed): nothing to resolve.
    static func isLiteralAddress(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var buffer = in6_addr()
        return inet_pton(AF_INET, bare, &buffer) == 1 || inet_pton(AF_INET6, bare, &buffer) == 1
    }

    /// ``addresses(of:)`` off the concurrency pool.
    static func lookUp(_ host: String) async -> [String] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: Self.addresses(of: host)) }
        }
    }

    /// The addresses `host` resolves to (getaddrinfo, TCP), in the resolver's order; the host itself
    /// for a literal address. Blocking: call it through ``lookUp(_:)``.
    static func addresses(of host: String) -> [String] {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(bare, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var found: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if let address = entry.pointee.ai_addr,
                getnameinfo(address, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
            {
                let text = String(cString: buffer)
                if !found.contains(text) { found.append(text) }
            }
            cursor = entry.pointee.ai_next
        }
        if found == [bare] { return [host] }
        return found
    }
}

/// Spreads calls to an upstream over its replicas.
///
/// - Round robin over the replicas in rotation: those whose breaker is closed
///   (``CircuitBreakingUpstream``, per replica) and whose `/internal/v1/ready` answered 200 last
///   time it was asked (every `checkInterval`). A replica that refuses connections leaves rotation
///   when its breaker opens; one that fails readiness, at the next check; both come back by
///   themselves. When no replica is in rotation every replica is tried, so one that just came back
///   is found at once.
/// - A call the caller marks idempotent (GET/HEAD, and internal reads such as enforce and token
///   resolve) that cannot reach its replica (refused, reset, breaker open) is sent once more to
///   another replica: a killed replica costs clients no error for those. Any other call is sent
///   again only when it never left (no connection, or the replica's breaker is open).
/// - Host names are resolved again every `resolveInterval`, so replicas that DNS adds or drops are
///   followed.
public final class ReplicatedUpstream: UpstreamClient, Service {
    final class Targets: Sendable {
        struct State {
            var replicas: [String]
            var unready: Set<String> = []
        }

        let targets: UpstreamTargets
        let state: Mutex<State>
        let cursor = Atomic<Int>(0)

        /// The URLs as written until ``ReplicatedUpstream/run()`` first resolves them (at once when
        /// it starts): a name is still reachable meanwhile, as one replica.
        init(_ targets: UpstreamTargets) {
            self.targets = targets
            self.state = Mutex(State(replicas: targets.urls))
        }
    }

    let breaker: CircuitBreakingUpstream
    let upstreams: [String: Targets]
    let checkInterval: Duration
    let resolveInterval: Duration
    let logger: Logger

    public init(
        breaker: CircuitBreakingUpstream, upstreams: [UpstreamTargets], checkInterval: Duration = .seconds(1), resolveInterval: Duration = .seconds(5),
        logger: Logger
    ) {
        self.breaker = breaker
        self.upstreams = Dictionary(upstreams.map { ($0.configured, Targets($0)) }, uniquingKeysWith: { first, _ in first })
        self.checkInterval = checkInterval
        self.resolveInterval = resolveInterval
        self.logger = logger
    }

    /// The replicas of the upstream configured as `configured`, as last resolved.
    public func replicas(of configured: String) -> [String] {
        self.upstreams[configured]?.state.withLock { $0.replicas } ?? []
    }

    /// Which upstream a replica URL belongs to (its configured value).
    public func upstream(ofReplica replica: String) -> String? {
        self.upstreams.first { $0.value.state.withLock { $0.replicas.contains(replica) } }?.key
    }

    /// The replicas to try, in order: the next in rotation first, then the others in rotation,
    /// then those out of it.
    func order(_ targets: Targets) -> [String] {
        let (replicas, unready) = targets.state.withLock { ($0.replicas, $0.unready) }
        guard replicas.count > 1 else { return replicas }
        let start = targets.cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        let rotated = (0..<replicas.count).map { replicas[(start + $0) % replicas.count] }
        let inRotation = rotated.filter { !unready.contains($0) && self.breaker.state($0) == .closed }
        return inRotation + rotated.filter { !inRotation.contains($0) }
    }

    /// The replica the next call to `configured` goes to, when it is in rotation (breaker closed,
    /// last readiness check passed); nil otherwise, or for an upstream not configured here.
    func nextInRotation(_ configured: String) -> String? {
        guard let targets = self.upstreams[configured], let first = self.order(targets).first else { return nil }
        let ready = targets.state.withLock { !$0.unready.contains(first) }
        return ready && self.breaker.state(first) == .closed ? first : nil
    }

    public func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        guard let targets = self.upstreams[request.baseURL] else { return try await self.breaker.send(request, timeout: timeout) }
        let order = self.order(targets)
        guard let first = order.first else { throw UpstreamFailure.unavailable("no replica of \(request.baseURL)") }
        var outgoing = request
        outgoing.baseURL = first
        do {
            return try await self.breaker.send(outgoing, timeout: timeout)
        } catch UpstreamFailure.unavailable(let reason) where order.count > 1 && (request.idempotent || Self.neverSent(reason)) {
            self.logger.info("replica unreachable, retrying on another", metadata: ["replica": "\(first)", "error": "\(reason)"])
            outgoing.baseURL = order[1]
            return try await self.breaker.send(outgoing, timeout: timeout)
        }
    }

    /// A refusal by an open breaker, or a connection that was never made: the request did not
    /// leave, so another replica may have it whatever its method.
    static func neverSent(_ reason: String) -> Bool {
        reason.hasPrefix(UpstreamFailure.notSentPrefix) || reason.hasPrefix(CircuitBreakingUpstream.openReason)
    }

    /// Resolves names and asks each replica's readiness until shutdown.
    public func run() async throws {
        var lastResolve: ContinuousClock.Instant?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if lastResolve.map({ ContinuousClock.now - $0 >= self.resolveInterval }) ?? true {
                lastResolve = .now
                for targets in self.upstreams.values {
                    let resolved = await targets.targets.resolved()
                    let changed = targets.state.withLock { state -> Bool in
                        guard state.replicas != resolved else { return false }
                        state.replicas = resolved
                        state.unready.formIntersection(resolved)
                        return true
                    }
                    if changed { self.logger.notice("replicas changed", metadata: ["upstream": "\(targets.targets.configured)", "replicas": "\(resolved)"]) }
                }
            }
            await withTaskGroup(of: Void.self) { group in
                for targets in self.upstreams.values {
                    let replicas = targets.state.withLock { $0.replicas }
                    guard replicas.count > 1 else { continue }
                    for replica in replicas {
                        group.addTask { await self.check(replica, in: targets) }
                    }
                }
            }
            try? await Task.sleep(for: self.checkInterval)
        }
    }

    func check(_ replica: String, in targets: Targets) async {
        let ready: Bool
        do {
            let response = try await self.breaker.inner.send(
                UpstreamRequest(method: .get, baseURL: replica, pathAndQuery: "/internal/v1/ready", headers: [:], body: nil),
                timeout: .milliseconds(900))
            _ = try? await response.collect(4096)
            ready = response.status.code == 200
        } catch {
            ready = false
        }
        let changed = targets.state.withLock { state -> Bool in
            let wasReady = !state.unready.contains(replica)
            if ready { state.unready.remove(replica) } else { state.unready.insert(replica) }
            return wasReady != ready
        }
        if changed {
            // Leaving rotation is what an operator must see at the default level; coming back is good news.
            if ready {
                self.logger.notice("replica ready, back in rotation", metadata: ["replica": "\(replica)"])
            } else {
                self.logger.warning("replica not ready, out of rotation", metadata: ["replica": "\(replica)"])
            }
        }
    }
}

/// How every service calls the others: pooled HTTP (`transport`), a circuit breaker per replica,
/// replicas spread with ``ReplicatedUpstream``. With `metrics`, `streamhub_upstream_circuit_open`
/// is 1 while every replica of an upstream has its breaker open, and each opening is counted.
/// The returned client is a `Service`: add it to the application's services (readiness checks,
/// name resolution).
public enum UpstreamStack {
    final class Link: Sendable {
        let replicated = Mutex<ReplicatedUpstream?>(nil)
    }

    public static func make(
        transport: any UpstreamClient, upstreams: [(name: String, targets: UpstreamTargets)], threshold: Int = 3, logger: Logger,
        metrics: ServiceMetrics? = nil
    ) -> ReplicatedUpstream {
        let names = Dictionary(upstreams.map { ($0.targets.configured, $0.name) }, uniquingKeysWith: { first, next in first + "+" + next })
        for name in names.values {
            metrics?.gauge(.upstreamCircuitOpen, labels: [("upstream", name)]).set(Double(0))
            // Every documented metric exists from start-up: openings at 0 until the first one.
            _ = metrics?.counter(.upstreamCircuitOpenings, labels: [("upstream", name)])
        }
        let link = Link()
        let breaker = CircuitBreakingUpstream(
            inner: transport, threshold: threshold, logger: logger,
            onChange: { replica, state in
                guard let metrics, let replicated = link.replicated.withLock({ $0 }), let configured = replicated.upstream(ofReplica: replica),
                    let name = names[configured]
                else { return }
                let allOpen = replicated.replicas(of: configured).allSatisfy { replicated.breaker.state($0) == .open }
                metrics.gauge(.upstreamCircuitOpen, labels: [("upstream", name)]).set(Double(allOpen ? 1 : 0))
                if state == .open { metrics.counter(.upstreamCircuitOpenings, labels: [("upstream", name)]).increment() }
            })
        let replicated = ReplicatedUpstream(breaker: breaker, upstreams: upstreams.map(\.targets), logger: logger)
        link.replicated.withLock { $0 = replicated }
        return replicated
    }
}
