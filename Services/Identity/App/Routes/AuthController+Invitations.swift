import Foundation
import Hummingbird
import ServiceKit
import ServiceStorage
import Shared

/// Accepting an invitation (``Invitations``): the mailed token proves the invited address; the
/// invitee's own request is the consent. Either way the role is granted with an intent, like
/// sign-up's, so the grant and the membership are one outcome.
extension AuthController {
    static var unknownInvitation: ServiceError { ServiceError.notFound("This invitation is unknown, withdrawn, already accepted or expired") }

    /// The pending invitation `token` stands for, and its tenant.
    func pendingInvitation(_ token: String) async throws -> (InvitationRecord, TenantRecord) {
        guard let invitations = self.invitations, !token.isEmpty, token.utf8.count <= 128 else { throw Self.unknownInvitation }
        guard
            let invitation = try await invitations.store.find(tokenHash: SecretDigest.sha256Hex(token), at: Timestamp.millis(self.timeSource.now())),
            let tenant = try await self.accounts.tenant(id: invitation.tenantId)
        else { throw Self.unknownInvitation }
        return (invitation, tenant)
    }

    /// `POST /auth/invitations/accept {token}`: a signed-in user accepts an invitation to their
    /// own address and gets a session in the tenant joined.
    @Sendable func acceptInvitation(_ request: Request, context: Context) async throws -> Response {
        let user = try await self.signedInUser(context)
        let body = try await request.decodeJSON(AcceptInvitationRequest.self, limit: Self.bodyLimit)
        let (invitation, tenant) = try await self.pendingInvitation(body.token)
        guard invitation.email == user.email else {
            throw ServiceError(.forbidden, message: "This invitation is for another address: sign in as the invited address to accept it")
        }
        try await self.join(invitation, tenant: tenant, user: user, newUser: nil, context: context)
        // The invitation's mailed token proves the address.
        try await self.accounts.markVerified(userId: user.id, at: Timestamp.millis(self.timeSource.now()))
        context.logger.notice("invitation accepted", metadata: ["tenant": "\(tenant.id)", "user": "\(user.id)", "invitation": "\(invitation.id)"])
        return try self.session(for: user, tenantId: tenant.id, now: self.timeSource.now(), status: .ok)
    }

    /// `POST /auth/invitations/signup {token, password, name?}`: the invitee has no account; one
    /// is made for the invited address (no tenant of its own) and joins the tenant.
    @Sendable func invitationSignup(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(InvitationSignupRequest.self, limit: Self.bodyLimit)
        try PasswordHasher.validate(body.password)
        let name = try body.name.map { try Identifier.validate($0, field: "name") }
        if let name, name.count > 100 { throw ServiceError.badRequest("name must be at most 100 characters") }
        let (invitation, tenant) = try await self.pendingInvitation(body.token)
        // The token holder knows the address; whether it has an account is theirs to know.
        if try await self.accounts.user(email: invitation.email) != nil {
            throw ServiceError(.conflict, message: "An account with this address exists: sign in, then accept the invitation")
        }
        let now = self.timeSource.now()
        let user = UserRecord(
            id: UUID().uuidString.lowercased(), email: invitation.email, name: name, passwordHash: try await self.passwords.hash(body.password),
            superadmin: false, disabledAt: nil, sessionsNotBefore: 0, createdAt: Timestamp.millis(now), verifiedAt: Timestamp.millis(now))
        try await self.join(invitation, tenant: tenant, user: user, newUser: user, context: context)
        context.logger.notice("signed up from an invitation", metadata: ["tenant": "\(tenant.id)", "user": "\(user.id)", "invitation": "\(invitation.id)"])
        return try self.session(for: user, tenantId: tenant.id, now: now, status: .created)
    }

    /// The membership, the accepted invitation and the role, as one outcome: the role's intent is
    /// recorded first and cleared in the transaction that stores the rest, with the grant made
    /// last inside it; anything failing leaves the intent to undo the grant.
    func join(_ invitation: InvitationRecord, tenant: TenantRecord, user: UserRecord, newUser: UserRecord?, context: Context) async throws {
        guard let invitations = self.invitations else { throw Self.unknownInvitation }
        let (intents, requestID) = (self.intents, context.requestID)
        let role = invitation.role
        let intent = try await intents.record(userId: user.id, role: role, tenantId: tenant.id)
        let accepted: Bool
        do {
            accepted = try await invitations.store.accept(
                id: invitation.id, userId: user.id, newUser: newUser, limit: tenant.quotas.maxMembers, at: Timestamp.millis(self.timeSource.now()),
                clearing: intent
            ) {
                try await intents.grant(userId: user.id, role: role, tenantId: tenant.id, requestID: requestID)
            }
        } catch let error as StorageError where error.isConflict || error.isQuota {
            // Refused before anything was granted (the address taken meanwhile, the quota).
            try? await intents.store.clear(id: intent)
            throw error.serviceError
        } catch {
            await intents.settleAfterFailure(id: intent, userId: user.id, role: role, tenantId: tenant.id, requestID: requestID, logger: context.logger)
            if let error = error as? StorageError { throw error.serviceError }
            throw error
        }
        guard accepted else {
            try? await intents.store.clear(id: intent)
            throw Self.unknownInvitation
        }
    }
}
