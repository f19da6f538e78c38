import Foundation
import Hummingbird
import ServiceKit
import ServiceStorage
import Shared

/// `/api/v1/tenants*` and `/api/v1/users*`.
///
/// A tenant's callers see their own tenant only — another tenant, its members or its quotas are a
/// 404 to all but superadmins and global tokens, who see every tenant, change quotas, and list,
/// disable and re-enable users. Roles live in authz, never here.
public struct TenantsController<Context: ServiceRequestContextProtocol>: Sendable {
    let accounts: any AccountRepository
    let tokens: any ApiTokenRepository
    let authz: InternalClient
    let authzURL: String
    /// Invitations: pending offers with a mailed link.
    let invitations: Invitations
    let intents: RoleIntents
    let timeSource: any TimeSource

    public init(
        accounts: any AccountRepository, tokens: any ApiTokenRepository, authz: InternalClient, authzURL: String, invitations: Invitations,
        intents: RoleIntents,
        timeSource: any TimeSource
    ) {
        self.accounts = accounts
        self.tokens = tokens
        self.authz = authz
        self.authzURL = authzURL
        self.invitations = invitations
        self.intents = intents
        self.timeSource = timeSource
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("tenants", use: self.list)
        group.get("tenants/:id", use: self.show)
        group.patch("tenants/:id", use: self.update)
        group.get("tenants/:id/members", use: self.members)
        group.post("tenants/:id/members", use: self.addMember)
        group.delete("tenants/:id/members/:userId", use: self.removeMember)
        group.get("tenants/:id/invitations", use: self.pendingInvitations)
        group.delete("tenants/:id/invitations/:invitationId", use: self.withdrawInvitation)
        group.get("users", use: self.users)
        group.patch("users/:id", use: self.updateUser)
    }

    /// `GET /internal/v1/tenants/:id` for other services (media reads quotas).
    public func addInternalRoutes(to group: RouterGroup<Context>) {
        group.get("tenants/:id", use: self.internalShow)
        group.get("tenants/:id/usage", use: self.internalUsage)
    }

    /// Identity's part of `GET /tenants/:id/usage`: quotas, members, active tokens.
    @Sendable func internalUsage(_ request: Request, context: Context) async throws -> Response {
        let id = try Identifier.validate(context.parameters.get("id") ?? "", field: "id")
        guard let tenant = try await self.accounts.tenant(id: id) else { throw ServiceError.notFound("No such tenant") }
        let members = try await self.accounts.members(of: id).count
        let tokens = try await self.tokens.activeCount(tenant: id, at: Timestamp.millis(self.timeSource.now()))
        return try JSONResponse.make(IdentityTenantUsage(tenantId: id, quotas: tenant.quotas, members: members, tokens: tokens))
    }

    static func globalOnly(_ caller: Principal) throws {
        guard caller.bypassesAuthorization else {
            throw ServiceError(.forbidden, message: "Only a superadmin or a global token may do this")
        }
    }

