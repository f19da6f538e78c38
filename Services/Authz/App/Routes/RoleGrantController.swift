import Foundation
import Hummingbird
import ServiceKit
import ServiceStorage
import Shared

/// Role assignments for other services (internal token): identity makes a new user the owner of
/// their tenant at sign-up and reads a user's roles for `/auth/me`.
public struct RoleGrantController<Context: ServiceRequestContextProtocol>: Sendable {
    let engine: PolicyEngine
    let mode: EnforcementMode

    public init(engine: PolicyEngine, mode: EnforcementMode) {
        self.engine = engine
        self.mode = mode
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("policy/version", use: self.version)
        group.post("roles", use: self.grant)
        group.post("roles/of", use: self.rolesOf)
        group.post("roles/grantable", use: self.grantable)
        group.post("roles/revoke", use: self.revokeAll)
    }

    /// `GET /internal/v1/policy/version`: `{version, mode}`, polled by the gateway's decision cache.
    @Sendable func version(_ request: Request, context: Context) async throws -> Response {
        try JSONResponse.make(PolicyVersion(version: self.engine.currentVersion, mode: self.mode.rawValue))
    }

    /// `POST /internal/v1/roles/revoke {subject, tenant}`: every role of `subject` in `tenant` goes
    /// (a member removed from a tenant). Idempotent.
    @Sendable func revokeAll(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(SubjectInTenant.self, limit: 16 * 1024)
        let subject = try Identifier.validate(body.subject, field: "subject")
        let tenant = try Identifier.validate(body.tenant, field: "tenant")
        let changes = self.engine.assignments(of: subject, in: tenant).map {
            PolicyChange.remove(StoredRule(ptype: "g", values: $0))
        }
        var result: (version: Int64, changed: Int) = (self.engine.currentVersion, 0)
        if !changes.isEmpty {
            do {
                result = try await self.engine.apply(changes)
            } catch let error as StorageError {
                throw error.serviceError
            }
        }
        return try JSONResponse.make(PolicyChangeResult(tenant: tenant, version: result.version, changed: result.changed))
    }

    /// `POST /internal/v1/roles {subject, role, tenant}`: idempotent like the public API.
    @Sendable func grant(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(RoleGrant.self, limit: 16 * 1024)
        let subject = try Identifier.validate(body.subject, field: "subject")
        let role = try Identifier.validate(body.role, field: "role")
        let tenant = try Identifier.validate(body.tenant, field: "tenant")
        guard self.engine.knownRoles(in: tenant).contains(role) else { throw ServiceError.badRequest("unknown role \(role)") }
        let result: (version: Int64, changed: Int)
        do {
            result = try await self.engine.apply([.add(StoredRule(ptype: "g", values: [subject, role, tenant]))])
        } catch let error as StorageError {
            throw error.serviceError
        }
        return try JSONResponse.make(PolicyChangeResult(tenant: tenant, version: result.version, changed: result.changed))
    }

    /// `POST /internal/v1/roles/grantable {granter?, role, tenant}`: identity asks before it invites
    /// someone with a role. 400 for a role the tenant does not have, 403 for one above the granter's
    /// highest rank (the rule `/authz/roles` applies); a nil granter is a global caller.
    @Sendable func grantable(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(GrantableRoleRequest.self, limit: 16 * 1024)
        let role = try Identifier.validate(body.role, field: "role")
        let tenant = try Identifier.validate(body.tenant, field: "tenant")
        let known = self.engine.knownRoles(in: tenant)
        guard known.contains(role) else {
            throw ServiceError.badRequest("unknown role \(role); known roles: \(known.sorted().joined(separator: ", "))")
        }
        if let granter = body.granter {
            let subject = try Identifier.validate(granter, field: "granter")
            let own = self.engine.implicitRoles(of: subject, in: tenant).map { RoleRanks.builtIn[$0] ?? 0 }.max() ?? 0
            guard RoleRanks.rank(of: role) <= own else {
                throw ServiceError(.forbidden, message: "A role can be granted only up to your own (\(role) is above it)")
            }
        }
        return try JSONResponse.make(EmptyAnswer())
    }

    /// `POST /internal/v1/roles/of {subject, tenants}` → `{roles: {tenant: [role]}}`.
    @Sendable func rolesOf(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(SubjectRolesRequest.self, limit: 256 * 1024)
        let subject = try Identifier.validate(body.subject, field: "subject")
        guard body.tenants.count <= 1000 else { throw ServiceError.badRequest("at most 1000 tenants") }
        var roles: [String: [String]] = [:]
        for tenant in body.tenants {
            roles[try Identifier.validate(tenant, field: "tenants")] = self.engine.implicitRoles(of: subject, in: tenant)
        }
        return try JSONResponse.make(SubjectRoles(roles: roles))
    }
}
