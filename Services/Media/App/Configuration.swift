import Foundation
import ServiceKit
import ServiceStorage
import Shared

/// Everything media reads at start.
///
/// Keys: `HOST`, `PORT` (8083), `STREAMHUB_INTERNAL_TOKEN`, `STREAMHUB_CLUSTER_TOKEN`, `METRICS_TOKEN`,
/// `DATABASE_URL` or `STREAMHUB_DATA_DIR` (SQLite file `media.sqlite`), `STREAMHUB_MEDIA_ROOT`
/// (default `<data dir>/media`), `LOG_LEVEL`, `IDENTITY_URL` (tenant quotas), `LIVEKIT_URL`,
/// `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET` (≥ 32 bytes), `STREAMHUB_PLAY_TOKEN_TTL_S` (3600),
/// `STREAMHUB_NODE_TTL_S` (30), `STREAMHUB_PUBLIC_URL` (oEmbed's URLs).
public struct MediaConfiguration: Sendable {
    public var common: CommonConfiguration
    public var storage: StorageLocation
    /// Nodes present it on `/cluster/join` and `/cluster/heartbeat`.
    public var clusterToken: String
    /// Directory holding `hls/`, `samples/`, `sdk/`, `play/`, `embed/`, `assets/`.
    public var mediaRoot: String
    /// Where tenants' quotas are read (one URL, replicas, or a name resolving to several).
    public var identity: UpstreamTargets
    public var identityURL: String { self.identity.configured }
    /// The LiveKit server viewers and publishers connect to, and the key pair tokens are signed with.
    public var livekit: LiveKitSettings
    /// `STREAMHUB_PUBLIC_URL`: where players and oEmbed point.
    public var publicURL: String
    /// A node not heard from for this long is not alive (no room is placed on it).
    public var nodeTTLSeconds: Int

    public init(reader: SettingsReader) throws {
        self.common = try CommonConfiguration(reader: reader, defaultPort: DefaultPort.media)
        self.storage = try StorageLocation(reader: reader, name: "media")
        self.clusterToken = try reader.requiredSecret(ConfigKey.clusterToken)
        let dataDir = reader.string(ConfigKey.dataDir, default: ".streamhub/data")
        let root = reader.string(ConfigKey.mediaRoot, default: (dataDir as NSString).appendingPathComponent("media"))
        self.mediaRoot = root.hasSuffix("/") ? String(root.dropLast()) : root
        self.identity = try reader.upstream(ConfigKey.identityURL, default: "http://127.0.0.1:\(DefaultPort.identity)")
        let livekitURL = reader.string(ConfigKey.livekitURL, default: "ws://127.0.0.1:7880")
        guard let components = URLComponents(string: livekitURL), ["ws", "wss", "http", "https"].contains(components.scheme ?? ""),
            components.host?.isEmpty == false
        else { throw ConfigurationError("\(ConfigKey.livekitURL) must be a ws(s):// or http(s):// URL (got \"\(livekitURL)\")") }
        guard let key = reader.string(ConfigKey.livekitAPIKey) else {
            throw ConfigurationError("\(ConfigKey.livekitAPIKey) is required and not set (`streamhub up` generates a development pair)")
        }
        if let problem = Identifier.problem(key) { throw ConfigurationError("\(ConfigKey.livekitAPIKey) \(problem)") }
        self.livekit = LiveKitSettings(
            url: livekitURL, apiKey: key, apiSecret: try reader.requiredSecret(ConfigKey.livekitAPISecret),
            playTokenTTL: try reader.int(ConfigKey.playTokenTTL, default: 3600, range: 60...86_400))
        self.nodeTTLSeconds = try reader.int(ConfigKey.nodeTTL, default: 30, range: 3...3600)
        self.publicURL = try reader.url(ConfigKey.publicURL, default: "http://127.0.0.1:\(DefaultPort.gateway)")
    }
}
