import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Shared
import UnixSignals

/// The shared `main` of every service executable: structured JSON logs on stderr, Prometheus as the
/// swift-metrics backend, configuration from the environment, a clear message and exit code 2 on a
/// configuration error, graceful shutdown on SIGTERM/SIGINT.
public enum ServiceMain {
    /// - Parameters:
    ///   - name: the executable's name, prefixed to fatal messages.
    ///   - usage: printed for `--help`; any other argument is a usage error (exit 64) — the services
    ///     take their settings from the environment only.
    /// What `mode` means for whoever reads the log: every service says it once at start, a warning
    /// unless roles are enforced (the contract's default, `log`, enforces nothing).
    public static func modeLine(_ mode: EnforcementMode) -> String {
        switch mode {
        case .on: "authorization mode: on (roles are enforced)"
        case .log:
            "authorization mode: log: roles are evaluated and denials logged, never enforced; set STREAMHUB_AUTHZ_ENFORCE=on for a real deployment"
        case .off:
            "authorization mode: off: roles are not evaluated, any credential reaches everything its scope names; set STREAMHUB_AUTHZ_ENFORCE=on for a real deployment"
        }
    }

    static func announce(_ mode: EnforcementMode, logger: Logger) {
        if mode == .on { logger.notice("\(Self.modeLine(mode))") } else { logger.warning("\(Self.modeLine(mode))") }
    }

