import ServiceKit
import ServiceStorage
import Shared

/// Everything identity reads at start.
///
/// Keys: `HOST`, `PORT` (8081), `STREAMHUB_INTERNAL_TOKEN`, `STREAMHUB_JWT_SECRET`, `METRICS_TOKEN`,
/// `DATABASE_URL` or `STREAMHUB_DATA_DIR` (SQLite file `identity.sqlite`), `LOG_LEVEL`.
public struct IdentityConfiguration: Sendable {
    public var common: CommonConfiguration
    public var storage: StorageLocation
    /// Signs dashboard sessions; the gateway verifies them with the same secret.
    public var jwtSecret: String

    public init(reader: SettingsReader) throws {
        self.common = try CommonConfiguration(reader: reader, defaultPort: DefaultPort.identity)
        self.storage = try StorageLocation(reader: reader, name: "identity")
        self.jwtSecret = try reader.requiredSecret(ConfigKey.jwtSecret)
    }
}
