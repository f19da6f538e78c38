/// A tenant's policy rule as the policy routes show it: `p, subject, <tenant>, resource, action`.
public struct PolicyRule: Codable, Sendable, Equatable {
    public var subject: String
    public var resource: String
    public var action: String

    public init(subject: String, resource: String, action: String) {
        self.subject = subject
        self.resource = resource
        self.action = action
    }
}

/// A role assignment in a tenant: `g, user, role, <tenant>`.
public struct RoleAssignment: Codable, Sendable, Equatable {
    public var user: String
    public var role: String

    public init(user: String, role: String) {
        self.user = user
        self.role = role
    }
}

/// `GET /authz/policies`: the tenant's own rules and the read-only built-in role permissions.
public struct PolicyListing: Codable, Sendable, Equatable {
    public var tenant: String
    public var version: Int64
    public var policies: [PolicyRule]
    public var builtIn: [PolicyRule]

    public init(tenant: String, version: Int64, policies: [PolicyRule], builtIn: [PolicyRule]) {
        self.tenant = tenant
        self.version = version
        self.policies = policies
        self.builtIn = builtIn
    }
}

/// `GET /authz/roles`: the tenant's role assignments.
public struct RoleListing: Codable, Sendable, Equatable {
    public var tenant: String
    public var version: Int64
    public var roles: [RoleAssignment]

    public init(tenant: String, version: Int64, roles: [RoleAssignment]) {
        self.tenant = tenant
        self.version = version
        self.roles = roles
    }
}

/// `POST /authz/check`: the question.
public struct PolicyCheckRequest: Codable, Sendable, Equatable {
    public var subject: String
    public var resource: String
    public var action: String

    public init(subject: String, resource: String, action: String) {
        self.subject = subject
        self.resource = resource
        self.action = action
    }
}

/// `POST /authz/check`: the answer, the rule that decided and the subject's roles in the tenant.
public struct PolicyCheckResult: Codable, Sendable, Equatable {
    public var tenant: String
    public var allowed: Bool
    /// The rule that decided, `[sub, dom, obj, act]`; empty when none did.
    public var explain: [String]
    public var roles: [String]

    public init(tenant: String, allowed: Bool, explain: [String], roles: [String]) {
        self.tenant = tenant
        self.allowed = allowed
        self.explain = explain
        self.roles = roles
    }
}
