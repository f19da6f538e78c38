import AuthzApp
import ServiceKit

// `streamhub-authz eval …` is the offline policy tool; without arguments the service runs.
if CommandLine.arguments.dropFirst().first == "eval" {
    EvalCommand.main(Array(CommandLine.arguments.dropFirst(2)))
} else {
    await ServiceMain.run(
        name: "streamhub-authz", usage: ServiceUsage.authz
    ) { reader, logger in
        try await buildAuthz(
            reader: reader,
            dependencies: AuthzDependencies(metrics: ServiceMetrics(service: "authz", registry: ServiceMetrics.processRegistry)),
            logger: logger
        )
    }
}
