import Foundation
import ServiceKit
import Shared

/// Everything the gateway reads at start.
///
/// Keys: `HOST`, `PORT` (8080), `IDENTITY_URL`, `AUTHZ_URL`, `MEDIA_URL`, `STREAMHUB_INTERNAL_TOKEN`,
/// `STREAMHUB_JWT_SECRET`, `STREAMHUB_PUBLIC_URL` (the sessions' `iss`), `METRICS_TOKEN`, `STREAMHUB_AUTHZ_ENFORCE` (`off` | `log` | `on`, default
/// `log`; at the gateway it only decides what happens while authz cannot answer),
/// `GATEWAY_UPSTREAM_TIMEOUT_MS` (10000), `GATEWAY_MAX_BODY_BYTES` (1 MiB), `GATEWAY_BREAKER_THRESHOLD` (3), `GATEWAY_DECISION_CACHE_SIZE` (10000), `LOG_LEVEL`,
/// `STREAMHUB_CORS_ORIGINS`, `STREAMHUB_TRUSTED_PROXIES`, `GATEWAY_BODY_TIMEOUT_S` (60), `GATEWAY_DOCS_DIR` (Swagger UI's files; default
/// `<STREAMHUB_DATA_DIR>/swagger-ui`).
public struct GatewayConfiguration: Sendable {
    public var common: CommonConfiguration
    /// `IDENTITY_URL`, `AUTHZ_URL`, `MEDIA_URL`: one base URL, a comma-separated list of replicas,
    /// or a name resolving to several addresses (``UpstreamTargets``).
    public var identity: UpstreamTargets
    public var authz: UpstreamTargets
    public var media: UpstreamTargets
    /// The configured values, which key each upstream in calls (``UpstreamRequest/baseURL``).
    public var identityURL: String { self.identity.configured }
    public var authzURL: String { self.authz.configured }
    public var mediaURL: String { self.media.configured }
    public var jwtSecret: String
    /// `STREAMHUB_PUBLIC_URL`: the `iss` every dashboard session must carry.
    public var publicURL: String
    /// `STREAMHUB_DASHBOARD_URL`: where the self-service pages hand a session after sign-in (in
    /// the URL's fragment); nil → the account page.
    public var dashboardURL: String?
    /// `STREAMHUB_CORS_ORIGINS` (comma-separated origins, or `*`).
    public var cors: CORSPolicy
    /// `STREAMHUB_TRUSTED_PROXIES` (comma-separated CIDRs) whose `X-Forwarded-For` is believed.
    public var trustedProxies: TrustedProxies
    /// What a permission check does while authz cannot answer: `on` → 503, `log`/`off` → proceed.
    /// Whether a denial is enforced is authz's answer, not this.
    public var whenAuthzUnavailable: EnforcementMode
    public var upstreamTimeout: Duration
    public var maxBodyBytes: Int
    /// How long a resolved `sk_` token, or identity's word on a user's sessions, is trusted before
    /// asking identity again (revocation bound: 5 s).
    public var tokenCacheTTL: Duration
    /// `GATEWAY_BREAKER_THRESHOLD`: consecutive transport failures (refused, reset, timed out) that
    /// open an upstream's circuit breaker.
    public var breakerThreshold: Int
    /// `GATEWAY_DECISION_CACHE_SIZE`: allowed authz decisions kept (0: no cache).
    public var decisionCacheSize: Int
    /// `GATEWAY_BODY_TIMEOUT_S`: a request body must arrive within this (else 408, connection closed).
    public var bodyTimeout: Duration
    /// `GATEWAY_IDLE_TIMEOUT_S` (30): a client connection with nothing read or written for this
    /// long is closed (an unfinished request head held open, an idle keep-alive).
    public var idleTimeout: Duration
    /// `GATEWAY_HEADER_TIMEOUT_S` (10): a request head must be complete this long after its first
    /// byte, however steadily it trickles in (else the connection is closed).
    public var headerTimeout: Duration
    /// `GATEWAY_MAX_CONNECTIONS`: client connections open at once; past it a new one is closed at
    /// once. Default: from the descriptor limit (``ConnectionLimits/defaultMaxConnections()``).
    public var maxConnections: Int
    /// `GATEWAY_DOCS_DIR`: where Swagger UI's files are (installed by `streamhub up`, the image, CI).
    public var docsDirectory: String

    public init(reader: SettingsReader) throws {
        self.common = try CommonConfiguration(reader: reader, defaultPort: DefaultPort.gateway)
        self.identity = try reader.upstream(ConfigKey.identityURL, default: "http://127.0.0.1:\(DefaultPort.identity)")
        self.authz = try reader.upstream(ConfigKey.authzURL, default: "http://127.0.0.1:\(DefaultPort.authz)")
        self.media = try reader.upstream(ConfigKey.mediaURL, default: "http://127.0.0.1:\(DefaultPort.media)")
        self.jwtSecret = try reader.requiredSecret(ConfigKey.jwtSecret)
        self.publicURL = try reader.url(ConfigKey.publicURL, default: "http://127.0.0.1:\(DefaultPort.gateway)")
        self.dashboardURL = reader.string(ConfigKey.dashboardURL).flatMap { $0.isEmpty ? nil : $0 } == nil ? nil : try reader.url(ConfigKey.dashboardURL)
        func list(_ key: String) -> [String] {
            (reader.string(key) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let origins = list(ConfigKey.corsOrigins)
        for origin in origins where origin != "*" {
            guard let url = URLComponents(string: origin), url.scheme == "http" || url.scheme == "https", url.host != nil, url.path.isEmpty else {
                throw ConfigurationError("\(ConfigKey.corsOrigins): \"\(origin)\" is not an origin like https://dash.example.com")
            }
        }
        self.cors = CORSPolicy(origins: origins)
        self.trustedProxies = try TrustedProxies(cidrs: list(ConfigKey.trustedProxies))
        self.whenAuthzUnavailable = try reader.enforcementMode()
        self.upstreamTimeout = .milliseconds(try reader.int(ConfigKey.upstreamTimeoutMs, default: 10_000, range: 100...600_000))
        self.maxBodyBytes = try reader.int(ConfigKey.maxBodyBytes, default: 1 << 20, range: 1024...(256 << 20))
        self.tokenCacheTTL = .seconds(3)
        self.breakerThreshold = try reader.int(ConfigKey.breakerThreshold, default: 3, range: 1...1000)
        self.decisionCacheSize = try reader.int(ConfigKey.decisionCacheSize, default: 10_000, range: 0...10_000_000)
        self.bodyTimeout = .seconds(try reader.int(ConfigKey.bodyTimeout, default: 60, range: 1...3600))
        self.idleTimeout = .seconds(try reader.int(ConfigKey.gatewayIdleTimeout, default: 30, range: 1...3600))
        self.headerTimeout = .seconds(try reader.int(ConfigKey.gatewayHeaderTimeout, default: 10, range: 1...3600))
        self.maxConnections = try reader.int(
            ConfigKey.gatewayMaxConnections, default: ConnectionLimits.defaultMaxConnections(), range: 1...1_000_000)
        let dataDir = reader.string(ConfigKey.dataDir, default: ".streamhub/data")
        self.docsDirectory = reader.string(ConfigKey.docsDir, default: (dataDir as NSString).appendingPathComponent("swagger-ui"))
    }
}

extension GatewayConfiguration {
    /// Where a catalog route's owning service listens (the gateway's own routes: media's, unused).
    func baseURL(of service: ServiceName) -> String {
        switch service {
        case .identity: self.identityURL
        case .authz: self.authzURL
        case .media, .gateway: self.mediaURL
        }
    }
}
