import Foundation
import Hummingbird
import Logging
import ServiceKit
import ServiceStorage
import ServiceLifecycle
import Shared

/// Identity's boundaries; real (SQL) ones unless a test injects others.
public struct IdentityDependencies: Sendable {
    public var tokens: (any ApiTokenRepository)?
    public var accounts: (any AccountRepository)?
    public var totp: (any TOTPRepository)?
    public var links: (any SignInLinkRepository)?
    public var attempts: (any AttemptRepository)?
    public var roleIntents: (any RoleIntentRepository)?
    /// Pending invitations (by default in the accounts' database).
    public var invitations: (any InvitationRepository)?
    public var breakGlassStore: BreakGlassStore?
    /// How identity reaches authz (a fake in tests).
    public var transport: (any UpstreamClient)?
    public var metrics: ServiceMetrics?
    public var timeSource: any TimeSource

    public init(
        tokens: (any ApiTokenRepository)? = nil, accounts: (any AccountRepository)? = nil, totp: (any TOTPRepository)? = nil,
        links: (any SignInLinkRepository)? = nil, attempts: (any AttemptRepository)? = nil, roleIntents: (any RoleIntentRepository)? = nil,
        invitations: (any InvitationRepository)? = nil, breakGlassStore: BreakGlassStore? = nil,
        transport: (any UpstreamClient)? = nil,
        metrics: ServiceMetrics? = nil, timeSource: any TimeSource = SystemTimeSource()
    ) {
        self.tokens = tokens
        self.accounts = accounts
        self.totp = totp
        self.links = links
        self.attempts = attempts
        self.roleIntents = roleIntents
        self.invitations = invitations
        self.breakGlassStore = breakGlassStore
        self.transport = transport
        self.metrics = metrics
        self.timeSource = timeSource
    }
}

public func buildIdentity(reader: SettingsReader, dependencies: IdentityDependencies = .init(), logger: Logger? = nil) async throws
    -> some ApplicationProtocol
{
    try await buildIdentity(configuration: IdentityConfiguration(reader: reader), dependencies: dependencies, logger: logger)
}

