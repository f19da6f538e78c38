import Foundation
import ServiceKit

/// Invitations of new addresses to a tenant: the invitee's account has no usable password (a
/// bcrypt hash of a random secret nobody holds, so a password login costs the usual time and
/// fails), and they get a magic link. Later links come from `/auth/magic-link`, and `/auth/reset`
/// sets a password.
///
/// The mail goes through the shared limiter: per invited email as for every mail, and per
/// inviting tenant in place of the per-IP count (the IP is the inviting admin's, whose own
/// sign-in links must not be used up by inviting a team).
public struct Invitations: Sendable {
    let links: any SignInLinkRepository
    let limits: MailLimits
    let publicURL: String
    let unusablePasswordHash: String

    public init(links: any SignInLinkRepository, limits: MailLimits, publicURL: String, passwords: PasswordHasher) {
        self.links = links
        self.limits = limits
        self.publicURL = publicURL
        self.unusablePasswordHash = passwords.decoy
    }

    /// Queues the invitation mail with its magic link; false when the limiter held it back.
    /// `inviter` says who sent it (their email, or what kind of caller they are); the tenant's name
    /// is quoted (``MailText``): one line, 60 characters, no links.
    func send(to user: UserRecord, tenant: TenantRecord, inviter: String, at now: Int64) async throws -> Bool {
        let token = AuthController<ServiceRequestContext>.newLinkToken()
        let link = LinkToken(
            hash: SecretDigest.sha256Hex(token), purpose: "magic", userId: user.id, expiresAt: now + AuthController<ServiceRequestContext>.linkLifetime)
        // A tenant named after its owner's email (the default) is all link: say whose it is instead.
        let quoted = MailText.quoted(tenant.name)
        let tenantText = quoted == "\"\(MailText.removedLink)\"" ? "their StreamHub tenant" : "the StreamHub tenant \(quoted)"
        let mail = OutgoingMail(
            id: UUID().uuidString.lowercased(), recipient: user.email, subject: "You are invited to StreamHub",
            body: """
                \(inviter) invited you to \(tenantText).

                Sign in with this link (valid for 15 minutes, once):

                \(self.publicURL)/login/magic?token=\(token)

                If you do not know who sent this, ignore it: nothing happens unless you sign in.
                Once the link has expired, ask for a new sign-in link at \(self.publicURL)/login with this address.
                """, createdAt: now)
        let outcome = try await self.links.request(
            kind: "invite", email: user.email, ip: "tenant:" + tenant.id, at: now, limits: self.limits, cooldown: false, link: link, mail: mail)
        return outcome == .dispatched
    }
}