    public static func run<App: ApplicationProtocol>(
        name: String,
        usage: String,
        arguments: [String] = Array(CommandLine.arguments.dropFirst()),
        build: (SettingsReader, Logger) async throws -> App
    ) async {
        if let first = arguments.first {
            if ["--help", "-h", "help"].contains(first) {
                print(usage)
                exit(0)
            }
            FileHandle.standardError.write(Data("\(name): unknown argument \(first)\n\n\(usage)\n".utf8))
            exit(64)
        }
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: ServiceMetrics.processRegistry))
        let logger = Logger(label: name)
        let app: App
        do {
            app = try await build(SettingsReader.environment(), logger)
        } catch let error as ConfigurationError {
            Self.fatal(name, error.description, code: 2)
        } catch {
            Self.fatal(name, "failed to start: \(error)", code: 1)
        }
        if let mode = try? SettingsReader.environment().enforcementMode() { Self.announce(mode, logger: logger) }
        // Shutdown always completes: a dependency that stopped answering (a frozen database under
        // the pool's graceful close) must not keep a stopping process alive past the orchestrator's
        // patience. Past `shutdownDeadline` after SIGTERM/SIGINT the process exits on its own.
        let deadline = Task {
            for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                try? await Task.sleep(for: Self.shutdownDeadline)
                logger.warning("shutdown did not finish in time; exiting", metadata: ["deadline_s": "\(Self.shutdownDeadline.components.seconds)"])
                exit(0)
            }
        }
        defer { deadline.cancel() }
        let supervisor = Self.watchSupervisor(logger: logger)
        defer { supervisor?.cancel() }
        do {
            try await app.runService()
        } catch {
            logger.critical("stopped with an error", metadata: ["error": "\(error)"])
            // The last line of the log is the reason in plain words (`streamhub up` shows it).
            Self.fatal(name, "stopped: \(error)", code: 1)
        }
    }

    /// The environment variable `streamhub up` sets to its own pid in the services it starts.
    public static let supervisorKey = "STREAMHUB_SUPERVISOR_PID"

    /// Started by `streamhub up` (``supervisorKey``): when `up` is gone — killed with SIGKILL, by
    /// the OOM killer, anything it could not trap — the service is re-parented and stops itself as
    /// on SIGTERM (checked every 500 ms), so no service is left holding `up`'s ports.
    static func watchSupervisor(logger: Logger) -> Task<Void, Never>? {
        guard let text = ProcessInfo.processInfo.environment[Self.supervisorKey], let supervisor = Int32(text), supervisor > 1 else {
            return nil
        }
        return Task.detached {
            while !Task.isCancelled {
                if getppid() != supervisor {
                    logger.warning("the supervisor is gone; stopping", metadata: ["supervisor_pid": "\(supervisor)"])
                    kill(getpid(), SIGTERM)
                    return
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// How long a stopping service may take before it exits regardless.
    public static let shutdownDeadline: Duration = .seconds(7)

    static func fatal(_ name: String, _ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("\(name): \(message)\n".utf8))
        exit(code)
    }
}

/// What `--help` prints for each service executable.
public enum ServiceUsage {
    static func text(_ binary: String, _ summary: String, _ keys: String) -> String {
        """
        USAGE: \(binary)

        \(summary)
        Settings come from the environment only (see README.md, "Configuration"):
          \(keys)
        A missing or invalid setting stops start-up with a message naming it (exit 2).
        """
    }

    public static let gateway = text(
        "streamhub-gateway", "The StreamHub API gateway: /api/v1, /metrics and the media mounts.",
        "HOST PORT LOG_LEVEL STREAMHUB_INTERNAL_TOKEN STREAMHUB_JWT_SECRET STREAMHUB_PUBLIC_URL METRICS_TOKEN STREAMHUB_AUTHZ_ENFORCE\n  IDENTITY_URL AUTHZ_URL MEDIA_URL GATEWAY_UPSTREAM_TIMEOUT_MS GATEWAY_MAX_BODY_BYTES GATEWAY_BREAKER_THRESHOLD GATEWAY_DECISION_CACHE_SIZE\n  STREAMHUB_CORS_ORIGINS STREAMHUB_TRUSTED_PROXIES")
    public static let identity = text(
        "streamhub-identity", "The StreamHub identity service: users, tenants, sessions, sk_ tokens.",
        "HOST PORT LOG_LEVEL STREAMHUB_INTERNAL_TOKEN STREAMHUB_JWT_SECRET STREAMHUB_PUBLIC_URL METRICS_TOKEN AUTHZ_URL MEDIA_URL\n  DATABASE_URL DATABASE_CONNECT_TIMEOUT_S STREAMHUB_DATA_DIR ADMIN_USER ADMIN_PASS STREAMHUB_DEFAULT_MAX_*\n  STREAMHUB_MAIL_LIMIT_PER_EMAIL STREAMHUB_MAIL_LIMIT_PER_IP STREAMHUB_MAIL_LIMIT_WINDOW_S STREAMHUB_MAGIC_LINK_COOLDOWN_S\n  STREAMHUB_MAIL_OUTBOX STREAMHUB_MAIL_FROM SMTP_HOST SMTP_PORT SMTP_SECURITY SMTP_USERNAME SMTP_PASSWORD SMTP_CA_FILE")
    public static let authz = """
        USAGE: streamhub-authz
               streamhub-authz eval --model FILE [--policy FILE] [--explain]

        The StreamHub authorization service (Casbin-compatible). Without arguments it runs the service;
        `eval` decides requests read from stdin offline (see docs/authz.md).
        Settings come from the environment only (see README.md, "Configuration"):
          HOST PORT LOG_LEVEL STREAMHUB_INTERNAL_TOKEN METRICS_TOKEN STREAMHUB_AUTHZ_ENFORCE STREAMHUB_AUTHZ_MODEL
          DATABASE_URL DATABASE_CONNECT_TIMEOUT_S STREAMHUB_DATA_DIR
        A missing or invalid setting stops start-up with a message naming it (exit 2).
        """
    public static let media = text(
        "streamhub-media", "The StreamHub media gateway: apps, play-tokens, the /hls /samples /sdk /play /embed /assets mounts.",
        "HOST PORT LOG_LEVEL STREAMHUB_INTERNAL_TOKEN STREAMHUB_CLUSTER_TOKEN METRICS_TOKEN STREAMHUB_MEDIA_ROOT IDENTITY_URL\n  LIVEKIT_URL LIVEKIT_API_KEY LIVEKIT_API_SECRET STREAMHUB_PLAY_TOKEN_TTL_S STREAMHUB_NODE_TTL_S\n  STREAMHUB_PUBLIC_URL DATABASE_URL DATABASE_CONNECT_TIMEOUT_S STREAMHUB_DATA_DIR")
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

    public func log(event: LogEvent) {
        var object: [String: Any] = [
            "ts": Timestamp.iso8601(Date()),
            "level": event.level.rawValue,
            "logger": self.label,
            "msg": event.message.description,
        ]
        for (key, value) in self.metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) {
            object[key] = value.description
        }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        FileHandle.standardError.write(data)
    }
}
