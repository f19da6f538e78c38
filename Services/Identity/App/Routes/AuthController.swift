import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceKit
import ServiceStorage
import Shared

/// `/api/v1/auth/*`: sign-up, login, the signed-in user, logout; and the gateway's
/// `POST /internal/v1/sessions/state`, which tells it whose sessions have ended.
public struct AuthController<Context: ServiceRequestContextProtocol>: Sendable {
    let accounts: any AccountRepository
    let passwords: PasswordHasher
    let sessions: SessionTokens
    let authz: InternalClient
    let authzURL: String
    let intents: RoleIntents
    let defaultQuotas: TenantQuotas
    let secondFactor: SecondFactor
    let links: any SignInLinkRepository
    let limits: MailLimits
    let publicURL: String
    let breakGlass: BreakGlass?
    let storedBreakGlass: BreakGlassStore?
    let gate: DatabaseGate
    let invitations: Invitations?
    /// What a user who has not proved their address may do (`STREAMHUB_EMAIL_VERIFICATION`).
    let verification: EmailVerification
    let timeSource: any TimeSource

    public init(
        accounts: any AccountRepository, passwords: PasswordHasher, sessions: SessionTokens, authz: InternalClient, authzURL: String,
        intents: RoleIntents, defaultQuotas: TenantQuotas, secondFactor: SecondFactor, links: any SignInLinkRepository, limits: MailLimits, publicURL: String,
        breakGlass: BreakGlass? = nil, storedBreakGlass: BreakGlassStore? = nil, gate: DatabaseGate = DatabaseGate(open: true),
        invitations: Invitations? = nil, verification: EmailVerification = .optional, timeSource: any TimeSource
    ) {
        self.invitations = invitations
        self.verification = verification
        self.breakGlass = breakGlass
        self.storedBreakGlass = storedBreakGlass
        self.gate = gate
        self.secondFactor = secondFactor
        self.links = links
        self.limits = limits
        self.publicURL = publicURL
        self.accounts = accounts
        self.passwords = passwords
        self.sessions = sessions
        self.authz = authz
        self.authzURL = authzURL
        self.intents = intents
        self.defaultQuotas = defaultQuotas
        self.timeSource = timeSource
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("auth/signup", use: self.signup)
        group.post("auth/login", use: self.login)
        group.get("auth/me", use: self.me)
        group.post("auth/logout", use: self.logout)
        group.post("auth/magic-link", use: self.magicLink)
        group.post("auth/magic/verify", use: self.magicVerify)
        group.post("auth/reset-request", use: self.resetRequest)
        group.post("auth/reset", use: self.reset)
        group.post("auth/verify", use: self.verify)
        group.post("auth/verify-request", use: self.verifyRequest)
        group.post("auth/switch-tenant", use: self.switchTenant)
        group.post("auth/password", use: self.changePassword)
        if self.invitations != nil {
            group.post("auth/invitations/accept", use: self.acceptInvitation)
            group.post("auth/invitations/signup", use: self.invitationSignup)
        }
    }

    /// A new session acting in another tenant the user belongs to (404 otherwise).
    @Sendable func switchTenant(_ request: Request, context: Context) async throws -> Response {
        let user = try await self.signedInUser(context)
        let body = try await request.decodeJSON(SwitchTenantRequest.self, limit: Self.bodyLimit)
        let wanted = try Identifier.validate(body.tenantId, field: "tenantId")
        guard try await self.accounts.tenants(of: user.id).contains(where: { $0.id == wanted }) else {
            throw ServiceError.notFound("No such tenant")
        }
        return try self.session(for: user, tenantId: wanted, now: self.timeSource.now(), status: .ok)
    }

