import GatewayApp
import ServiceKit

await ServiceMain.run(name: "streamhub-gateway", usage: ServiceUsage.gateway) { reader, logger in
    try await buildGateway(
        reader: reader,
        dependencies: GatewayDependencies(metrics: ServiceMetrics(service: "gateway", registry: ServiceMetrics.processRegistry)),
        logger: logger
    )
}