/// Builds identity: opens its store (unless injected), migrates before the server starts.
public func buildIdentity(
    configuration: IdentityConfiguration, dependencies: IdentityDependencies = .init(), logger: Logger? = nil
) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "streamhub-identity")
    logger.logLevel = configuration.common.logLevel
    let metrics = dependencies.metrics ?? ServiceMetrics(service: "identity")
    var services: [any Service] = []
    var migrate: (@Sendable () async throws -> Void)?
    var readiness: [ReadinessCheck] = []
    let tokens: any ApiTokenRepository
    var accounts = dependencies.accounts
    var totp = dependencies.totp
    var links = dependencies.links
    var attempts = dependencies.attempts
    var roleIntents = dependencies.roleIntents
    var breakGlassStore = dependencies.breakGlassStore
    var idempotency: (any IdempotencyStore)?
    if let injected = dependencies.tokens {
        tokens = injected
    } else {
        let (database, service) = try await DatabaseFactory.open(configuration.storage, logger: logger)
        services.append(service)
        tokens = SQLApiTokenRepository(database: database)
        accounts = accounts ?? SQLAccountRepository(database: database)
        totp = totp ?? SQLTOTPRepository(database: database)
        links = links ?? SQLSignInLinkRepository(database: database)
        attempts = attempts ?? SQLAttemptRepository(database: database)
        roleIntents = roleIntents ?? SQLRoleIntentRepository(database: database)
        breakGlassStore = breakGlassStore ?? BreakGlassStore(database: database)
        idempotency = SQLIdempotencyStore(database: database, prefix: "identity")
        migrate = { [logger] in try await IdentityMigrations.migrator.migrate(database, logger: logger) }
        readiness.append(IdentityMigrations.migrator.readiness(database))
    }
    // With break-glass configured identity starts without its database (migrating in the
    // background, other routes 503 until then); without it, start-up waits for the database.
    let gate = DatabaseGate(open: migrate == nil || configuration.breakGlass == nil)
    if let run = migrate, configuration.breakGlass != nil {
        services.append(BackgroundMigration(migrate: run, gate: gate, logger: logger))
        migrate = nil
    }
    let gateMiddleware = DatabaseGateMiddleware<ServiceRequestContext>(
        gate: gate, exempt: ["/api/v1/auth/login", "/api/v1/auth/me", "/api/v1/auth/logout", "/internal/v1/sessions/state"])
    let startedAt = Date()
    let router = Router(context: ServiceRequestContext.self)
    router.addServiceMiddleware(metrics: metrics)
    router.addHealthRoute(startedAt: startedAt)
    router.addReadinessRoute(readiness)
    router.addMetricsRoute(metrics: metrics, token: configuration.common.metricsToken)
    let internalRoutes = router.internalGroup(internalToken: configuration.common.internalToken).add(middleware: gateMiddleware)
    TokenResolveController(tokens: tokens, timeSource: dependencies.timeSource).addRoutes(to: internalRoutes)
    // Accounts need all five of their stores; a test that injects only the token store gets the
    // token routes alone.
    if let accounts, let totp, let links, let attempts, let roleIntents {
        let transport: any UpstreamClient
        if let injected = dependencies.transport {
            transport = injected
        } else {
            let client = HTTPUpstreamClient()
            services.append(client)
            let replicated = UpstreamStack.make(
                transport: client, upstreams: [("authz", configuration.authz), ("media", configuration.media)], logger: logger)
            services.append(replicated)
            transport = replicated
        }
        let client = InternalClient(transport: transport, internalToken: configuration.common.internalToken, timeout: .seconds(10))
        var forwarded = router.forwardedGroup(internalToken: configuration.common.internalToken).add(middleware: gateMiddleware)
        if let idempotency {
            forwarded = forwarded.add(middleware: IdempotencyMiddleware<ServiceRequestContext>(store: idempotency, isAvailable: { gate.isOpen }))
        }
        let passwords = PasswordHasher()
        let invitationStore: any InvitationRepository
        if let injected = dependencies.invitations {
            invitationStore = injected
        } else if let sql = accounts as? SQLAccountRepository {
            invitationStore = SQLInvitationRepository(database: sql.database)
        } else {
            throw StorageError.invalid("an injected account store needs an injected invitation store")
        }
        let invitations = Invitations(store: invitationStore, links: links, limits: configuration.mailLimits, publicURL: configuration.publicURL)
        let intents = RoleIntents(store: roleIntents, authz: client, authzURL: configuration.authzURL, timeSource: dependencies.timeSource)
        services.append(RoleIntentSettler(intents: intents, logger: logger))
        let factor = SecondFactor(
            totp: totp, sealer: SecretSealer(secret: configuration.jwtSecret), timeSource: dependencies.timeSource, attempts: attempts,
            limits: configuration.signInLimits)
        let auth = AuthController<ServiceRequestContext>(
            accounts: accounts, passwords: passwords, sessions: SessionTokens(secret: configuration.jwtSecret, issuer: configuration.publicURL),
            authz: client, authzURL: configuration.authzURL, intents: intents, defaultQuotas: configuration.defaultQuotas, secondFactor: factor, links: links,
            limits: configuration.mailLimits, publicURL: configuration.publicURL, breakGlass: configuration.breakGlass, storedBreakGlass: breakGlassStore, gate: gate,
            invitations: invitations, verification: configuration.emailVerification, timeSource: dependencies.timeSource)
        let mail: any MailTransport = try configuration.smtp.map { try SMTPTransport(settings: $0) } ?? OutboxDirectory(path: configuration.mailOutbox)
        services.append(MailDispatcher(links: links, transport: mail, from: configuration.mailFrom, logger: logger))
        TOTPController<ServiceRequestContext>(accounts: accounts, factor: factor).addRoutes(to: forwarded)
        auth.addRoutes(to: forwarded)
        auth.addInternalRoutes(to: internalRoutes)
        TokensController<ServiceRequestContext>(
            tokens: tokens, accounts: accounts, media: client, mediaURL: configuration.mediaURL, defaultQuotas: configuration.defaultQuotas,
            intents: intents, timeSource: dependencies.timeSource
        ).addRoutes(to: forwarded)
        let tenants = TenantsController<ServiceRequestContext>(
            accounts: accounts, tokens: tokens, authz: client, authzURL: configuration.authzURL, invitations: invitations, intents: intents,
            timeSource: dependencies.timeSource)
        tenants.addRoutes(to: forwarded)
        tenants.addInternalRoutes(to: internalRoutes)
    }
    router.addRouteListing(internalToken: configuration.common.internalToken)
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.common.host, port: configuration.common.port), serverName: "streamhub-identity"),
        services: services,
        logger: logger
    )
    if let migrate {
        app.beforeServerStarts(perform: migrate)
    }
    return app
}
