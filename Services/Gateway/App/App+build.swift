import Foundation
import Hummingbird
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
    let upstream: any UpstreamClient
    if let injected = dependencies.upstream {
        upstream = injected
    } else {
        let client = HTTPUpstreamClient()
        services.append(client)
        upstream = client
    }
    let startedAt = Date()
    let credentials = CredentialResolver(
        upstream: upstream, identityURL: configuration.identityURL, internalToken: configuration.common.internalToken,
        sessions: SessionTokenVerifier(secret: configuration.jwtSecret), cache: ApiTokenCache(ttl: configuration.tokenCacheTTL),
        timeout: configuration.upstreamTimeout, timeSource: dependencies.timeSource
    )
    let authorization = AuthorizationClient(
        upstream: upstream, authzURL: configuration.authzURL, internalToken: configuration.common.internalToken,
        mode: configuration.enforcement, timeout: configuration.upstreamTimeout, metrics: metrics
    )
    let router = Router(context: GatewayRequestContext.self)
    router.addServiceMiddleware(metrics: metrics)
    router.add(
        middleware: GatewayProxy(
            configuration: configuration, upstream: upstream, credentials: credentials, authorization: authorization, startedAt: startedAt
        )
    )
    router.addHealthRoute(startedAt: startedAt)
    router.addMetricsRoute(metrics: metrics, token: configuration.common.metricsToken)
    logger.info(
        "gateway configured",
        metadata: [
            "identity": "\(configuration.identityURL)", "authz": "\(configuration.authzURL)", "media": "\(configuration.mediaURL)",
            "enforce": "\(configuration.enforcement.rawValue)",
        ]
    )
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.common.host, port: configuration.common.port), serverName: "streamhub-gateway"),
        services: services,
        logger: logger
    )
}
