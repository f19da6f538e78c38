/// Every environment variable the services read, by name. The README documents each one.
public enum ConfigKey {
    public static let host = "HOST"
    public static let port = "PORT"
    public static let logLevel = "LOG_LEVEL"
    public static let internalToken = "STREAMHUB_INTERNAL_TOKEN"
    public static let dataDir = "STREAMHUB_DATA_DIR"
    public static let databaseURL = "DATABASE_URL"
    public static let databaseConnectTimeout = "DATABASE_CONNECT_TIMEOUT_S"
    public static let jwtSecret = "STREAMHUB_JWT_SECRET"
    public static let metricsToken = "METRICS_TOKEN"
    public static let authzEnforce = "STREAMHUB_AUTHZ_ENFORCE"
    public static let authzModel = "STREAMHUB_AUTHZ_MODEL"
    public static let clusterToken = "STREAMHUB_CLUSTER_TOKEN"
    public static let identityURL = "IDENTITY_URL"
    public static let authzURL = "AUTHZ_URL"
    public static let mediaURL = "MEDIA_URL"
    public static let upstreamTimeoutMs = "GATEWAY_UPSTREAM_TIMEOUT_MS"
    public static let maxBodyBytes = "GATEWAY_MAX_BODY_BYTES"
    public static let breakerThreshold = "GATEWAY_BREAKER_THRESHOLD"
    public static let decisionCacheSize = "GATEWAY_DECISION_CACHE_SIZE"
    public static let docsDir = "GATEWAY_DOCS_DIR"
    public static let bodyTimeout = "GATEWAY_BODY_TIMEOUT_S"
    public static let mediaRoot = "STREAMHUB_MEDIA_ROOT"
    public static let publicURL = "STREAMHUB_PUBLIC_URL"
    public static let corsOrigins = "STREAMHUB_CORS_ORIGINS"
    public static let trustedProxies = "STREAMHUB_TRUSTED_PROXIES"
    public static let defaultMaxApps = "STREAMHUB_DEFAULT_MAX_APPS"
    public static let defaultMaxConcurrentStreams = "STREAMHUB_DEFAULT_MAX_CONCURRENT_STREAMS"
    public static let defaultMaxMembers = "STREAMHUB_DEFAULT_MAX_MEMBERS"
    public static let defaultMaxTokens = "STREAMHUB_DEFAULT_MAX_TOKENS"
    public static let mailLimitPerEmail = "STREAMHUB_MAIL_LIMIT_PER_EMAIL"
    public static let mailLimitPerIP = "STREAMHUB_MAIL_LIMIT_PER_IP"
    public static let mailLimitWindow = "STREAMHUB_MAIL_LIMIT_WINDOW_S"
    public static let magicLinkCooldown = "STREAMHUB_MAGIC_LINK_COOLDOWN_S"
    public static let mailOutbox = "STREAMHUB_MAIL_OUTBOX"
    public static let mailFrom = "STREAMHUB_MAIL_FROM"
    public static let smtpHost = "SMTP_HOST"
    public static let smtpPort = "SMTP_PORT"
    public static let smtpSecurity = "SMTP_SECURITY"
    public static let smtpUsername = "SMTP_USERNAME"
    public static let smtpPassword = "SMTP_PASSWORD"
    public static let smtpCAFile = "SMTP_CA_FILE"
    public static let livekitURL = "LIVEKIT_URL"
    public static let livekitAPIKey = "LIVEKIT_API_KEY"
    public static let livekitAPISecret = "LIVEKIT_API_SECRET"
    public static let playTokenTTL = "STREAMHUB_PLAY_TOKEN_TTL_S"
    public static let nodeTTL = "STREAMHUB_NODE_TTL_S"
    public static let adminUser = "ADMIN_USER"
    public static let adminPass = "ADMIN_PASS"
}

/// Default loopback ports used by `streamhub up` and the compose file.
public enum DefaultPort {
    public static let gateway = 8080
    public static let identity = 8081
    public static let authz = 8082
    public static let media = 8083
}
