import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import ServiceStorage
import Shared

/// Magic links and password reset, to the letter of the overview: the two request routes share one
/// limiter (3 per email, 10 per IP per 15 min; over it the same generic 200 and nothing sent);
/// magic links have a 60 s per-email cooldown (429 with `retryAfterSeconds`). Known and unknown
/// emails get the same status, body and headers. Link tokens: 256 random bits, single use, 15 min,
/// stored as SHA-256, bound to their purpose.
extension AuthController {
    static var genericAnswer: MessageResponse {
        MessageResponse(message: "If an account exists for that address, an email is on its way.")
    }

    static var linkLifetime: Int64 { 15 * 60 * 1000 }

    static func newLinkToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// Shared by the three request routes; `kind` is `magic`, `reset` or `verify`.
    func requestMail(kind: String, request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(EmailRequest.self, limit: 16 * 1024)
        let email = try EmailAddress.normalize(body.email)
        let ip = context.forwardedClientIP ?? context.clientIP ?? "unknown"
        let now = self.timeSource.now()
        let nowMillis = Timestamp.millis(now)
        // Both paths do the same work before the answer — the lookup, a token, the message and the
        // limiter's transaction — and a known account's link and mail are stored after it, so the
        // answer's time says nothing about whether the account exists.
        let user = try await self.accounts.user(email: email)
        let token = Self.newLinkToken()
        let mail: OutgoingMail
        let lifetime: Int64
        let sendsTo: Bool
        switch kind {
        case "magic":
            // No sign-in links to an address its user has not proved (the verification mail is the only one).
            (mail, lifetime, sendsTo) = (self.magicMail(to: email, token: token, now: nowMillis), Self.linkLifetime, user?.verifiedAt != nil)
        case "verify":
            (mail, lifetime, sendsTo) = (self.verifyMail(to: email, token: token, now: nowMillis), Self.verifyLinkLifetime, user?.verifiedAt == nil)
        default:
            // A reset goes to an unverified address too: it is how the address's owner takes back
            // an account someone else made with it (spending it verifies the address and ends
            // every earlier session).
            (mail, lifetime, sendsTo) = (self.resetMail(to: email, token: token, now: nowMillis), Self.linkLifetime, true)
        }
        let link = LinkToken(hash: SecretDigest.sha256Hex(token), purpose: kind, userId: user?.id ?? "", expiresAt: nowMillis + lifetime)
        let outcome = try await self.links.request(
            kind: kind, email: email, ip: ip, at: nowMillis, limits: self.limits, cooldown: kind != "reset", link: nil, mail: nil)
        if outcome == .dispatched, let user, user.disabledAt == nil, sendsTo {
            let (links, logger) = (self.links, context.logger)
            Task {
                do {
                    try await links.store(link: link, mail: mail, at: nowMillis)
                } catch {
                    logger.warning("link not stored; the user can ask again", metadata: ["kind": "\(kind)", "error": "\(error)"])
                }
            }
        }
        switch outcome {
        case .coolingDown(let seconds):
            throw ServiceError(
                .tooManyRequests, message: "Please wait \(seconds)s before requesting another link.", retryAfterSeconds: seconds,
                headers: [.retryAfter: String(seconds)])
        case .limited:
            context.logger.notice("mail request over the limit", metadata: ["kind": "\(kind)"])
        case .dispatched:
            break
        }
        return try JSONResponse.make(Self.genericAnswer)
    }

    func magicMail(to email: String, token: String, now: Int64) -> OutgoingMail {
        OutgoingMail(
            id: UUID().uuidString.lowercased(), recipient: email, subject: "Your StreamHub sign-in link",
            body: """
                Sign in to StreamHub with this link (valid for 15 minutes, once):

                \(self.publicURL)/login/magic?token=\(token)

                If you did not ask for it, ignore this message.
                """, createdAt: now)
    }

    func resetMail(to email: String, token: String, now: Int64) -> OutgoingMail {
        OutgoingMail(
            id: UUID().uuidString.lowercased(), recipient: email, subject: "Reset your StreamHub password",
            body: """
                Choose a new StreamHub password with this link (valid for 15 minutes, once):

                \(self.publicURL)/login/reset?token=\(token)

                If you did not ask for it, ignore this message; your password stays as it is.
                """, createdAt: now)
    }

    @Sendable func magicLink(_ request: Request, context: Context) async throws -> Response {
        try await self.requestMail(kind: "magic", request: request, context: context)
    }

    @Sendable func resetRequest(_ request: Request, context: Context) async throws -> Response {
        try await self.requestMail(kind: "reset", request: request, context: context)
    }

    static var invalidLink: ServiceError { ServiceError(.unauthorized, message: "Invalid or expired link") }

    /// Spends a link token of `purpose`; the user it belongs to.
    func spend(_ token: String, purpose: String) async throws -> UserRecord {
        guard token.utf8.count <= 128, Base64URL.decode(token) != nil,
            let userId = try await self.links.consume(hash: SecretDigest.sha256Hex(token), purpose: purpose, at: Timestamp.millis(self.timeSource.now())),
            let user = try await self.accounts.user(id: userId)
        else { throw Self.invalidLink }
        guard user.disabledAt == nil else { throw ServiceError(.unauthorized, message: "This account is disabled") }
        return user
    }

    @Sendable func magicVerify(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(MagicVerifyRequest.self, limit: 16 * 1024)
        // The second factor is checked before the link is spent, so asking for a TOTP code does
        // not burn the link.
        guard body.token.utf8.count <= 128 else { throw Self.invalidLink }
        let user = try await self.spendChecked(body.token, totpCode: body.totpCode)
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

    /// For a TOTP user, a missing or wrong code leaves the link unspent (401 `totpRequired`).
    func spendChecked(_ token: String, totpCode: String?) async throws -> UserRecord {
        let hash = SecretDigest.sha256Hex(token)
        guard let userId = try await self.links.peek(hash: hash, purpose: "magic", at: Timestamp.millis(self.timeSource.now())) else {
            throw Self.invalidLink
        }
        if try await self.secondFactor.isRequired(userId: userId) {
            do {
                try await self.secondFactor.verifySignIn(userId: userId, code: totpCode, link: hash)
            } catch is LinkExhausted {
                // Too many wrong codes with this link: it is spent, and a new one must be asked for.
                _ = try await self.links.consume(hash: hash, purpose: "magic", at: Timestamp.millis(self.timeSource.now()))
                throw Self.invalidLink
            }
        }
        return try await self.spend(token, purpose: "magic")
    }

    @Sendable func reset(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(PasswordResetRequest.self, limit: 16 * 1024)
        try PasswordHasher.validate(body.password)
        let user = try await self.spend(body.token, purpose: "reset")
        let hash = try await self.passwords.hash(body.password)
        // The mailed link proves the address.
        try await self.accounts.markVerified(userId: user.id, at: Timestamp.millis(self.timeSource.now()))
        // A new password ends every earlier session.
        try await self.accounts.setPassword(userId: user.id, hash: hash, sessionsNotBefore: Int64(self.timeSource.now().timeIntervalSince1970) + 1)
        context.logger.notice("password reset", metadata: ["user": "\(user.id)"])
        return try JSONResponse.make(MessageResponse(message: "Your password has been changed; sign in with it."))
    }
}
