import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// The shared `main` of every service executable: structured JSON logs on stderr, Prometheus as the
/// swift-metrics backend, configuration from the environment, a clear message and exit code 2 on a
/// configuration error, graceful shutdown on SIGTERM/SIGINT.
public enum ServiceMain {
    public static func run<App: ApplicationProtocol>(
        name: String,
        build: (SettingsReader, Logger) async throws -> App
    ) async {
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: ServiceMetrics.processRegistry))
        let logger = Logger(label: name)
        let app: App
        do {
            app = try await build(SettingsReader.environment(), logger)
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("\(name): \(error.description)\n".utf8))
            exit(2)
        } catch {
            FileHandle.standardError.write(Data("\(name): failed to start: \(error)\n".utf8))
            exit(1)
        }
        do {
            try await app.runService()
        } catch {
            logger.critical("stopped with an error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}

/// One JSON object per line: `ts`, `level`, `logger`, `msg`, then metadata (`request_id`, …).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt
    ) {
        var object: [String: Any] = [
            "ts": Timestamp.iso8601(Date()),
            "level": level.rawValue,
            "logger": self.label,
            "msg": message.description,
        ]
        for (key, value) in self.metadata.merging(metadata ?? [:], uniquingKeysWith: { _, new in new }) {
            object[key] = value.description
        }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        FileHandle.standardError.write(data)
    }
}
