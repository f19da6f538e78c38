import Foundation
import Hummingbird
import Logging
import ServiceKit
import ServiceLifecycle
import Shared

public struct AuthzDependencies: Sendable {
    public var metrics: ServiceMetrics?
    public init(metrics: ServiceMetrics? = nil) { self.metrics = metrics }
}

public func buildAuthz(reader: SettingsReader, dependencies: AuthzDependencies = .init(), logger: Logger? = nil) async throws
    -> some ApplicationProtocol
{
    try await buildAuthz(configuration: AuthzConfiguration(reader: reader), dependencies: dependencies, logger: logger)
}

/// Builds authz: its store and migrations, health and metrics. The Casbin engine and the enforce
/// API arrive with the authz issue; until then the gateway treats authz as unreachable (`log`
/// mode lets requests on, `on` answers 503).
public func buildAuthz(
    configuration: AuthzConfiguration, dependencies: AuthzDependencies = .init(), logger: Logger? = nil
) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "streamhub-authz")
    logger.logLevel = configuration.common.logLevel
    let metrics = dependencies.metrics ?? ServiceMetrics(service: "authz")
    guard let (database, service) = try await DatabaseFactory.open(configuration.common.storage, logger: logger) else {
        throw ConfigurationError("authz needs a database")
    }
    let startedAt = Date()
    let router = Router(context: BasicRequestContext.self)
    router.addServiceMiddleware(metrics: metrics)
    router.addHealthRoute(startedAt: startedAt)
    router.addMetricsRoute(metrics: metrics, token: configuration.common.metricsToken)
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.common.host, port: configuration.common.port), serverName: "streamhub-authz"),
        services: [service],
        logger: logger
    )
    app.beforeServerStarts { [logger] in try await AuthzMigrations.migrator.migrate(database, logger: logger) }
    return app
}
