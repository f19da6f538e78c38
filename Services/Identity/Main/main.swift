import IdentityApp
import ServiceKit

await ServiceMain.run(name: "streamhub-identity", usage: ServiceUsage.identity) { reader, logger in
    try await buildIdentity(
        reader: reader,
        dependencies: IdentityDependencies(metrics: ServiceMetrics(service: "identity", registry: ServiceMetrics.processRegistry)),
        logger: logger
    )
}
