import Foundation
import ServiceKit
import ServiceStorage
import Shared

/// Everything identity reads at start.
///
/// Keys: `HOST`, `PORT` (8081), `STREAMHUB_INTERNAL_TOKEN`, `STREAMHUB_JWT_SECRET`, `METRICS_TOKEN`,
/// `DATABASE_URL` or `STREAMHUB_DATA_DIR` (SQLite file `identity.sqlite`), `LOG_LEVEL`,
/// `STREAMHUB_PUBLIC_URL` (sessions' `iss`), `AUTHZ_URL`, `MEDIA_URL`, `STREAMHUB_DEFAULT_MAX_APPS` (10),
/// `STREAMHUB_DEFAULT_MAX_CONCURRENT_STREAMS` (5), `STREAMHUB_DEFAULT_MAX_MEMBERS` (25),
/// `STREAMHUB_DEFAULT_MAX_TOKENS` (50), `STREAMHUB_MAIL_LIMIT_PER_EMAIL` (3), `STREAMHUB_MAIL_LIMIT_PER_IP`
/// (10), `STREAMHUB_MAIL_LIMIT_WINDOW_S` (900), `STREAMHUB_MAGIC_LINK_COOLDOWN_S` (60),
/// `STREAMHUB_MAIL_OUTBOX` (`<data dir>/outbox`), `STREAMHUB_MAIL_FROM`, `SMTP_HOST`, `SMTP_PORT`,
/// `SMTP_SECURITY`, `SMTP_USERNAME`, `SMTP_PASSWORD`, `SMTP_CA_FILE`, `ADMIN_USER`, `ADMIN_PASS`,
/// `ADMIN_SESSION_TTL_S` (900), `STREAMHUB_SECOND_FACTOR_MAX_FAILURES` (5),
/// `STREAMHUB_SECOND_FACTOR_WINDOW_S` (900), `STREAMHUB_LOGIN_THROTTLE_PER_IP` (0: off),
/// `STREAMHUB_LOGIN_THROTTLE_PER_EMAIL` (0: off), `STREAMHUB_LOGIN_THROTTLE_WINDOW_S` (900),
/// `STREAMHUB_SIGNUP_LIMIT_PER_IP` (10), `STREAMHUB_SIGNUP_LIMIT_PER_EMAIL` (3), `STREAMHUB_SIGNUP_LIMIT_WINDOW_S` (3600),
/// `STREAMHUB_EMAIL_VERIFICATION` (`optional`).
public struct IdentityConfiguration: Sendable {
    public var common: CommonConfiguration
    public var storage: StorageLocation
    /// Signs dashboard sessions; the gateway verifies them with the same secret.
    public var jwtSecret: String
    /// The `iss` of every session minted here.
    public var publicURL: String
    /// Where sign-up assigns the owner role and `/auth/me` reads roles (one URL, replicas, or a
    /// name resolving to several: ``UpstreamTargets``).
    public var authz: UpstreamTargets
    /// Where app tokens' apps are looked up.
    public var media: UpstreamTargets
    public var authzURL: String { self.authz.configured }
    public var mediaURL: String { self.media.configured }
    /// The shared limiter of the mail-sending routes and the magic-link cooldown.
    public var mailLimits: MailLimits
    /// Where mail goes without SMTP: `.eml` files (`streamhub outbox` prints them).
    public var mailOutbox: String
    public var mailFrom: String
    /// `SMTP_HOST` and friends: mail goes out over SMTP; nil → the outbox directory.
    public var smtp: SMTPSettings?
    /// `ADMIN_USER` / `ADMIN_PASS`: the break-glass superadmin; nil when unset.
    public var breakGlass: BreakGlass?
    /// The quotas a new tenant starts with.
    public var defaultQuotas: TenantQuotas
    /// Second-factor guess limits and the opt-in login throttle.
    public var signInLimits: SignInLimits
    /// What a user who has not verified their address may do.
    public var emailVerification: EmailVerification

