import AuthzApp
import ServiceKit

await ServiceMain.run(name: "streamhub-authz") { reader, logger in
    try await buildAuthz(
        reader: reader,
        dependencies: AuthzDependencies(metrics: ServiceMetrics(service: "authz", registry: ServiceMetrics.processRegistry)),
        logger: logger
    )
}