    /// Changes the password with the current one; every earlier session ends, and the answer is a
    /// fresh session so the dashboard stays signed in.
    @Sendable func changePassword(_ request: Request, context: Context) async throws -> Response {
        let user = try await self.signedInUser(context)
        let body = try await request.decodeJSON(PasswordChangeRequest.self, limit: Self.bodyLimit)
        try PasswordHasher.validate(body.newPassword, field: "newPassword")
        guard body.currentPassword.utf8.count <= PasswordHasher.maximumBytes,
            try await self.passwords.verify(body.currentPassword, hash: user.passwordHash)
        else { throw ServiceError(.forbidden, message: "currentPassword is wrong") }
        let now = self.timeSource.now()
        let notBefore = Int64(now.timeIntervalSince1970) + 1
        try await self.accounts.setPassword(userId: user.id, hash: try await self.passwords.hash(body.newPassword), sessionsNotBefore: notBefore)
        context.logger.notice("password changed", metadata: ["user": "\(user.id)"])
        var changed = user
        changed.sessionsNotBefore = notBefore
        return try self.session(for: changed, tenantId: context.principal.tenantId, now: now, status: .ok)
    }

    public func addInternalRoutes(to group: RouterGroup<Context>) {
        group.post("sessions/state", use: self.sessionState)
    }

    static var bodyLimit: Int { 16 * 1024 }

    /// Every wrong email or password gets this one answer.
    static var invalidCredentials: ServiceError { ServiceError(.unauthorized, message: "Invalid email or password") }

    @Sendable func signup(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(SignupRequest.self, limit: Self.bodyLimit)
        let email = try EmailAddress.normalize(body.email)
        try PasswordHasher.validate(body.password)
        let name = try body.name.map { try Identifier.validate($0, field: "name") }
        if let name, name.count > 100 { throw ServiceError.badRequest("name must be at most 100 characters") }
        let now = self.timeSource.now()
        // Sign-ups are limited per client address and per email (every attempt counts), before
        // any hashing: a script cannot mint tenants by the dozen or probe addresses quickly.
        let ip = context.forwardedClientIP ?? context.clientIP ?? "unknown"
        let limits = self.secondFactor.limits
        var counted: [(AttemptSubject, FailureLimit)] = []
        if let perIP = limits.signupPerIP { counted.append((.signupAddress(ip), perIP)) }
        if let perEmail = limits.signupPerEmail { counted.append((.signupEmail(email), perEmail)) }
        if case .refused(let retryAfter) = try await self.secondFactor.attempts.admit(counted, at: Timestamp.millis(now)) {
            context.logger.notice("sign-up over the limit", metadata: ["ip": "\(ip)"])
            throw ServiceError(
                .tooManyRequests, message: "Too many sign-ups; try again in \(retryAfter)s", retryAfterSeconds: retryAfter,
                headers: [.retryAfter: String(retryAfter)])
        }
        let user = UserRecord(
            id: UUID().uuidString.lowercased(), email: email, name: name, passwordHash: try await self.passwords.hash(body.password),
            superadmin: false, disabledAt: nil, sessionsNotBefore: 0, createdAt: Timestamp.millis(now))
        let tenant = TenantRecord(
            id: UUID().uuidString.lowercased(), name: name ?? email, ownerId: user.id, quotas: self.defaultQuotas, createdAt: Timestamp.millis(now))
        let (intents, requestID) = (self.intents, context.requestID)
        // The owner role is granted inside the transaction that stores the user, and its intent,
        // recorded first, is taken back in that same transaction: if anything fails — authz, the
        // commit, the process — the intent is left and undoes the grant (at once, or later).
        let intent = try await intents.record(userId: user.id, role: "owner", tenantId: tenant.id)
        do {
            try await self.accounts.create(user: user, tenant: tenant, clearing: intent) {
                try await intents.grant(userId: user.id, role: "owner", tenantId: tenant.id, requestID: requestID)
            }
        } catch let error as StorageError where error.isConflict {
            // The email is taken: refused before anything was granted.
            try? await intents.store.clear(id: intent)
            guard self.verification == .required else { throw error.serviceError }
            // The same answer as for a new address; the address's owner is told by mail.
            await self.mailVerification(to: email, user: nil, ip: ip, now: now, logger: context.logger)
            return try Self.signupAnswer()
        } catch {
            await intents.settleAfterFailure(id: intent, userId: user.id, role: "owner", tenantId: tenant.id, requestID: requestID, logger: context.logger)
            if let error = error as? StorageError { throw error.serviceError }
            throw error
        }
        context.logger.info("signed up", metadata: ["user": "\(user.id)", "tenant": "\(tenant.id)"])
        await self.mailVerification(to: email, user: user, ip: ip, now: now, logger: context.logger)
        if self.verification == .required { return try Self.signupAnswer() }
        return try self.session(for: user, tenantId: tenant.id, now: now, status: .created)
    }

