import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Prometheus
import Shared
import Synchronization

/// The decision for a `/metrics` request, as the overview defines it: a plain 404 unless a token is
/// configured; then `Authorization: Bearer <token>` or `?token=` must match, else 403.
public enum MetricsAccess: Equatable, Sendable {
    case allowed, notFound, forbidden

    public static func decide(configuredToken: String?, authorization: String?, queryToken: String?) -> MetricsAccess {
        guard let configuredToken else { return .notFound }
        let expected = Array(configuredToken.utf8)
        if let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " {
            let presented = authorization.dropFirst(7).trimmingCharacters(in: .whitespaces)
            if ConstantTime.equals(Array(presented.utf8), expected) { return .allowed }
        }
        if let queryToken, ConstantTime.equals(Array(queryToken.utf8), expected) { return .allowed }
        return .forbidden
    }
}

/// A metric every StreamHub service may expose: its name and the `# HELP` text.
public struct MetricName: Sendable, Hashable {
    /// The base name; `unit` is appended (`streamhub_http_requests` + `total`).
    public var base: String
    public var unit: String
    public var help: String

    public init(_ base: String, unit: String, help: String) {
        self.base = base
        self.unit = unit
        self.help = help
    }

    public var name: String { "\(self.base)_\(self.unit)" }

    var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: self.base, unitName: self.unit, helpText: self.help) }

    public static let httpRequests = MetricName(
        "streamhub_http_requests", unit: "total", help: "Requests answered, by service, route pattern, method and status.")
    public static let httpDuration = MetricName(
        "streamhub_http_request_duration", unit: "seconds", help: "Time to answer a request, by service, route pattern, method and status.")
    public static let credentials = MetricName(
        "streamhub_gateway_credentials", unit: "total", help: "Credentials the gateway resolved on protected routes, by kind (api_token, jwt, anonymous, invalid).")
    public static let authzOutcomes = MetricName(
        "streamhub_gateway_authz_outcomes", unit: "total",
        help: "Permission checks at the gateway by outcome (allowed, cached, denied, would_deny, unavailable_refused, unavailable_allowed) and enforcement mode.")
    public static let upstreamRequests = MetricName(
        "streamhub_upstream_requests", unit: "total",
        help: "Calls from the gateway to a service, by upstream and outcome (ok, error_5xx, refused, timeout, circuit_open, failed).")
    public static let upstreamDuration = MetricName(
        "streamhub_upstream_request_duration", unit: "seconds", help: "Time a service took to answer the gateway, by upstream.")
    public static let authzDecisions = MetricName(
        "streamhub_authz_decisions", unit: "total", help: "Authorization decisions made by authz, by outcome.")
    public static let authzDenials = MetricName(
        "streamhub_authz_denials", unit: "total", help: "Denials (enforced in mode on, would-be in mode log), counted once, by authz.")
    public static let upstreamCircuitOpen = MetricName(
        "streamhub_upstream_circuit", unit: "open", help: "1 while the gateway's circuit breaker for an upstream is open (answering 503 at once), else 0.")
    public static let upstreamCircuitOpenings = MetricName(
        "streamhub_upstream_circuit_openings", unit: "total", help: "How often the gateway's circuit breaker for an upstream opened.")
    public static let policyUnconfirmed = MetricName(
        "streamhub_authz_policy_unconfirmed", unit: "seconds",
        help: "Seconds since this authz replica last confirmed its policy version against the store (0 while current; readiness fails past the staleness bound).")
    public static let decisionCacheHits = MetricName(
        "streamhub_authz_decision_cache_hits", unit: "total", help: "Permission checks the gateway answered from its decision cache (allowed, current policy version).")
    public static let gatewayFastPath = MetricName(
        "streamhub_gateway_event_loop_answers", unit: "total",
        help: "API requests the gateway answered on the connection's event loop (caller and decision cached, pooled upstream connection idle); also counted in the request metrics.")
    public static let authzUnavailable = MetricName(
        "streamhub_authz_unavailable", unit: "total", help: "Permission checks the gateway could not get an answer to from authz.")
}

