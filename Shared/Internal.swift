/// `POST /internal/v1/tokens/resolve` on identity: look an `sk_` token up by its hash.
public struct TokenResolveRequest: Codable, Sendable, Equatable {
    public var token: String
    public init(token: String) { self.token = token }
}

/// Identity's answer for a valid token: the principal it stands for.
public struct TokenResolveResponse: Codable, Sendable, Equatable {
    public var principal: Principal
    public var tokenId: String
    public init(principal: Principal, tokenId: String) {
        self.principal = principal
        self.tokenId = tokenId
    }
}

/// One app, as media lists it.
public struct AppSummary: Codable, Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var features: AppFeatures
    public var createdAt: String

    public init(id: String, tenantId: String, name: String, features: AppFeatures, createdAt: String) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.features = features
        self.createdAt = createdAt
    }
}

/// Per-app feature flags.
public struct AppFeatures: Codable, Sendable, Equatable {
    /// Gates the anonymous play-token route; on by default.
    public var publicPlayback: Bool
    public init(publicPlayback: Bool = true) { self.publicPlayback = publicPlayback }
}

/// An `sk_` token's public description (never the token itself).
public struct ApiTokenSummary: Codable, Sendable, Equatable {
    public enum Scope: String, Codable, Sendable { case global, app }
    public var id: String
    public var name: String
    /// The first characters of the token, for recognising it in a list.
    public var prefix: String
    public var scope: Scope
    public var appId: String?
    public var tenantId: String?
    public var createdAt: String
    public var lastUsedAt: String?
    public var expiresAt: String?
    public var revokedAt: String?

    public init(
        id: String, name: String, prefix: String, scope: Scope, appId: String?, tenantId: String?,
        createdAt: String, lastUsedAt: String?, expiresAt: String?, revokedAt: String?
    ) {
        self.id = id
        self.name = name
        self.prefix = prefix
        self.scope = scope
        self.appId = appId
        self.tenantId = tenantId
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

/// The claims of a dashboard session JWT (HS256, signed with `STREAMHUB_JWT_SECRET`).
public struct SessionClaims: Codable, Sendable, Equatable {
    /// User id.
    public var sub: String
    /// The tenant the session acts in.
    public var tenantId: String?
    public var superadmin: Bool?
    /// Issuer: `STREAMHUB_PUBLIC_URL`.
    public var iss: String?
    /// Audience: `streamhub-dashboard`.
    public var aud: String?
    /// A unique id of this session token.
    public var jti: String?
    /// Issued at, seconds since the epoch.
    public var iat: Int64?
    /// Expiry, seconds since the epoch; required.
    public var exp: Int64
    public var nbf: Int64?
    /// Break-glass sessions only: which `ADMIN_USER`/`ADMIN_PASS` minted it (an HMAC under the JWT
    /// secret, so it tells nothing about the password); rotating the password ends them.
    public var bgv: String?

    public init(
        sub: String, tenantId: String?, superadmin: Bool? = nil, iss: String? = nil, aud: String? = nil, jti: String? = nil, iat: Int64?,
        exp: Int64, nbf: Int64? = nil, bgv: String? = nil
    ) {
        self.bgv = bgv
        self.sub = sub
        self.tenantId = tenantId
        self.superadmin = superadmin
        self.iss = iss
        self.aud = aud
        self.jti = jti
        self.iat = iat
        self.exp = exp
        self.nbf = nbf
    }

    /// The audience of every dashboard session.
    public static let audience = "streamhub-dashboard"
}

/// `POST /internal/v1/enforce` on authz: may `subject` do `action` on `resource` in `tenant`?
public struct EnforceRequest: Codable, Sendable, Equatable {
    public var subject: String
    public var tenant: String
    public var resource: String
    public var action: String
    public var explain: Bool?

    public init(subject: String, tenant: String, resource: String, action: String, explain: Bool? = nil) {
        self.subject = subject
        self.tenant = tenant
        self.resource = resource
        self.action = action
        self.explain = explain
    }
}

/// Authz's answer: the decision, the mode it was made in, and whether the caller must enforce it.
public struct EnforceDecision: Codable, Sendable, Equatable {
    public var allowed: Bool
    /// `off`, `log` or `on`.
    public var mode: String
    /// True only in `on` mode: a denial must be answered 403.
    public var enforced: Bool
    public var explain: [String]?

    public init(allowed: Bool, mode: String, enforced: Bool, explain: [String]? = nil) {
        self.allowed = allowed
        self.mode = mode
        self.enforced = enforced
        self.explain = explain
    }
}

/// `STREAMHUB_AUTHZ_ENFORCE`.
public enum EnforcementMode: String, Codable, Sendable, CaseIterable {
    /// No checks at all.
    case off
    /// Evaluate, log and count would-be denials, let the request through (the default).
    case log
    /// Denied → 403.
    case on
}

/// `GET /internal/v1/policy/version` (authz): the policy version this replica decides with and
/// its enforcement mode. The gateway's decision cache is valid for one (version, mode) pair.
public struct PolicyVersion: Codable, Sendable, Equatable {
    public var version: Int64
    public var mode: String

    public init(version: Int64, mode: String) {
        self.version = version
        self.mode = mode
    }
}