    public init(reader: SettingsReader) throws {
        self.common = try CommonConfiguration(reader: reader, defaultPort: DefaultPort.identity)
        self.storage = try StorageLocation(reader: reader, name: "identity")
        self.jwtSecret = try reader.requiredSecret(ConfigKey.jwtSecret)
        self.publicURL = try reader.url(ConfigKey.publicURL, default: "http://127.0.0.1:\(DefaultPort.gateway)")
        self.authz = try reader.upstream(ConfigKey.authzURL, default: "http://127.0.0.1:\(DefaultPort.authz)")
        self.media = try reader.upstream(ConfigKey.mediaURL, default: "http://127.0.0.1:\(DefaultPort.media)")
        switch (reader.string(ConfigKey.adminUser), reader.string(ConfigKey.adminPass, isSecret: true)) {
        case (nil, nil):
            self.breakGlass = nil
        case (let user?, let password?):
            guard password.count >= 12 else {
                throw ConfigurationError("\(ConfigKey.adminPass) must be at least 12 characters long (got \(password.count))")
            }
            if let problem = Identifier.problem(user) { throw ConfigurationError("\(ConfigKey.adminUser) \(problem)") }
            self.breakGlass = BreakGlass(
                user: user, password: password, signingSecret: self.jwtSecret,
                sessionLifetime: Int64(try reader.int(ConfigKey.adminSessionTTL, default: 900, range: 60...43_200)))
        default:
            throw ConfigurationError("\(ConfigKey.adminUser) and \(ConfigKey.adminPass) are set together or not at all")
        }
        self.mailLimits = MailLimits(
            perEmail: try reader.int(ConfigKey.mailLimitPerEmail, default: 3, range: 1...10_000),
            perIP: try reader.int(ConfigKey.mailLimitPerIP, default: 10, range: 1...1_000_000),
            windowSeconds: try reader.int(ConfigKey.mailLimitWindow, default: 900, range: 1...86_400),
            cooldownSeconds: try reader.int(ConfigKey.magicLinkCooldown, default: 60, range: 0...3600))
        let dataDir = reader.string(ConfigKey.dataDir, default: ".streamhub/data")
        self.mailOutbox = reader.string(ConfigKey.mailOutbox, default: (dataDir as NSString).appendingPathComponent("outbox"))
        self.mailFrom = reader.string(ConfigKey.mailFrom, default: "StreamHub <no-reply@streamhub.invalid>")
        self.smtp = try Self.smtpSettings(reader)
        self.defaultQuotas = TenantQuotas(
            maxApps: try reader.int(ConfigKey.defaultMaxApps, default: 10, range: 0...1_000_000),
            maxConcurrentStreams: try reader.int(ConfigKey.defaultMaxConcurrentStreams, default: 5, range: 0...1_000_000),
            maxMembers: try reader.int(ConfigKey.defaultMaxMembers, default: 25, range: 1...1_000_000),
            maxTokens: try reader.int(ConfigKey.defaultMaxTokens, default: 50, range: 0...1_000_000))
        let loginWindow = try reader.int(ConfigKey.loginThrottleWindow, default: 900, range: 1...86_400)
        let perIP = try reader.int(ConfigKey.loginThrottlePerIP, default: 0, range: 0...1_000_000)
        let perEmail = try reader.int(ConfigKey.loginThrottlePerEmail, default: 0, range: 0...1_000_000)
        let signupWindow = try reader.int(ConfigKey.signupLimitWindow, default: 3600, range: 1...86_400)
        let signupPerIP = try reader.int(ConfigKey.signupLimitPerIP, default: 10, range: 0...1_000_000)
        let signupPerEmail = try reader.int(ConfigKey.signupLimitPerEmail, default: 3, range: 0...1_000_000)
        let verification = reader.string(ConfigKey.emailVerification, default: EmailVerification.optional.rawValue).lowercased()
        guard let emailVerification = EmailVerification(rawValue: verification) else {
            throw ConfigurationError(
                "\(ConfigKey.emailVerification) must be one of \(EmailVerification.allCases.map(\.rawValue).joined(separator: ", ")) (got \(verification.debugDescription))")
        }
        self.emailVerification = emailVerification
        self.signInLimits = SignInLimits(
            secondFactor: FailureLimit(
                maxFailures: try reader.int(ConfigKey.secondFactorMaxFailures, default: 5, range: 1...1000),
                windowSeconds: try reader.int(ConfigKey.secondFactorWindow, default: 900, range: 1...86_400)),
            loginPerIP: perIP == 0 ? nil : FailureLimit(maxFailures: perIP, windowSeconds: loginWindow),
            loginPerEmail: perEmail == 0 ? nil : FailureLimit(maxFailures: perEmail, windowSeconds: loginWindow),
            signupPerIP: signupPerIP == 0 ? nil : FailureLimit(maxFailures: signupPerIP, windowSeconds: signupWindow),
            signupPerEmail: signupPerEmail == 0 ? nil : FailureLimit(maxFailures: signupPerEmail, windowSeconds: signupWindow))
    }

    static func smtpSettings(_ reader: SettingsReader) throws -> SMTPSettings? {
        let others = [ConfigKey.smtpPort, ConfigKey.smtpSecurity, ConfigKey.smtpUsername, ConfigKey.smtpCAFile]
        guard let host = reader.string(ConfigKey.smtpHost), !host.isEmpty else {
            if let stray = others.first(where: { reader.string($0) != nil }) {
                throw ConfigurationError("\(stray) is set but \(ConfigKey.smtpHost) is not: set \(ConfigKey.smtpHost) to send mail over SMTP")
            }
            return nil
        }
        let securityName = reader.string(ConfigKey.smtpSecurity, default: "starttls").lowercased()
        guard let security = SMTPSettings.Security(rawValue: securityName) else {
            throw ConfigurationError(
                "\(ConfigKey.smtpSecurity) must be one of \(SMTPSettings.Security.allCases.map(\.rawValue).joined(separator: ", ")) (got \(securityName.debugDescription))")
        }
        let username = reader.string(ConfigKey.smtpUsername).flatMap { $0.isEmpty ? nil : $0 }
        let password = reader.string(ConfigKey.smtpPassword, isSecret: true)
        if (username == nil) != (password == nil) {
            throw ConfigurationError("\(ConfigKey.smtpUsername) and \(ConfigKey.smtpPassword) are set together or not at all")
        }
        for value in [host, username ?? "", password ?? ""] where value.contains(where: { $0 == "\r" || $0 == "\n" }) {
            throw ConfigurationError("SMTP settings must not contain line breaks")
        }
        let caFile = reader.string(ConfigKey.smtpCAFile).flatMap { $0.isEmpty ? nil : $0 }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw ConfigurationError("\(ConfigKey.smtpCAFile) \(caFile) is not a readable file")
        }
        return SMTPSettings(
            host: host, port: try reader.int(ConfigKey.smtpPort, default: security.defaultPort, range: 1...65_535), security: security,
            username: username, password: password, caFile: caFile)
    }
}