    @Sendable func login(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(LoginRequest.self, limit: Self.bodyLimit)
        if let breakGlass, breakGlass.names(body.email) {
            // Never touches the database: works while it is down. Never locked out, no TOTP, but
            // slowed per address after failures; always logged.
            let address = context.forwardedClientIP ?? context.clientIP ?? "unknown"
            await breakGlass.pacer.waitForTurn(address)
            guard breakGlass.accepts(password: body.password) else {
                context.logger.notice("break-glass login refused", metadata: ["ip": "\(address)"])
                throw Self.invalidCredentials
            }
            breakGlass.pacer.succeeded(address)
            context.logger.notice("break-glass login", metadata: ["ip": "\(address)"])
            let claims = self.sessions.claims(
                userId: BreakGlass.userId, tenantId: nil, superadmin: true, now: self.timeSource.now(),
                notBefore: await breakGlass.ended.endedBefore(database: self.breakGlassStore), lifetime: breakGlass.sessionLifetime,
                breakGlassVersion: breakGlass.version)
            var response = try JSONResponse.make(
                SessionResponse(
                    token: self.sessions.sign(claims), expiresAt: Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(claims.exp))),
                    user: breakGlass.summary, tenantId: nil))
            response.headers[.cacheControl] = "no-store"
            return response
        }
        try self.gate.check()
        let email = try EmailAddress.normalize(body.email)
        guard body.password.utf8.count <= PasswordHasher.maximumBytes else { throw Self.invalidCredentials }
        let user = try await self.accounts.user(email: email)
        // The opt-in throttle counts failures per client address and per email named (known or
        // not, so it tells nothing); without it the list is empty and nothing is stored.
        let ip = context.forwardedClientIP ?? context.clientIP ?? "unknown"
        let limits = self.secondFactor.limits
        var throttled: [(AttemptSubject, FailureLimit)] = []
        if let perIP = limits.loginPerIP { throttled.append((.loginAddress(ip), perIP)) }
        if let perEmail = limits.loginPerEmail { throttled.append((.loginAccount(email), perEmail)) }
        let passwordMatches = try await self.secondFactor.guarded(throttled) {
            // Unknown emails are checked against a decoy hash: the same answer in the same time.
            try await self.passwords.verify(body.password, hash: user?.passwordHash) && user != nil
        } refused: { retryAfter in
            context.logger.notice("login throttled", metadata: ["ip": "\(ip)"])
            throw ServiceError(
                .tooManyRequests, message: "Too many failed sign-ins; try again in \(retryAfter)s", retryAfterSeconds: retryAfter,
                headers: [.retryAfter: String(retryAfter)])
        }
        guard passwordMatches, let user else { throw Self.invalidCredentials }
        guard user.disabledAt == nil else { throw ServiceError(.unauthorized, message: "This account is disabled") }
        if self.verification == .required, user.verifiedAt == nil { throw Self.unverified }
        // With TOTP on, every human sign-in needs a current code (or a recovery code), spent here.
        if try await self.secondFactor.isRequired(userId: user.id) {
            try await self.secondFactor.verifySignIn(userId: user.id, code: body.totpCode)
        }
        let tenants = try await self.accounts.tenants(of: user.id)
        let tenantId: String?
        if let wanted = body.tenantId {
            guard tenants.contains(where: { $0.id == wanted }) else { throw ServiceError.notFound("No such tenant") }
            tenantId = wanted
        } else {
            tenantId = (tenants.first { $0.ownerId == user.id } ?? tenants.first)?.id
        }
        return try self.session(for: user, tenantId: tenantId, now: self.timeSource.now(), status: .ok)
    }

    func isBreakGlass(_ context: Context) -> Bool {
        context.principal.subject == "user:\(BreakGlass.userId)" && context.principal.superadmin
    }

    /// Where the break-glass logout is stored, while the database is open.
    var breakGlassStore: BreakGlassStore? {
        self.gate.isOpen ? self.storedBreakGlass : nil
    }

    /// `{token, expiresAt, user, tenantId}`, never cached.
    func session(for user: UserRecord, tenantId: String?, now: Date, status: HTTPResponse.Status) throws -> Response {
        let claims = self.sessions.claims(userId: user.id, tenantId: tenantId, superadmin: user.superadmin, now: now, notBefore: user.sessionsNotBefore)
        let answer = SessionResponse(
            token: self.sessions.sign(claims), expiresAt: Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(claims.exp))),
            user: user.summary, tenantId: tenantId)
        var response = try JSONResponse.make(answer, status: status)
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// The signed-in dashboard user; an API token has no user (403).
    func signedInUser(_ context: Context) async throws -> UserRecord {
        let caller = try context.caller()
        guard caller.kind == .user, caller.subject.hasPrefix("user:") else {
            throw ServiceError(.forbidden, message: "Only a dashboard session has a user")
        }
        guard let user = try await self.accounts.user(id: String(caller.subject.dropFirst("user:".count))) else {
            throw ServiceError.unauthorized
        }
        return user
    }

    @Sendable func me(_ request: Request, context: Context) async throws -> Response {
        if let breakGlass, self.isBreakGlass(context) {
            return try JSONResponse.make(MeResponse(user: breakGlass.summary, tenantId: nil, tenants: []))
        }
        try self.gate.check()
        let user = try await self.signedInUser(context)
        let tenants = try await self.accounts.tenants(of: user.id)
        let roles: SubjectRoles = try await self.authz.call(
            service: "authz", baseURL: self.authzURL, path: "/internal/v1/roles/of",
            body: SubjectRolesRequest(subject: "user:\(user.id)", tenants: tenants.map(\.id)), requestID: context.requestID)
        let answer = MeResponse(
            user: user.summary, tenantId: context.principal.tenantId,
            tenants: tenants.map { TenantMembership(tenant: $0.summary, roles: roles.roles[$0.id] ?? []) })
        var response = try JSONResponse.make(answer)
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// Ends every session of the user issued until now (the gateway stops accepting them within 5 s).
    @Sendable func logout(_ request: Request, context: Context) async throws -> Response {
        let notBefore = Int64(self.timeSource.now().timeIntervalSince1970) + 1
        if let breakGlass, self.isBreakGlass(context) {
            // Ends every break-glass session: at once on this replica, on the others once the
            // database has it (now, or when it is back).
            let stored = await breakGlass.ended.end(at: notBefore, database: self.breakGlassStore)
            context.logger.notice("break-glass sessions ended", metadata: ["stored": "\(stored)"])
            return try JSONResponse.make(LogoutResult(sessionsEndedAt: Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(notBefore)))))
        }
        try self.gate.check()
        let user = try await self.signedInUser(context)
        try await self.accounts.endSessions(userId: user.id, notBefore: notBefore)
        context.logger.info("signed out", metadata: ["user": "\(user.id)"])
        return try JSONResponse.make(LogoutResult(sessionsEndedAt: Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(notBefore)))))
    }

    @Sendable func sessionState(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(SessionStateRequest.self, limit: Self.bodyLimit)
        // Break-glass sessions have no stored user: answered without the database when it is down.
        if body.userId == BreakGlass.userId {
            guard let breakGlass else { return try JSONResponse.make(SessionState(exists: true, disabled: true, notBefore: .max)) }
            let endedBefore = await breakGlass.ended.endedBefore(database: self.breakGlassStore)
            return try JSONResponse.make(breakGlass.sessionState(version: body.breakGlassVersion, endedBefore: endedBefore))
        }
        try self.gate.check()
        guard let user = try await self.accounts.user(id: body.userId) else {
            return try JSONResponse.make(SessionState(exists: false, disabled: false, notBefore: 0))
        }
        return try JSONResponse.make(SessionState(exists: true, disabled: user.disabledAt != nil, notBefore: user.sessionsNotBefore))
    }
}
