import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceKit
import ServiceStorage
import Shared

/// `STREAMHUB_EMAIL_VERIFICATION`: what a user who has not proved their address may do.
public enum EmailVerification: String, Sendable, CaseIterable {
    /// Sign in and use the dashboard, as the contract's sign-up answer (a session) implies; but send
    /// no invitations and get no magic links until verified. The default.
    case optional
    /// Nothing until verified: sign-up answers the same 202 for every address (no account-existence
    /// oracle), and login refuses an unverified account (403) after checking its password.
    case required
}

/// E-mail verification: sign-up mails a link (`/login/verify?token=`, 24 h, single use, stored as
/// SHA-256, through the mail limiter); spending it — or a reset or invitation link, which prove the
/// address as well — marks the user verified. `POST /auth/verify-request` mails a new link to an
/// unverified account, with the magic link's generic answer, limiter and cooldown.
extension AuthController {
    static var verifyLinkLifetime: Int64 { 24 * 3600 * 1000 }

    /// Login's answer, under `required`, to an unverified account whose password was right.
    static var unverified: ServiceError {
        ServiceError(
            .forbidden,
            message: "Verify your e-mail address first: follow the link we mailed, or ask for a new one (POST /api/v1/auth/verify-request)")
    }

    /// Sign-up's one answer under `required`, for a new address and a taken one alike.
    static func signupAnswer() throws -> Response {
        var response = try JSONResponse.make(
            MessageResponse(message: "Check your e-mail: we sent a message to that address to finish signing up."), status: .accepted)
        response.headers[.cacheControl] = "no-store"
        return response
    }

    func verifyMail(to email: String, token: String, now: Int64) -> OutgoingMail {
        OutgoingMail(
            id: UUID().uuidString.lowercased(), recipient: email, subject: "Verify your StreamHub e-mail address",
            body: """
                Confirm that this address is yours with this link (valid for 24 hours, once):

                \(self.publicURL)/login/verify?token=\(token)

                If you did not sign up for StreamHub, ignore this message: nothing is sent to this
                address again unless someone asks for it.
                """, createdAt: now)
    }

    /// To the owner of an address someone tried to sign up with again (under `required`).
    func existingAccountMail(to email: String, now: Int64) -> OutgoingMail {
        OutgoingMail(
            id: UUID().uuidString.lowercased(), recipient: email, subject: "Your StreamHub account",
            body: """
                Someone tried to sign up for StreamHub with this address, which already has an account.

                If it was you, sign in at \(self.publicURL)/login, or choose a new password at
                \(self.publicURL)/login/reset.

                If it was not you, ignore this message; your account is unchanged.
                """, createdAt: now)
    }

    /// After a sign-up: a verification link for the new `user`, or (with no user: the address was
    /// taken) the mail telling the address's owner. Through the mail limiter; a failure to queue it
    /// is logged, not answered (the user can ask again).
    func mailVerification(to email: String, user: UserRecord?, ip: String, now: Date, logger: Logger) async {
        let millis = Timestamp.millis(now)
        let token = Self.newLinkToken()
        let link = user.map { LinkToken(hash: SecretDigest.sha256Hex(token), purpose: "verify", userId: $0.id, expiresAt: millis + Self.verifyLinkLifetime) }
        let mail = user == nil ? self.existingAccountMail(to: email, now: millis) : self.verifyMail(to: email, token: token, now: millis)
        do {
            let outcome = try await self.links.request(
                kind: "verify", email: email, ip: ip, at: millis, limits: self.limits, cooldown: false, link: link, mail: mail)
            if outcome != .dispatched { logger.notice("verification mail over the limit") }
        } catch {
            logger.warning("verification mail not queued; the user can ask again", metadata: ["error": "\(error)"])
        }
    }

    /// `POST /auth/verify {token}`: spends a verification link; the address is verified.
    @Sendable func verify(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(VerifyEmailRequest.self, limit: Self.bodyLimit)
        let user = try await self.spend(body.token, purpose: "verify")
        try await self.accounts.markVerified(userId: user.id, at: Timestamp.millis(self.timeSource.now()))
        context.logger.notice("e-mail verified", metadata: ["user": "\(user.id)"])
        return try JSONResponse.make(MessageResponse(message: "Your e-mail address is verified."))
    }

    /// `POST /auth/verify-request {email}`: a new verification link for an unverified account; the
    /// generic answer whatever the address.
    @Sendable func verifyRequest(_ request: Request, context: Context) async throws -> Response {
        try await self.requestMail(kind: "verify", request: request, context: context)
    }
}
