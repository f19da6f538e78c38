/// `POST /auth/signup`: a new user and a tenant they own.
public struct SignupRequest: Codable, Sendable, Equatable {
    public var email: String
    public var password: String
    public var name: String?

    public init(email: String, password: String, name: String? = nil) {
        self.email = email
        self.password = password
        self.name = name
    }
}

/// `POST /auth/login`.
public struct LoginRequest: Codable, Sendable, Equatable {
    public var email: String
    public var password: String
    public var totpCode: String?
    /// The tenant the session acts in; default the user's own, else the first they belong to.
    public var tenantId: String?

    public init(email: String, password: String, totpCode: String? = nil, tenantId: String? = nil) {
        self.email = email
        self.password = password
        self.totpCode = totpCode
        self.tenantId = tenantId
    }
}

/// A user as the API shows one (never a password hash).
public struct UserSummary: Codable, Sendable, Equatable {
    public var id: String
    public var email: String
    public var name: String?
    public var superadmin: Bool
    public var disabled: Bool
    public var createdAt: String
    /// Whether the user proved their address (a verification, reset or invitation link spent).
    public var emailVerified: Bool

    public init(id: String, email: String, name: String?, superadmin: Bool, disabled: Bool, createdAt: String, emailVerified: Bool = true) {
        self.id = id
        self.email = email
        self.name = name
        self.superadmin = superadmin
        self.disabled = disabled
        self.createdAt = createdAt
        self.emailVerified = emailVerified
    }
}

/// The answer of sign-up and login: a dashboard JWT, when it expires, and who it is for.
public struct SessionResponse: Codable, Sendable, Equatable {
    public var token: String
    public var expiresAt: String
    public var user: UserSummary
    /// The tenant the session acts in (the JWT's `tenantId`).
    public var tenantId: String?

    public init(token: String, expiresAt: String, user: UserSummary, tenantId: String?) {
        self.token = token
        self.expiresAt = expiresAt
        self.user = user
        self.tenantId = tenantId
    }
}

/// A tenant's quotas (SPEC, "Quotas").
public struct TenantQuotas: Codable, Sendable, Equatable {
    public var maxApps: Int
    public var maxConcurrentStreams: Int
    public var maxMembers: Int
    public var maxTokens: Int

    public init(maxApps: Int, maxConcurrentStreams: Int, maxMembers: Int, maxTokens: Int) {
        self.maxApps = maxApps
        self.maxConcurrentStreams = maxConcurrentStreams
        self.maxMembers = maxMembers
        self.maxTokens = maxTokens
    }
}

/// A tenant as the API shows one.
public struct TenantSummary: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var ownerId: String
    public var quotas: TenantQuotas
    public var createdAt: String

    public init(id: String, name: String, ownerId: String, quotas: TenantQuotas, createdAt: String) {
        self.id = id
        self.name = name
        self.ownerId = ownerId
        self.quotas = quotas
        self.createdAt = createdAt
    }
}

/// One tenant of `GET /auth/me`, with the caller's roles in it.
public struct TenantMembership: Codable, Sendable, Equatable {
    public var tenant: TenantSummary
    public var roles: [String]

    public init(tenant: TenantSummary, roles: [String]) {
        self.tenant = tenant
        self.roles = roles
    }
}

/// `GET /auth/me`: the signed-in user, the tenant the session acts in, and every tenant they belong to.
public struct MeResponse: Codable, Sendable, Equatable {
    public var user: UserSummary
    public var tenantId: String?
    public var tenants: [TenantMembership]

    public init(user: UserSummary, tenantId: String?, tenants: [TenantMembership]) {
        self.user = user
        self.tenantId = tenantId
        self.tenants = tenants
    }
}

/// `POST /internal/v1/sessions/state` on identity: may sessions of this user still be trusted?
public struct SessionStateRequest: Codable, Sendable, Equatable {
    public var userId: String
    /// A break-glass session's `bgv` claim: identity says whether the current password minted it.
    public var breakGlassVersion: String?
    public init(userId: String, breakGlassVersion: String? = nil) {
        self.userId = userId
        self.breakGlassVersion = breakGlassVersion
    }
}

