import Crypto
import Foundation
import Hummingbird
import ServiceKit
import ServiceStorage
import Shared

/// The second factor: TOTP codes and single-use recovery codes, checked the same way at sign-in
/// and by the TOTP routes. A code's time step is recorded when it is accepted, so no code works twice.
public struct SecondFactor: Sendable {
    let totp: any TOTPRepository
    let sealer: SecretSealer
    let timeSource: any TimeSource
    let attempts: any AttemptRepository
    let limits: SignInLimits

    public init(
        totp: any TOTPRepository, sealer: SecretSealer, timeSource: any TimeSource, attempts: any AttemptRepository,
        limits: SignInLimits = SignInLimits()
    ) {
        self.totp = totp
        self.sealer = sealer
        self.timeSource = timeSource
        self.attempts = attempts
        self.limits = limits
    }

    static let recoveryCount = 10

    /// Ten codes like `k3j9d-q8w2m` (50 random bits each) and their hashes.
    static func newRecoveryCodes() -> (codes: [String], hashes: [String]) {
        let codes = (0..<Self.recoveryCount).map { _ -> String in
            let text = Base32.encode(TOTPAuthenticator.newSecret()).lowercased().prefix(10)
            return "\(text.prefix(5))-\(text.suffix(5))"
        }
        return (codes, codes.map(Self.recoveryHash))
    }

    static func recoveryHash(_ code: String) -> String {
        SecretDigest.sha256Hex(code.lowercased().filter { $0 != "-" && $0 != " " })
    }

    /// Whether sign-in needs a second factor for this user.
    func isRequired(userId: String) async throws -> Bool {
        try await self.totp.record(userId: userId)?.confirmedAt != nil
    }

    /// Spends a current TOTP code of a confirmed enrolment.
    func acceptCode(_ code: String, record: TOTPRecord) async throws -> Bool {
        let secret = try self.sealer.open(record.sealedSecret)
        guard let step = TOTPAuthenticator.matchingStep(secret: secret, code: code, now: self.timeSource.now()) else { return false }
        return try await self.totp.use(userId: record.userId, step: step)
    }

    /// At sign-in: a TOTP code, or a recovery code, spent on success. A missing code is the
    /// `totpRequired` answer and not counted; a wrong one counts against the account (and against
    /// `link`, the hash of the magic link it came with). Past the account's limit every code is
    /// refused (429) until the window moves on — the password is not touched; a link that reaches
    /// its limit is spent (401 invalid link).
    func verifySignIn(userId: String, code: String?, link: String? = nil) async throws {
        guard let code, !code.isEmpty else { throw Self.required }
        var subjects: [(AttemptSubject, FailureLimit)] = [(.secondFactor(userId: userId), self.limits.secondFactor)]
        if let link { subjects.append((.link(hash: link), self.limits.perLink)) }
        let accepted = try await self.guarded(subjects) {
            guard code.utf8.count <= 64, let record = try await self.totp.record(userId: userId), record.confirmedAt != nil else { return false }
            if try await self.acceptCode(code, record: record) { return true }
            return try await self.totp.useRecoveryCode(userId: userId, hash: Self.recoveryHash(code), at: Timestamp.millis(self.timeSource.now()))
        } refused: { retryAfter in
            if let link, try await self.attempts.failures(.link(hash: link), limit: self.limits.perLink, at: self.nowMillis) >= self.limits.perLink.maxFailures {
                throw LinkExhausted()
            }
            throw Self.tooManyFailures(retryAfter)
        }
        guard accepted else {
            if let link, try await self.attempts.failures(.link(hash: link), limit: self.limits.perLink, at: self.nowMillis) >= self.limits.perLink.maxFailures {
                throw LinkExhausted()
            }
            throw Self.required
        }
    }

    /// A current code of a signed-in user's confirmed enrolment (the TOTP routes), under the
    /// same per-account limit as sign-in.
    func verifyCurrentCode(_ code: String, record: TOTPRecord) async throws -> Bool {
        try await self.guarded([(.secondFactor(userId: record.userId), self.limits.secondFactor)]) {
            try await self.acceptCode(code, record: record)
        } refused: { retryAfter in
            throw Self.tooManyFailures(retryAfter)
        }
    }

    var nowMillis: Int64 { Timestamp.millis(self.timeSource.now()) }

    /// Runs `check` with a failure reserved against `subjects`; a success takes it back.
    func guarded(
        _ subjects: [(AttemptSubject, FailureLimit)], _ check: () async throws -> Bool, refused: (Int) async throws -> Never
    ) async throws -> Bool {
        switch try await self.attempts.admit(subjects, at: self.nowMillis) {
        case .refused(let retryAfter):
            try await refused(retryAfter)
        case .admitted(let reservation):
            let accepted = try await check()
            if accepted { try await self.attempts.forgive(reservation) }
            return accepted
        }
    }

