/// Who is calling, as the gateway resolved it.
///
/// The gateway is the only component that creates a principal from a credential; it forwards it to
/// upstream services in ``StreamHubHeader/principal`` (base64url JSON), after stripping any copy a
/// client sent.
public struct Principal: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        case anonymous
        /// An `sk_` API token.
        case apiToken
        /// A dashboard session (JWT).
        case user
    }

    public enum Scope: String, Codable, Sendable {
        /// Full access, every tenant: the platform operator's credential.
        case global
        /// Bound to one app and that app's tenant.
        case app
        /// A member of one tenant.
        case tenant
        /// No credential.
        case none
    }

    public var kind: Kind
    public var scope: Scope
    /// Stable subject id used in policy checks: `token:<id>`, `user:<id>` or `anonymous`.
    public var subject: String
    public var tenantId: String?
    public var appId: String?
    public var superadmin: Bool

    public init(kind: Kind, scope: Scope, subject: String, tenantId: String? = nil, appId: String? = nil, superadmin: Bool = false) {
        self.kind = kind
        self.scope = scope
        self.subject = subject
        self.tenantId = tenantId
        self.appId = appId
        self.superadmin = superadmin
    }

    public static let anonymous = Principal(kind: .anonymous, scope: .none, subject: "anonymous")

    /// Superadmin sessions and global-scope tokens skip tenant scoping and Casbin.
    public var bypassesAuthorization: Bool {
        self.superadmin || (self.kind == .apiToken && self.scope == .global)
    }

    public var isAnonymous: Bool { self.kind == .anonymous }
}