/// Per-service Prometheus metrics: a registry of its own plus the request counters every service keeps.
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let service: String
    /// Request instruments by method and status, created once each (the registry lookup builds label
    /// keys under a lock; this keeps it off the hot path).
    let instruments = Mutex<[String: RequestInstruments]>([:])

    /// The counter and duration histogram of one method and status.
    public struct RequestInstruments: Sendable {
        let counter: Prometheus.Counter
        let duration: DurationHistogram

        /// Counts one request that took `duration`.
        public func record(_ duration: Duration) {
            self.counter.increment()
            self.duration.record(duration)
        }
    }

    static let buckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10),
    ]

    public init(service: String, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.service = service
        self.registry = registry
    }

    /// Counts one finished request.
    public func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        self.requestInstruments(route: route, method: method, status: status).record(duration)
    }

    /// The instruments for a route pattern, method and status; callers on a hot path may keep them.
    public func requestInstruments(route: String, method: String, status: Int) -> RequestInstruments {
        let key = "\(route) \(method) \(status)"
        return self.instruments.withLock { instruments in
            if let existing = instruments[key] { return existing }
            let labels = [("service", self.service), ("route", route), ("method", method), ("status", String(status))]
            let created = RequestInstruments(
                counter: self.registry.makeCounter(descriptor: MetricName.httpRequests.descriptor, labels: labels),
                duration: self.registry.makeDurationHistogram(descriptor: MetricName.httpDuration.descriptor, labels: labels, buckets: Self.buckets)
            )
            instruments[key] = created
            return created
        }
    }

    /// A counter of this service (labelled with `service` and `labels`).
    public func counter(_ name: MetricName, labels: [(String, String)] = []) -> MetricCounter {
        self.registry.makeCounter(descriptor: name.descriptor, labels: [("service", self.service)] + labels)
    }

    /// A duration histogram of this service (labelled with `service` and `labels`).
    public func histogram(_ name: MetricName, labels: [(String, String)] = []) -> DurationHistogram {
        self.registry.makeDurationHistogram(descriptor: name.descriptor, labels: [("service", self.service)] + labels, buckets: Self.buckets)
    }

    /// A gauge of this service (labelled with `service` and `labels`).
    public func gauge(_ name: MetricName, labels: [(String, String)] = []) -> Gauge {
        self.registry.makeGauge(descriptor: name.descriptor, labels: [("service", self.service)] + labels)
    }

    /// The registry in Prometheus text format.
    public func render() -> ByteBuffer {
        ByteBuffer(bytes: self.registry.emitToBuffer())
    }
}

/// The route pattern a request matched, for metric labels and the access log: set by whatever
/// routes the request (the gateway's catalog match, a mount), else the router's endpoint path, else
/// `unmatched` — never the raw path, so labels stay few.
public final class RouteLabel: Sendable {
    let storage = Mutex<String?>(nil)

    @TaskLocal public static var current: RouteLabel?

    public init() {}

    /// Names the route of the request being answered (a catalog pattern such as `/api/v1/apps/:app`).
    public static func set(_ pattern: String) {
        Self.current?.storage.withLock { $0 = pattern }
    }

    public var value: String? { self.storage.withLock { $0 } }

    /// `/api/v1/apps/{app}` (Hummingbird's endpoint path) → `/api/v1/apps/:app` (the catalog's form).
    public static func pattern(endpoint: String) -> String {
        guard endpoint.contains("{") else { return endpoint }
        return endpoint.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? ":" + segment.dropFirst().dropLast() : String(segment)
        }.joined(separator: "/")
    }
}

/// Counts every request (by route pattern, method and status) into ``ServiceMetrics`` and writes
/// the access log: one line per request at info with method, route pattern, status, duration and
/// request id.
public struct RequestMetricsMiddleware<Context: ServiceRequestContextProtocol>: RouterMiddleware {
    let metrics: ServiceMetrics
    /// Routes polled by machines, logged at debug (counted as every other).
    static var quietRoutes: Set<String> {
        ["/internal/v1/policy/version", "/internal/v1/health", "/internal/v1/ready", "/api/v1/health", "/metrics"]
    }

    public init(metrics: ServiceMetrics) {
        self.metrics = metrics
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let label = RouteLabel()
        let response = try await RouteLabel.$current.withValue(label) { try await next(request, context) }
        let duration = ContinuousClock.now - start
        let route = label.value ?? context.endpointPath.map(RouteLabel.pattern(endpoint:)) ?? "unmatched"
        self.metrics.recordRequest(route: route, method: request.method.rawValue, status: response.status.code, duration: duration)
        let (seconds, attoseconds) = duration.components
        // Polls and probes (the gateway's policy-version poll, health and readiness checks, metric
        // scrapes) would fill the log: they are logged at debug unless they fail.
        let level: Logger.Level = Self.quietRoutes.contains(route) && response.status.code < 500 ? .debug : .info
        context.logger.log(
            level: level, "request",
            metadata: [
                "method": .string(request.method.rawValue), "route": .string(route),
                "status": .stringConvertible(response.status.code),
                "duration_ms": .stringConvertible(Double(seconds) * 1000 + Double(attoseconds) / 1e15),
            ]
        )
        return response
    }
}