    static func tooManyFailures(_ retryAfter: Int) -> ServiceError {
        ServiceError(
            .tooManyRequests, message: "Too many wrong codes; try again in \(retryAfter)s", retryAfterSeconds: retryAfter,
            headers: [.retryAfter: String(retryAfter)])
    }

    static var required: ServiceError {
        ServiceError(status: .unauthorized, body: ErrorBody(statusCode: 401, message: "A valid TOTP code is required", totpRequired: true))
    }
}

/// A magic link reached its limit of wrong codes: the caller spends it.
struct LinkExhausted: Error {}

/// `POST /api/v1/auth/totp/{enroll,confirm,disable,recovery-codes}` for the signed-in user.
public struct TOTPController<Context: ServiceRequestContextProtocol>: Sendable {
    let accounts: any AccountRepository
    let factor: SecondFactor

    public init(accounts: any AccountRepository, factor: SecondFactor) {
        self.accounts = accounts
        self.factor = factor
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("auth/totp/enroll", use: self.enroll)
        group.post("auth/totp/confirm", use: self.confirm)
        group.post("auth/totp/disable", use: self.disable)
        group.post("auth/totp/recovery-codes", use: self.regenerate)
    }

    func user(_ context: Context) async throws -> UserRecord {
        let caller = try context.caller()
        guard caller.kind == .user, caller.subject.hasPrefix("user:"),
            let user = try await self.accounts.user(id: String(caller.subject.dropFirst("user:".count)))
        else { throw ServiceError(.forbidden, message: "Only a dashboard session has a user") }
        return user
    }

    func code(_ request: Request) async throws -> String {
        let code = try await request.decodeJSON(TOTPCodeRequest.self, limit: 4096).code
        guard code.utf8.count <= 64 else { throw ServiceError.badRequest("code is too long") }
        return code
    }

    static func noStore(_ response: Response) -> Response {
        var response = response
        response.headers[.cacheControl] = "no-store"
        return response
    }

    @Sendable func enroll(_ request: Request, context: Context) async throws -> Response {
        let user = try await self.user(context)
        let secret = TOTPAuthenticator.newSecret()
        do {
            try await self.factor.totp.enroll(userId: user.id, sealedSecret: try self.factor.sealer.seal(secret))
        } catch let error as StorageError {
            throw error.serviceError
        }
        return Self.noStore(
            try JSONResponse.make(
                TOTPEnrollment(secret: Base32.encode(secret), otpauthUrl: TOTPAuthenticator.uri(secret: secret, account: user.email))))
    }

    @Sendable func confirm(_ request: Request, context: Context) async throws -> Response {
        let user = try await self.user(context)
        let code = try await self.code(request)
        guard let record = try await self.factor.totp.record(userId: user.id), record.confirmedAt == nil else {
            throw ServiceError(.conflict, message: "No TOTP enrolment is pending; enroll first")
        }
        let secret = try self.factor.sealer.open(record.sealedSecret)
        let now = self.factor.timeSource.now()
        let recovery = SecondFactor.newRecoveryCodes()
        guard let step = TOTPAuthenticator.matchingStep(secret: secret, code: code, now: now),
            try await self.factor.totp.confirm(userId: user.id, step: step, recoveryHashes: recovery.hashes, at: Timestamp.millis(now))
        else { throw ServiceError.badRequest("code is not a current TOTP code") }
        context.logger.notice("totp enabled", metadata: ["user": "\(user.id)"])
        return Self.noStore(try JSONResponse.make(RecoveryCodes(recoveryCodes: recovery.codes)))
    }

    /// A current code of the confirmed enrolment, spent.
    func requireCurrentCode(_ request: Request, user: UserRecord) async throws {
        let code = try await self.code(request)
        guard let record = try await self.factor.totp.record(userId: user.id), record.confirmedAt != nil else {
            throw ServiceError(.conflict, message: "TOTP is not enabled")
        }
        guard try await self.factor.verifyCurrentCode(code, record: record) else { throw ServiceError.badRequest("code is not a current TOTP code") }
    }

    @Sendable func disable(_ request: Request, context: Context) async throws -> Response {
        let user = try await self.user(context)
        try await self.requireCurrentCode(request, user: user)
        try await self.factor.totp.disable(userId: user.id)
        context.logger.notice("totp disabled", metadata: ["user": "\(user.id)"])
        return try JSONResponse.make(TOTPStatus(totpEnabled: false))
    }

    @Sendable func regenerate(_ request: Request, context: Context) async throws -> Response {
        let user = try await self.user(context)
        try await self.requireCurrentCode(request, user: user)
        let recovery = SecondFactor.newRecoveryCodes()
        try await self.factor.totp.replaceRecoveryCodes(userId: user.id, hashes: recovery.hashes)
        return Self.noStore(try JSONResponse.make(RecoveryCodes(recoveryCodes: recovery.codes)))
    }
}
