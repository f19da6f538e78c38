import MediaApp
import ServiceKit

await ServiceMain.run(name: "streamhub-media", usage: ServiceUsage.media) { reader, logger in
    try await buildMedia(
        reader: reader,
        dependencies: MediaDependencies(metrics: ServiceMetrics(service: "media", registry: ServiceMetrics.processRegistry)),
        logger: logger
    )
}