extension Router {
    /// `GET /metrics` gated by `METRICS_TOKEN` (see ``MetricsAccess``).
    public func addMetricsRoute(metrics: ServiceMetrics, token: String?) {
        self.get("/metrics") { request, _ -> Response in
            switch MetricsAccess.decide(
                configuredToken: token,
                authorization: request.headers[.authorization],
                queryToken: request.uri.queryParameters["token"].map(String.init)
            ) {
            case .notFound:
                throw ServiceError(.notFound, message: "Cannot GET /metrics")
            case .forbidden:
                throw ServiceError(.forbidden, message: "Forbidden")
            case .allowed:
                return Response(
                    status: .ok,
                    headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: metrics.render())
                )
            }
        }
    }

    /// `GET /internal/v1/health` (and `path`, when given) answering ``HealthStatus``.
    public func addHealthRoute(path: String = "/internal/v1/health", startedAt: Date) {
        self.get(RouterPath(path)) { _, _ -> Response in
            HealthCheck.response(startedAt: startedAt)
        }
    }
}

public enum HealthCheck {
    /// The health body in the overview's key order.
    public static func response(startedAt: Date) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: OrderedJSON.encode(Self.status(startedAt: startedAt)))
        )
    }

    public static func status(startedAt: Date, now: Date = Date()) -> HealthStatus {
        HealthStatus(ts: Timestamp.iso8601(now), uptimeSeconds: max(0, Int(now.timeIntervalSince(startedAt))))
    }
}

/// JSON responses with a fixed content type.
public enum JSONResponse {
    public static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONEncoder().encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}

extension Request {
    /// Decodes a JSON body of at most `limit` bytes; bad JSON or wrong types are a 400 with a clear message.
    public func decodeJSON<T: Decodable>(_ type: T.Type, limit: Int = 1 << 20) async throws -> T {
        var request = self
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw ServiceError(.contentTooLarge, message: "Request body is larger than \(limit) bytes")
        }
        guard buffer.readableBytes > 0 else { throw ServiceError.badRequest("Request body is required") }
        let data = Data(buffer: buffer)
        let value: T
        do {
            value = try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw ServiceError.badRequest(NestErrorMiddleware<BasicRequestContext>.describe(error))
        }
        if let unknown = UnknownFields.first(in: data, decoded: value) {
            // NestJS's ValidationPipe wording (`forbidNonWhitelisted`).
            throw ServiceError.badRequest("property \(unknown) should not exist")
        }
        return value
    }
}

/// Members of a request body the route's type does not know. A body with one is refused (400
/// naming it) instead of the member being ignored: `{"publicPlayback": false}` sent where
/// `{"features": {"publicPlayback": false}}` is meant must not answer 200 and change nothing.
public enum UnknownFields {
    /// The first member path of `data` (`name`, `features.publicPlayback`) that `decoded`, encoded
    /// again, does not have; nil when every member is known. Members sent as `null` are not
    /// checked (they set nothing, and optional members are left out when encoding).
    public static func first(in data: Data, decoded: some Any) -> String? {
        guard let encodable = decoded as? any Encodable, let known = try? JSONEncoder().encode(encodable),
            let input = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let output = try? JSONSerialization.jsonObject(with: known, options: [.fragmentsAllowed])
        else { return nil }
        return Self.unknown(input, known: output, path: "")
    }

    static func unknown(_ input: Any, known: Any, path: String) -> String? {
        if let members = input as? [String: Any] {
            guard let knownMembers = known as? [String: Any] else { return nil }
            for key in members.keys.sorted() {
                guard let value = members[key], !(value is NSNull) else { continue }
                guard let knownValue = knownMembers[key] else { return path + key }
                if let found = Self.unknown(value, known: knownValue, path: path + key + ".") { return found }
            }
            return nil
        }
        if let items = input as? [Any], let knownItems = known as? [Any], items.count == knownItems.count {
            for (index, (item, knownItem)) in zip(items, knownItems).enumerated() {
                if let found = Self.unknown(item, known: knownItem, path: path.dropLast() + "[\(index)].") { return found }
            }
        }
        return nil
    }
}

extension ServiceMetrics {
    /// The registry an executable's swift-metrics backend writes to; `Main` passes it to the app.
    public static let processRegistry = PrometheusCollectorRegistry()
}

extension Router where Context: ServiceRequestContextProtocol {
    /// The middleware every service starts with, in order: request id, request metrics, NestJS errors.
    public func addServiceMiddleware(metrics: ServiceMetrics) {
        self.add(middleware: RequestIDMiddleware())
        self.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        self.add(middleware: NestErrorMiddleware())
    }

    /// The same, with `edge` between the metrics and the error middleware, so it sees every answer
    /// (errors included, already in the NestJS body) before it is counted and sent.
    public func addServiceMiddleware(metrics: ServiceMetrics, edge: some RouterMiddleware<Context>) {
        self.add(middleware: RequestIDMiddleware())
        self.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        self.add(middleware: edge)
        self.add(middleware: NestErrorMiddleware())
    }
}

/// A Prometheus counter from a service's registry.
public typealias MetricCounter = Prometheus.Counter
/// A Prometheus duration histogram from a service's registry.
public typealias MetricHistogram = Prometheus.DurationHistogram
