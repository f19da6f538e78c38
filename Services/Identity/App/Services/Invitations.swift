import Foundation
import ServiceKit

/// Invitations are offers: `POST /tenants/:id/members` stores a pending invitation and mails its
/// token to the address; nobody joins, and no account is made or bound, until the invitee accepts
/// with the token — signed in as that address (`/auth/invitations/accept`), or creating their
/// account for it (`/auth/invitations/signup`). An invitation to an address nobody has signed up
/// with therefore never blocks its real owner's sign-up, and an existing user is never made a
/// member without their consent.
///
/// The mail goes through the shared limiter: per invited email as for every mail, and per
/// inviting tenant in place of the per-IP count (the IP is the inviting admin's, whose own
/// sign-in links must not be used up by inviting a team).
public struct Invitations: Sendable {
    let store: any InvitationRepository
    let links: any SignInLinkRepository
    let limits: MailLimits
    let publicURL: String
    /// How long an invitation's link works: 7 days.
    static let lifetime: Int64 = 7 * 24 * 3600 * 1000

    public init(store: any InvitationRepository, links: any SignInLinkRepository, limits: MailLimits, publicURL: String) {
        self.store = store
        self.links = links
        self.limits = limits
        self.publicURL = publicURL
    }

    /// Stores the invitation (replacing a pending one to the same address) and queues its mail.
    /// `inviter` says who sent it (their email, or what kind of caller they are); the tenant's name
    /// is quoted (``MailText``): one line, 60 characters, no links.
    /// - Returns: the invitation, and false when the limiter held the mail back.
    func invite(
        email: String, role: String, tenant: TenantRecord, invitedBy: String, inviter: String, at now: Int64
    ) async throws -> (InvitationRecord, mailed: Bool) {
        let token = AuthController<ServiceRequestContext>.newLinkToken()
        let invitation = InvitationRecord(
            id: UUID().uuidString.lowercased(), tenantId: tenant.id, email: email, role: role, tokenHash: SecretDigest.sha256Hex(token),
            invitedBy: invitedBy, createdAt: now, expiresAt: now + Self.lifetime)
        try await self.store.create(invitation, limit: tenant.quotas.maxMembers)
        // A tenant named after its owner's email (the default) is all link: say whose it is instead.
        let quoted = MailText.quoted(tenant.name)
        let tenantText = quoted == "\"\(MailText.removedLink)\"" ? "their StreamHub tenant" : "the StreamHub tenant \(quoted)"
        let mail = OutgoingMail(
            id: UUID().uuidString.lowercased(), recipient: email, subject: "You are invited to StreamHub",
            body: """
                \(inviter) invited you to \(tenantText).
                Your role there would be \(MailText.quoted(role)).

                Accept the invitation with this link (valid for 7 days):

                \(self.publicURL)/login/invite?token=\(token)

                Without a StreamHub account for this address yet, the page lets you create one.
                If you do not know who sent this, ignore it: nothing happens unless you accept.
                """, createdAt: now)
        let outcome = try await self.links.request(
            kind: "invite", email: email, ip: "tenant:" + tenant.id, at: now, limits: self.limits, cooldown: false, link: nil, mail: mail)
        return (invitation, outcome == .dispatched)
    }
}