/// Identity's answer: sessions issued before `notBefore` (epoch seconds) are revoked; a disabled
/// or unknown user has none.
public struct SessionState: Codable, Sendable, Equatable {
    public var exists: Bool
    public var disabled: Bool
    public var notBefore: Int64

    public init(exists: Bool, disabled: Bool, notBefore: Int64) {
        self.exists = exists
        self.disabled = disabled
        self.notBefore = notBefore
    }
}

/// `POST /internal/v1/roles` on authz: give `subject` `role` in `tenant` (sign-up makes its user owner).
public struct RoleGrant: Codable, Sendable, Equatable {
    public var subject: String
    public var role: String
    public var tenant: String

    public init(subject: String, role: String, tenant: String) {
        self.subject = subject
        self.role = role
        self.tenant = tenant
    }
}

/// `POST /internal/v1/roles/grantable` on authz: may `granter` (nil: a global caller) give `role`
/// in `tenant`? 200 when it may, 400 when the tenant has no such role, 403 when the role ranks above
/// the granter's own (an admin cannot hand out `owner`).
public struct GrantableRoleRequest: Codable, Sendable, Equatable {
    public var granter: String?
    public var role: String
    public var tenant: String

    public init(granter: String?, role: String, tenant: String) {
        self.granter = granter
        self.role = role
        self.tenant = tenant
    }
}

/// An answer whose body carries nothing the caller needs (any JSON object).
public struct EmptyAnswer: Codable, Sendable, Equatable {
    public init() {}
}

/// `POST /internal/v1/roles/of` on authz: the roles of `subject` in each of `tenants`.
public struct SubjectRolesRequest: Codable, Sendable, Equatable {
    public var subject: String
    public var tenants: [String]

    public init(subject: String, tenants: [String]) {
        self.subject = subject
        self.tenants = tenants
    }
}

/// Authz's answer: tenant id → roles (direct and inherited).
public struct SubjectRoles: Codable, Sendable, Equatable {
    public var roles: [String: [String]]
    public init(roles: [String: [String]]) { self.roles = roles }
}

/// What a policy change did.
public struct PolicyChangeResult: Codable, Sendable, Equatable {
    public var tenant: String
    public var version: Int64
    public var changed: Int

    public init(tenant: String, version: Int64, changed: Int) {
        self.tenant = tenant
        self.version = version
        self.changed = changed
    }
}

/// `POST /tokens`.
public struct CreateApiTokenRequest: Codable, Sendable, Equatable {
    public var name: String
    public var scope: ApiTokenSummary.Scope
    /// Required for `app` scope; the token inherits that app's tenant.
    public var appId: String?
    /// RFC 3339; in the future.
    public var expiresAt: String?

    public init(name: String, scope: ApiTokenSummary.Scope, appId: String? = nil, expiresAt: String? = nil) {
        self.name = name
        self.scope = scope
        self.appId = appId
        self.expiresAt = expiresAt
    }
}

/// The answer of `POST /tokens`: the token itself, shown this once, and its description.
public struct CreatedApiToken: Codable, Sendable, Equatable {
    public var token: String
    public var id: String
    public var name: String
    public var prefix: String
    public var scope: ApiTokenSummary.Scope
    public var appId: String?
    public var tenantId: String?
    public var createdAt: String
    public var expiresAt: String?

    public init(token: String, summary: ApiTokenSummary) {
        self.token = token
        self.id = summary.id
        self.name = summary.name
        self.prefix = summary.prefix
        self.scope = summary.scope
        self.appId = summary.appId
        self.tenantId = summary.tenantId
        self.createdAt = summary.createdAt
        self.expiresAt = summary.expiresAt
    }
}

/// `POST /internal/v1/roles/revoke` on authz: every role of `subject` in `tenant`.
public struct SubjectInTenant: Codable, Sendable, Equatable {
    public var subject: String
    public var tenant: String

    public init(subject: String, tenant: String) {
        self.subject = subject
        self.tenant = tenant
    }
}