    /// The tenant `:id` as the caller may see it, else 404.
    func visibleTenant(_ context: Context) async throws -> TenantRecord {
        let caller = try context.caller()
        let id = try Identifier.validate(context.parameters.get("id") ?? "", field: "id")
        guard caller.bypassesAuthorization || caller.tenantId == id, let tenant = try await self.accounts.tenant(id: id) else {
            throw ServiceError.notFound("No such tenant")
        }
        return tenant
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let caller = try context.caller()
        let page = try ListPage(request: request)
        if caller.bypassesAuthorization {
            return try JSONResponse.make(try await self.accounts.tenants(after: page.after, limit: page.limit).map(\.summary))
        }
        guard let id = caller.tenantId, let tenant = try await self.accounts.tenant(id: id) else { return try JSONResponse.make([TenantSummary]()) }
        return try JSONResponse.make(page.after == nil ? [tenant.summary] : [])
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Response {
        try JSONResponse.make(try await self.visibleTenant(context).summary)
    }

    @Sendable func internalShow(_ request: Request, context: Context) async throws -> Response {
        let id = try Identifier.validate(context.parameters.get("id") ?? "", field: "id")
        guard let tenant = try await self.accounts.tenant(id: id) else { throw ServiceError.notFound("No such tenant") }
        return try JSONResponse.make(tenant.summary)
    }

    @Sendable func update(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.visibleTenant(context)
        let body = try await request.decodeJSON(TenantUpdate.self, limit: 16 * 1024)
        let name = try body.name.map { try Identifier.validate($0, field: "name") }
        if let name, name.count > 100 { throw ServiceError.badRequest("name must be at most 100 characters") }
        var quotas: TenantQuotas?
        if let change = body.quotas {
            try Self.globalOnly(try context.caller())
            var q = tenant.quotas
            for (field, value, keyPath) in [
                ("maxApps", change.maxApps, \TenantQuotas.maxApps), ("maxConcurrentStreams", change.maxConcurrentStreams, \.maxConcurrentStreams),
                ("maxMembers", change.maxMembers, \.maxMembers), ("maxTokens", change.maxTokens, \.maxTokens),
            ] {
                guard let value else { continue }
                guard (0...1_000_000).contains(value) else { throw ServiceError.badRequest("quotas.\(field) must be from 0 to 1000000") }
                q[keyPath: keyPath] = value
            }
            quotas = q
        }
        guard let updated = try await self.accounts.updateTenant(id: tenant.id, name: name, quotas: quotas) else {
            throw ServiceError.notFound("No such tenant")
        }
        return try JSONResponse.make(updated.summary)
    }

    @Sendable func members(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.visibleTenant(context)
        let members = try await self.accounts.members(of: tenant.id)
        var answer: [MemberSummary] = []
        for (user, joinedAt) in members {
            let roles: SubjectRoles = try await self.authz.call(
                service: "authz", baseURL: self.authzURL, path: "/internal/v1/roles/of",
                body: SubjectRolesRequest(subject: "user:\(user.id)", tenants: [tenant.id]), requestID: context.requestID)
            answer.append(
                MemberSummary(
                    userId: user.id, email: user.email, name: user.name, roles: roles.roles[tenant.id] ?? [],
                    joinedAt: Timestamp.iso8601(Timestamp.date(millis: joinedAt))))
        }
        return try JSONResponse.make(answer)
    }

    /// Invites an address with a role: a pending invitation and a mailed `/login/invite` link,
    /// the same answer whether the address has an account or not. Nobody joins until the invitee
    /// accepts (``AuthController``'s `/auth/invitations/*`). The role must exist in the tenant and
    /// be at most the inviter's own (an admin cannot invite an owner); members and pending
    /// invitations together stay within `maxMembers`.
    @Sendable func addMember(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.visibleTenant(context)
        let body = try await request.decodeJSON(AddMemberRequest.self, limit: 16 * 1024)
        let email = try EmailAddress.normalize(body.email)
        let role = try Identifier.validate(body.role, field: "role")
        let caller = try context.caller()
        let inviter = try await self.inviterName(context)
        // authz knows the roles and the inviter's rank: 400 for a role it does not know, 403 for
        // one above the inviter's own.
        let _: EmptyAnswer = try await self.authz.call(
            service: "authz", baseURL: self.authzURL, path: "/internal/v1/roles/grantable",
            body: GrantableRoleRequest(granter: caller.bypassesAuthorization ? nil : caller.subject, role: role, tenant: tenant.id),
            requestID: context.requestID)
        let now = Timestamp.millis(self.timeSource.now())
        let (invitation, mailed): (InvitationRecord, Bool)
        do {
            (invitation, mailed) = try await self.invitations.invite(
                email: email, role: role, tenant: tenant, invitedBy: caller.subject, inviter: inviter, at: now)
        } catch let error as StorageError {
            throw error.serviceError
        }
        context.logger.notice(
            mailed ? "member invited" : "member invited, mail over the limit",
            metadata: ["tenant": "\(tenant.id)", "invitation": "\(invitation.id)", "by": "\(caller.subject)"])
        return try JSONResponse.make(invitation.summary, status: .created)
    }

    /// `GET /tenants/:id/invitations`: the pending ones.
    @Sendable func pendingInvitations(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.visibleTenant(context)
        return try JSONResponse.make(try await self.invitations.store.pending(tenantId: tenant.id, at: Timestamp.millis(self.timeSource.now())).map(\.summary))
    }

    /// `DELETE /tenants/:id/invitations/:invitationId`: its link stops working.
    @Sendable func withdrawInvitation(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.visibleTenant(context)
        let id = try Identifier.validate(context.parameters.get("invitationId") ?? "", field: "invitationId")
        guard let withdrawn = try await self.invitations.store.withdraw(id: id, tenantId: tenant.id, at: Timestamp.millis(self.timeSource.now())) else {
            throw ServiceError.notFound("No such invitation")
        }
        context.logger.notice("invitation withdrawn", metadata: ["tenant": "\(tenant.id)", "invitation": "\(id)"])
        return try JSONResponse.make(withdrawn.summary)
    }

    /// Who an invitation says sent it: a signed-in user's email, else what kind of caller it was.
    /// Who the invitation mail names; a user who has not verified their own address sends none (403).
    func inviterName(_ context: Context) async throws -> String {
        let caller = try context.caller()
        if caller.kind == .user, caller.subject.hasPrefix("user:") {
            let id = String(caller.subject.dropFirst("user:".count))
            if id == BreakGlass.userId { return "The platform's administrator" }
            if let user = try await self.accounts.user(id: id) {
                guard user.verifiedAt != nil else {
                    throw ServiceError(.forbidden, message: "Verify your e-mail address before inviting others (POST /api/v1/auth/verify-request)")
                }
                return user.email
            }
        }
        return caller.kind == .apiToken ? "An API token of the tenant" : "The platform's administrator"
    }

    @Sendable func removeMember(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.visibleTenant(context)
        let userId = try Identifier.validate(context.parameters.get("userId") ?? "", field: "userId")
        guard userId != tenant.ownerId else { throw ServiceError.badRequest("The tenant's owner cannot be removed") }
        let removed = try await self.accounts.removeMember(tenantId: tenant.id, userId: userId)
        let _: PolicyChangeResult = try await self.authz.call(
            service: "authz", baseURL: self.authzURL, path: "/internal/v1/roles/revoke",
            body: SubjectInTenant(subject: "user:\(userId)", tenant: tenant.id), requestID: context.requestID)
        return try JSONResponse.make(MemberRemoval(removed: removed))
    }

    @Sendable func users(_ request: Request, context: Context) async throws -> Response {
        try Self.globalOnly(try context.caller())
        let page = try ListPage(request: request)
        return try JSONResponse.make(try await self.accounts.users(after: page.after, limit: page.limit).map(\.summary))
    }

    /// `{disabled}`: a disabled user cannot sign in and their sessions stop at the gateway within 5 s.
    @Sendable func updateUser(_ request: Request, context: Context) async throws -> Response {
        let caller = try context.caller()
        try Self.globalOnly(caller)
        let id = try Identifier.validate(context.parameters.get("id") ?? "", field: "id")
        let body = try await request.decodeJSON(UserUpdate.self, limit: 16 * 1024)
        guard let disabled = body.disabled else { throw ServiceError.badRequest("disabled is required") }
        guard let user = try await self.accounts.setDisabled(userId: id, disabled: disabled, at: Timestamp.millis(self.timeSource.now())) else {
            throw ServiceError.notFound("No such user")
        }
        context.logger.notice("user \(disabled ? "disabled" : "enabled")", metadata: ["user": "\(id)", "by": "\(caller.subject)"])
        return try JSONResponse.make(user.summary)
    }
}
