import ServiceKit
import Shared

/// Everything authz reads at start.
///
/// Keys: `HOST`, `PORT` (8082), `STREAMHUB_INTERNAL_TOKEN`, `METRICS_TOKEN`, `STREAMHUB_AUTHZ_ENFORCE`
/// (`off` | `log` | `on`, default `log`), `DATABASE_URL` or `STREAMHUB_DATA_DIR` (SQLite file
/// `authz.sqlite`), `LOG_LEVEL`.
public struct AuthzConfiguration: Sendable {
    public var common: CommonConfiguration
    public var enforcement: EnforcementMode

    public init(reader: SettingsReader) throws {
        self.common = try CommonConfiguration(reader: reader, defaultPort: DefaultPort.authz, storageName: "authz")
        let mode = reader.string(ConfigKey.authzEnforce, default: "log").lowercased()
        guard let enforcement = EnforcementMode(rawValue: mode) else {
            throw ConfigurationError("\(ConfigKey.authzEnforce) must be off, log or on (got \"\(mode)\")")
        }
        self.enforcement = enforcement
    }
}
