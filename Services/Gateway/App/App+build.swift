import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import ServiceKit
import ServiceLifecycle
import Shared

/// What the gateway talks to; real ones unless a test injects others.
public struct GatewayDependencies: Sendable {
    public var upstream: (any UpstreamClient)?
    public var metrics: ServiceMetrics?
    public var timeSource: any TimeSource

    public init(upstream: (any UpstreamClient)? = nil, metrics: ServiceMetrics? = nil, timeSource: any TimeSource = SystemTimeSource()) {
        self.upstream = upstream
        self.metrics = metrics
        self.timeSource = timeSource
    }
}

/// Builds the gateway from its configuration.
///
/// - Throws: ``ConfigurationError`` when a setting is missing or invalid.
public func buildGateway(
    reader: SettingsReader, dependencies: GatewayDependencies = .init(), logger: Logger? = nil
) async throws -> some ApplicationProtocol {
    let configuration = try GatewayConfiguration(reader: reader)
    return try await buildGateway(configuration: configuration, dependencies: dependencies, logger: logger)
}

public func buildGateway(
    configuration: GatewayConfiguration, dependencies: GatewayDependencies = .init(), logger: Logger? = nil
) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "streamhub-gateway")
    logger.logLevel = configuration.common.logLevel
    let metrics = dependencies.metrics ?? ServiceMetrics(service: "gateway")
    var services: [any Service] = []
    let transport: any UpstreamClient
    if let injected = dependencies.upstream {
        transport = injected
    } else {
        let client = HTTPUpstreamClient()
        services.append(client)
        transport = client
    }
    // Calls to an upstream are spread over its replicas, each behind its own breaker: while one is
    // down it leaves rotation (its routes answer 503 at once when none is left), and it comes back
    // by itself when a probe gets an answer.
    // One URL may front several services (one ingress for all three is a normal set-up): its calls
    // are then counted under the joined name (`identity+authz+media`), never a crash at start.
    let upstreamNames = Dictionary(
        [(configuration.identityURL, "identity"), (configuration.authzURL, "authz"), (configuration.mediaURL, "media")],
        uniquingKeysWith: { first, next in first + "+" + next })
    let replicated = UpstreamStack.make(
        transport: transport,
        upstreams: [("identity", configuration.identity), ("authz", configuration.authz), ("media", configuration.media)],
        threshold: configuration.breakerThreshold, logger: logger, metrics: metrics)
    services.append(replicated)
    let measured = MeasuredUpstream(inner: replicated, names: upstreamNames, metrics: metrics)
    let internalClient = InternalClient(
        transport: measured, internalToken: configuration.common.internalToken, timeout: configuration.upstreamTimeout)
    let startedAt = Date()
    let credentials = CredentialResolver(
        client: internalClient, identityURL: configuration.identityURL,
        sessions: SessionTokens(secret: configuration.jwtSecret, issuer: configuration.publicURL),
        cache: ApiTokenCache(ttl: configuration.tokenCacheTTL), sessionStates: TTLCache(ttl: configuration.tokenCacheTTL),
        timeSource: dependencies.timeSource, metrics: metrics
    )
    let decisions = DecisionCache(capacity: configuration.decisionCacheSize)
    if decisions.isEnabled {
        services.append(PolicyVersionWatcher(cache: decisions, client: internalClient, authzURL: configuration.authzURL, logger: logger))
    }
    let authorization = AuthorizationClient(
        client: internalClient, authzURL: configuration.authzURL, whenUnavailable: configuration.whenAuthzUnavailable, metrics: metrics,
        cache: decisions
    )
    let router = Router(context: ServiceRequestContext.self)
    router.addServiceMiddleware(metrics: metrics, edge: EdgeMiddleware(cors: configuration.cors))
    router.add(
        middleware: GatewayProxy(
            configuration: configuration, upstream: measured, credentials: credentials, authorization: authorization, startedAt: startedAt
        )
    )
    router.addHealthRoute(startedAt: startedAt)
    router.addReadinessRoute(
        [("identity", configuration.identityURL), ("authz", configuration.authzURL), ("media", configuration.mediaURL)].map { name, url in
            UpstreamReadiness.check(name, baseURL: url, client: internalClient)
        })
    router.addMetricsRoute(metrics: metrics, token: configuration.common.metricsToken)
    logger.info(
        "gateway configured",
        metadata: [
            "identity": "\(configuration.identityURL)", "authz": "\(configuration.authzURL)", "media": "\(configuration.mediaURL)",
            "enforce_when_authz_unavailable": "\(configuration.whenAuthzUnavailable.rawValue)",
        ]
    )
    // Requests the HTTP parser refuses get 431/400 in the NestJS body, not a bare 400. Each
    // connection's requests run on its event loop, as do their calls upstream; API reads whose
    // caller and decision are cached are answered right there, without the router
    // (``GatewayFastLane``), when the transport is the pooled one (not a test's).
    let serverName = "streamhub-gateway"
    let server: HTTPServerBuilder
    if let onLoop = OnLoopUpstream(transport: transport, replicated: replicated, measured: measured) {
        let lane = GatewayFastLane(
            configuration: configuration, upstream: onLoop, credentials: credentials, authorization: authorization, metrics: metrics, logger: logger,
            serverName: serverName)
        let limits = ConnectionLimits(
            maxConnections: configuration.maxConnections, idleTimeout: configuration.idleTimeout, headTimeout: configuration.headerTimeout)
        server = FastPathHTTP1Channel.server(additional: { [ParserErrorHandler()] }, onEventLoop: true, limits: limits) {
            GatewayFastPathHandler(lane: lane)
        }
    } else {
        server = EventLoopHTTP1Channel.server(configuration: .init(additionalChannelHandlers: [ParserErrorHandler()]))
    }
    return Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(configuration.common.host, port: configuration.common.port), serverName: serverName),
        services: services,
        logger: logger
    )
}
