import Foundation
import ServiceKit
import ServiceStorage
import Shared

/// Everything media reads at start.
///
/// Keys: `HOST`, `PORT` (8083), `STREAMHUB_INTERNAL_TOKEN`, `STREAMHUB_CLUSTER_TOKEN`, `METRICS_TOKEN`,
/// `DATABASE_URL` or `STREAMHUB_DATA_DIR` (SQLite file `media.sqlite`), `STREAMHUB_MEDIA_ROOT`
/// (default `<data dir>/media`), `LOG_LEVEL`.
public struct MediaConfiguration: Sendable {
    public var common: CommonConfiguration
    public var storage: StorageLocation
    /// Nodes present it on `/cluster/join` and `/cluster/heartbeat`.
    public var clusterToken: String
    /// Directory holding `hls/`, `samples/`, `sdk/`, `play/`, `embed/`, `assets/`.
    public var mediaRoot: String

    public init(reader: SettingsReader) throws {
        self.common = try CommonConfiguration(reader: reader, defaultPort: DefaultPort.media)
        self.storage = try StorageLocation(reader: reader, name: "media")
        self.clusterToken = try reader.requiredSecret(ConfigKey.clusterToken)
        let dataDir = reader.string(ConfigKey.dataDir, default: ".streamhub/data")
        let root = reader.string(ConfigKey.mediaRoot, default: (dataDir as NSString).appendingPathComponent("media"))
        self.mediaRoot = root.hasSuffix("/") ? String(root.dropLast()) : root
    }
}