/// `PATCH /tenants/:id`: a new name (the tenant's admins), new quotas (superadmins and global tokens only).
public struct TenantUpdate: Codable, Sendable, Equatable {
    public var name: String?
    public var quotas: QuotaUpdate?

    public init(name: String? = nil, quotas: QuotaUpdate? = nil) {
        self.name = name
        self.quotas = quotas
    }
}

/// Quotas to change; the others stay.
public struct QuotaUpdate: Codable, Sendable, Equatable {
    public var maxApps: Int?
    public var maxConcurrentStreams: Int?
    public var maxMembers: Int?
    public var maxTokens: Int?

    public init(maxApps: Int? = nil, maxConcurrentStreams: Int? = nil, maxMembers: Int? = nil, maxTokens: Int? = nil) {
        self.maxApps = maxApps
        self.maxConcurrentStreams = maxConcurrentStreams
        self.maxMembers = maxMembers
        self.maxTokens = maxTokens
    }
}

/// One member of a tenant.
public struct MemberSummary: Codable, Sendable, Equatable {
    public var userId: String
    public var email: String
    public var name: String?
    public var roles: [String]
    public var joinedAt: String

    public init(userId: String, email: String, name: String?, roles: [String], joinedAt: String) {
        self.userId = userId
        self.email = email
        self.name = name
        self.roles = roles
        self.joinedAt = joinedAt
    }
}

/// `POST /tenants/:id/members`: invite an address to the tenant with a role.
public struct AddMemberRequest: Codable, Sendable, Equatable {
    public var email: String
    public var role: String

    public init(email: String, role: String) {
        self.email = email
        self.role = role
    }
}

/// `PATCH /users/:id`.
public struct UserUpdate: Codable, Sendable, Equatable {
    public var disabled: Bool?
    public init(disabled: Bool? = nil) { self.disabled = disabled }
}

/// `POST /auth/totp/enroll`: the secret (base32, for typing) and the `otpauth://` URI (for a QR code).
public struct TOTPEnrollment: Codable, Sendable, Equatable {
    public var secret: String
    public var otpauthUrl: String

    public init(secret: String, otpauthUrl: String) {
        self.secret = secret
        self.otpauthUrl = otpauthUrl
    }
}

/// A TOTP code (or, where sign-in takes one, a recovery code).
public struct TOTPCodeRequest: Codable, Sendable, Equatable {
    public var code: String
    public init(code: String) { self.code = code }
}

/// Single-use recovery codes, shown once.
public struct RecoveryCodes: Codable, Sendable, Equatable {
    public var recoveryCodes: [String]
    public init(recoveryCodes: [String]) { self.recoveryCodes = recoveryCodes }
}

/// `POST /auth/magic-link` and `POST /auth/reset-request`.
public struct EmailRequest: Codable, Sendable, Equatable {
    public var email: String
    public init(email: String) { self.email = email }
}

/// `POST /auth/magic/verify`: the token from the link, a TOTP code when TOTP is on.
public struct MagicVerifyRequest: Codable, Sendable, Equatable {
    public var token: String
    public var totpCode: String?
    public var tenantId: String?

    public init(token: String, totpCode: String? = nil, tenantId: String? = nil) {
        self.token = token
        self.totpCode = totpCode
        self.tenantId = tenantId
    }
}

/// `POST /auth/reset`: the token from the mail and the new password.
public struct PasswordResetRequest: Codable, Sendable, Equatable {
    public var token: String
    public var password: String

    public init(token: String, password: String) {
        self.token = token
        self.password = password
    }
}

/// `POST /auth/verify`: the token from the verification mail.
public struct VerifyEmailRequest: Codable, Sendable, Equatable {
    public var token: String

    public init(token: String) {
        self.token = token
    }
}

/// A message-only answer (the generic answer of the mail-sending routes).
public struct MessageResponse: Codable, Sendable, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
}

