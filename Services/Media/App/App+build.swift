import Foundation
import Hummingbird
import Logging
import ServiceKit
import ServiceStorage
import ServiceLifecycle
import Shared

public struct MediaDependencies: Sendable {
    public var apps: (any AppRepository)?
    public var metrics: ServiceMetrics?

    public init(apps: (any AppRepository)? = nil, metrics: ServiceMetrics? = nil) {
        self.apps = apps
        self.metrics = metrics
    }
}

public func buildMedia(reader: SettingsReader, dependencies: MediaDependencies = .init(), logger: Logger? = nil) async throws
    -> some ApplicationProtocol
{
    try await buildMedia(configuration: MediaConfiguration(reader: reader), dependencies: dependencies, logger: logger)
}

/// Builds the media gateway: apps, and the static/media mounts.
public func buildMedia(
    configuration: MediaConfiguration, dependencies: MediaDependencies = .init(), logger: Logger? = nil
) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "streamhub-media")
    logger.logLevel = configuration.common.logLevel
    let metrics = dependencies.metrics ?? ServiceMetrics(service: "media")
    var services: [any Service] = []
    var migrate: (@Sendable () async throws -> Void)?
    var readiness: [ReadinessCheck] = []
    let apps: any AppRepository
    var idempotency: (any IdempotencyStore)?
    var events: SQLStreamEvents?
    var nodes: SQLNodeRegistry?
    if let injected = dependencies.apps {
        apps = injected
    } else {
        let (database, service) = try await DatabaseFactory.open(configuration.storage, logger: logger)
        services.append(service)
        apps = SQLAppRepository(database: database)
        idempotency = SQLIdempotencyStore(database: database, prefix: "media")
        events = SQLStreamEvents(database: database)
        nodes = SQLNodeRegistry(database: database)
        migrate = { [logger] in try await MediaMigrations.migrator.migrate(database, logger: logger) }
        readiness.append(MediaMigrations.migrator.readiness(database))
    }
    let startedAt = Date()
    let router = Router(context: ServiceRequestContext.self)
    router.addServiceMiddleware(metrics: metrics)
    router.addHealthRoute(startedAt: startedAt)
    router.addReadinessRoute(readiness)
    router.addMetricsRoute(metrics: metrics, token: configuration.common.metricsToken)
    let pages = PlayerPages(publicURL: configuration.publicURL)
    let files = MediaMountController<ServiceRequestContext>(root: configuration.mediaRoot, pages: pages)
    files.addRoutes(to: router)
    let http = HTTPUpstreamClient()
    services.append(http)
    let transport = UpstreamStack.make(transport: http, upstreams: [("identity", configuration.identity)], logger: logger, metrics: metrics)
    services.append(transport)
    let appsController = AppsController<ServiceRequestContext>(
        apps: apps, identity: InternalClient(transport: transport, internalToken: configuration.common.internalToken, timeout: .seconds(10)),
        identityURL: configuration.identityURL, livekit: LiveKitTokens(settings: configuration.livekit), nodes: nodes,
        nodeTTLSeconds: configuration.nodeTTLSeconds)
    appsController.addRoutes(to: router.forwardedGroup(internalToken: configuration.common.internalToken, idempotency: idempotency))
    appsController.addInternalRoutes(to: router.internalGroup(internalToken: configuration.common.internalToken))
    router.forwardedGroup(internalToken: configuration.common.internalToken).get("oembed", use: pages.oembed)
    if let nodes {
        ClusterController<ServiceRequestContext>(registry: nodes, clusterToken: configuration.clusterToken, ttlSeconds: configuration.nodeTTLSeconds)
            .addRoutes(to: router.forwardedGroup(internalToken: configuration.common.internalToken, idempotency: idempotency))
    }
    if let events {
        WebhookController<ServiceRequestContext>(verifier: LiveKitWebhookVerifier(settings: configuration.livekit), events: events)
            .addRoutes(to: router.forwardedGroup(internalToken: configuration.common.internalToken))
    }
    router.addRouteListing(internalToken: configuration.common.internalToken)
    // Segments and playlists under /hls and /samples are answered on the event loop with sendfile:
    // read from the socket's bytes while a connection asks for nothing else, else from decoded heads.
    let fastPathLogger = logger
    var app = Application(
        router: router,
        server: FastPathHTTP1Channel.server(
            front: { MediaRawFastPath(files: files, metrics: metrics, logger: fastPathLogger) },
            { MediaFastPath(files: files, metrics: metrics, logger: fastPathLogger) }),
        configuration: .init(address: .hostname(configuration.common.host, port: configuration.common.port), serverName: "streamhub-media"),
        services: services,
        logger: logger
    )
    if let migrate {
        app.beforeServerStarts(perform: migrate)
    }
    return app
}
