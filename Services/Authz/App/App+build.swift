import CasbinEngine
import Foundation
import Hummingbird
import Logging
import ServiceKit
import ServiceStorage
import ServiceLifecycle
import Shared

public struct AuthzDependencies: Sendable {
    public var metrics: ServiceMetrics?
    public var store: (any PolicyStore)?
    /// How authz reaches identity (a fake in tests).
    public var identity: (any UpstreamClient)?
    public init(metrics: ServiceMetrics? = nil, store: (any PolicyStore)? = nil, identity: (any UpstreamClient)? = nil) {
        self.metrics = metrics
        self.store = store
        self.identity = identity
    }
}

public func buildAuthz(reader: SettingsReader, dependencies: AuthzDependencies = .init(), logger: Logger? = nil) async throws
    -> some ApplicationProtocol
{
    try await buildAuthz(configuration: AuthzConfiguration(reader: reader), dependencies: dependencies, logger: logger)
}

/// Builds authz: the policy store and its migrations, the engine kept current by a version
/// watcher, the internal enforce API and the public policy administration routes.
public func buildAuthz(
    configuration: AuthzConfiguration, dependencies: AuthzDependencies = .init(), logger: Logger? = nil
) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "streamhub-authz")
    logger.logLevel = configuration.common.logLevel
    let metrics = dependencies.metrics ?? ServiceMetrics(service: "authz")
    var services: [any Service] = []
    var migrate: (@Sendable () async throws -> Void)?
    var readiness: [ReadinessCheck] = []
    let store: any PolicyStore
    var idempotency: (any IdempotencyStore)?
    if let injected = dependencies.store {
        store = injected
    } else {
        let (database, service) = try await DatabaseFactory.open(configuration.storage, logger: logger)
        services.append(service)
        store = SQLPolicyStore(database: database)
        idempotency = SQLIdempotencyStore(database: database, prefix: "authz")
        migrate = { [logger] in try await AuthzMigrations.migrator.migrate(database, logger: logger) }
        readiness.append(AuthzMigrations.migrator.readiness(database))
    }
    let engine = try PolicyEngine(model: configuration.model, store: store)
    let confirmation = PolicyConfirmation(stalenessBound: configuration.policyStalenessBound)
    readiness.append(confirmation.readiness())
    services.append(PolicyWatcher(engine: engine, confirmation: confirmation, metrics: metrics, logger: logger))

    let startedAt = Date()
    let router = Router(context: ServiceRequestContext.self)
    router.addServiceMiddleware(metrics: metrics)
    router.addHealthRoute(startedAt: startedAt)
    router.addReadinessRoute(readiness)
    router.addMetricsRoute(metrics: metrics, token: configuration.common.metricsToken)
    let enforce = EventLoopRoutes(
        routes: EnforceController(engine: engine, mode: configuration.enforcement, metrics: metrics).routes,
        internalToken: configuration.common.internalToken, metrics: metrics, serverName: "streamhub-authz", logger: logger
    )
    enforce.addRoutes(to: router)
    let identityTransport: any UpstreamClient
    if let injected = dependencies.identity {
        identityTransport = injected
    } else {
        let http = HTTPUpstreamClient()
        services.append(http)
        let stack = UpstreamStack.make(transport: http, upstreams: [("identity", configuration.identity)], logger: logger, metrics: metrics)
        services.append(stack)
        identityTransport = stack
    }
    let tenants = TenantDirectory(
        identity: InternalClient(transport: identityTransport, internalToken: configuration.common.internalToken, timeout: .seconds(5)),
        identityURL: configuration.identityURL)
    PolicyAdminController(engine: engine, tenants: tenants).addRoutes(
        to: router.forwardedGroup(internalToken: configuration.common.internalToken, idempotency: idempotency))
    RoleGrantController(engine: engine, mode: configuration.enforcement).addRoutes(to: router.internalGroup(internalToken: configuration.common.internalToken))

    router.addRouteListing(internalToken: configuration.common.internalToken)
    var app = Application(
        router: router,
        server: enforce.server,
        configuration: .init(address: .hostname(configuration.common.host, port: configuration.common.port), serverName: "streamhub-authz"),
        services: services,
        logger: logger
    )
    app.beforeServerStarts { [logger, migrate] in
        if let migrate { try await migrate() }
        try await engine.refresh(force: true)
        confirmation.confirm()
        logger.info(
            "policy loaded",
            metadata: [
                "version": "\(engine.currentVersion)", "mode": "\(configuration.enforcement.rawValue)",
                "model": "\(configuration.modelFile ?? "built-in default_model.conf")",
            ])
    }
    return app
}