/// `GET /tenants/:id/usage` (gateway, aggregated): identity's quotas and counts with media's.
public struct TenantUsage: Codable, Sendable, Equatable {
    public struct Counts: Codable, Sendable, Equatable {
        public var apps: Int
        public var liveStreams: Int
        public var viewers: Int
        public var members: Int
        public var tokens: Int

        public init(apps: Int, liveStreams: Int, viewers: Int, members: Int, tokens: Int) {
            self.apps = apps
            self.liveStreams = liveStreams
            self.viewers = viewers
            self.members = members
            self.tokens = tokens
        }
    }

    public var tenantId: String
    public var quotas: TenantQuotas
    public var usage: Counts

    public init(tenantId: String, quotas: TenantQuotas, usage: Counts) {
        self.tenantId = tenantId
        self.quotas = quotas
        self.usage = usage
    }
}

/// Identity's part of a tenant's usage (`GET /internal/v1/tenants/:id/usage`).
public struct IdentityTenantUsage: Codable, Sendable, Equatable {
    public var tenantId: String
    public var quotas: TenantQuotas
    public var members: Int
    /// Active (unrevoked, unexpired) API tokens.
    public var tokens: Int

    public init(tenantId: String, quotas: TenantQuotas, members: Int, tokens: Int) {
        self.tenantId = tenantId
        self.quotas = quotas
        self.members = members
        self.tokens = tokens
    }
}

/// Media's part of a tenant's usage (`GET /internal/v1/tenants/:id/usage`).
public struct MediaTenantUsage: Codable, Sendable, Equatable {
    public var apps: Int
    public var liveStreams: Int
    public var viewers: Int

    public init(apps: Int, liveStreams: Int, viewers: Int) {
        self.apps = apps
        self.liveStreams = liveStreams
        self.viewers = viewers
    }
}

/// `POST /auth/switch-tenant`.
public struct SwitchTenantRequest: Codable, Sendable, Equatable {
    public var tenantId: String
    public init(tenantId: String) { self.tenantId = tenantId }
}

/// `POST /auth/password`: change the signed-in user's password.
public struct PasswordChangeRequest: Codable, Sendable, Equatable {
    public var currentPassword: String
    public var newPassword: String

    public init(currentPassword: String, newPassword: String) {
        self.currentPassword = currentPassword
        self.newPassword = newPassword
    }
}

/// `POST /auth/logout`: sessions issued until this time no longer work.
public struct LogoutResult: Codable, Sendable, Equatable {
    public var sessionsEndedAt: String
    public init(sessionsEndedAt: String) { self.sessionsEndedAt = sessionsEndedAt }
}

/// `DELETE /tenants/:id/members/:userId`: whether a membership was removed.
public struct MemberRemoval: Codable, Sendable, Equatable {
    public var removed: Bool
    public init(removed: Bool) { self.removed = removed }
}

/// `POST /auth/totp/disable`: the factor's state afterwards.
public struct TOTPStatus: Codable, Sendable, Equatable {
    public var totpEnabled: Bool
    public init(totpEnabled: Bool) { self.totpEnabled = totpEnabled }
}

/// A pending invitation to a tenant (`POST /tenants/:id/members`): nobody joins, and no account is
/// made or bound, until the invitee accepts it with the mailed token.
public struct InvitationSummary: Codable, Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var email: String
    public var role: String
    public var createdAt: String
    public var expiresAt: String

    public init(id: String, tenantId: String, email: String, role: String, createdAt: String, expiresAt: String) {
        self.id = id
        self.tenantId = tenantId
        self.email = email
        self.role = role
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// `POST /auth/invitations/accept`: a signed-in user accepts an invitation to their own address.
public struct AcceptInvitationRequest: Codable, Sendable, Equatable {
    public var token: String

    public init(token: String) {
        self.token = token
    }
}

/// `POST /auth/invitations/signup`: the invitee has no account yet; the mailed token proves the
/// address, the password is theirs.
public struct InvitationSignupRequest: Codable, Sendable, Equatable {
    public var token: String
    public var password: String
    public var name: String?

    public init(token: String, password: String, name: String? = nil) {
        self.token = token
        self.password = password
        self.name = name
    }
}
