import CasbinEngine
import Foundation
import Hummingbird
import ServiceKit
import Shared

/// Public policy administration per tenant, reached through the gateway (`policy:read` /
/// `policy:write`). A tenant's rules live in its domain; the built-in role permissions (domain
/// `*`) are read-only here.
public struct PolicyAdminController<Context: RequestContext>: Sendable {
    let engine: PolicyEngine
    let store: any PolicyStore

    public init(engine: PolicyEngine, store: any PolicyStore) {
        self.engine = engine
        self.store = store
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("authz/policies", use: self.listPolicies)
        group.post("authz/policies", use: self.addPolicy)
        group.delete("authz/policies", use: self.removePolicy)
        group.get("authz/roles", use: self.listRoles)
        group.post("authz/roles", use: self.addRole)
        group.delete("authz/roles", use: self.removeRole)
        group.post("authz/check", use: self.check)
        group.post("authz/import", use: self.importCSV)
    }

    struct PolicyRule: Codable, Equatable {
        var subject: String
        var resource: String
        var action: String
    }

    struct RoleAssignment: Codable, Equatable {
        var user: String
        var role: String
    }

    struct PolicyListing: Encodable {
        var tenant: String
        var version: Int64
        var policies: [PolicyRule]
        var builtIn: [PolicyRule]
    }

    struct RoleListing: Encodable {
        var tenant: String
        var version: Int64
        var roles: [RoleAssignment]
    }

    struct Change: Encodable {
        var tenant: String
        var version: Int64
        var changed: Int
    }

    struct CheckRequest: Decodable {
        var subject: String
        var resource: String
        var action: String
    }

    struct CheckResponse: Encodable {
        var tenant: String
        var allowed: Bool
        /// The rule that decided, `[sub, dom, obj, act]`; empty when none did.
        var explain: [String]
        var roles: [String]
    }

    /// The tenant the caller administers: its own, or `?tenant=` for global callers.
    static func tenant(_ request: Request) throws -> String {
        let principal = try request.forwardedPrincipal()
        guard !principal.isAnonymous else { throw ServiceError.unauthorized }
        if principal.bypassesAuthorization {
            guard let tenant = request.uri.queryParameters["tenant"].map(String.init), !tenant.isEmpty else {
                throw ServiceError.badRequest("tenant query parameter is required for global credentials")
            }
            return try Self.checked(tenant, "tenant")
        }
        guard let tenant = principal.tenantId else { throw ServiceError(.forbidden, message: "The credential has no tenant") }
        return tenant
    }

    static func checked(_ value: String, _ name: String) throws -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw ServiceError.badRequest("\(name) must not be empty") }
        guard trimmed.utf8.count <= 256 else { throw ServiceError.badRequest("\(name) is limited to 256 bytes") }
        guard trimmed != "*" || name == "resource" || name == "action" else { throw ServiceError.badRequest("\(name) may not be *") }
        guard !trimmed.contains(",") && !trimmed.contains("\n") else { throw ServiceError.badRequest("\(name) may not contain , or line breaks") }
        return trimmed
    }

    static func queryRule(_ request: Request) throws -> PolicyRule {
        let q = request.uri.queryParameters
        return PolicyRule(
            subject: try Self.checked(q["subject"].map(String.init) ?? "", "subject"),
            resource: try Self.checked(q["resource"].map(String.init) ?? "", "resource"),
            action: try Self.checked(q["action"].map(String.init) ?? "", "action")
        )
    }

    @Sendable func listPolicies(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request)
        let rules = self.engine.rules("p")
        let own = rules.filter { $0.count == 4 && $0[1] == tenant }.map { PolicyRule(subject: $0[0], resource: $0[2], action: $0[3]) }
        let builtIn = rules.filter { $0.count == 4 && $0[1] == "*" }.map { PolicyRule(subject: $0[0], resource: $0[2], action: $0[3]) }
        return try JSONResponse.make(PolicyListing(tenant: tenant, version: self.engine.currentVersion, policies: own, builtIn: builtIn))
    }

    @Sendable func addPolicy(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request)
        let body = try await request.decodeJSON(PolicyRule.self, limit: 16 * 1024)
        let rule = PolicyRule(
            subject: try Self.checked(body.subject, "subject"), resource: try Self.checked(body.resource, "resource"),
            action: try Self.checked(body.action, "action")
        )
        return try await self.change(
            [.add(StoredRule(ptype: "p", values: [rule.subject, tenant, rule.resource, rule.action]))], tenant: tenant, status: .created)
    }

    @Sendable func removePolicy(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request)
        let rule = try Self.queryRule(request)
        return try await self.change(
            [.remove(StoredRule(ptype: "p", values: [rule.subject, tenant, rule.resource, rule.action]))], tenant: tenant, missingIs404: true)
    }

    @Sendable func listRoles(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request)
        let roles = self.engine.rules("g").filter { $0.count >= 3 && $0[2] == tenant }.map { RoleAssignment(user: $0[0], role: $0[1]) }
        return try JSONResponse.make(RoleListing(tenant: tenant, version: self.engine.currentVersion, roles: roles))
    }

    @Sendable func addRole(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request)
        let body = try await request.decodeJSON(RoleAssignment.self, limit: 16 * 1024)
        let user = try Self.checked(body.user, "user")
        let role = try Self.checked(body.role, "role")
        return try await self.change([.add(StoredRule(ptype: "g", values: [user, role, tenant]))], tenant: tenant, status: .created)
    }

    @Sendable func removeRole(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request)
        let q = request.uri.queryParameters
        let user = try Self.checked(q["user"].map(String.init) ?? "", "user")
        let role = try Self.checked(q["role"].map(String.init) ?? "", "role")
        return try await self.change([.remove(StoredRule(ptype: "g", values: [user, role, tenant]))], tenant: tenant, missingIs404: true)
    }

    @Sendable func check(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request)
        let body = try await request.decodeJSON(CheckRequest.self, limit: 16 * 1024)
        let subject = try Self.checked(body.subject, "subject")
        let decision: Decision
        do {
            decision = try self.engine.decide(
                [
                    .string(subject), .string(tenant), .string(try Self.checked(body.resource, "resource")),
                    .string(try Self.checked(body.action, "action")),
                ]
            )
        } catch let error as CasbinError {
            throw ServiceError(.unprocessableContent, message: "The policy could not be evaluated: \(error)")
        }
        let roles = self.engine.lock.withLock { self.engine.enforcer.implicitRolesForUser(subject, domain: tenant) }
        return try JSONResponse.make(CheckResponse(tenant: tenant, allowed: decision.allowed, explain: decision.explain, roles: roles))
    }

    /// Imports Casbin CSV (`p, sub, dom, obj, act` / `g, user, role, dom`) into the tenant. Every
    /// line must name the caller's tenant as its domain; the whole file is refused otherwise.
    @Sendable func importCSV(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request)
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: 1 << 20)
        } catch {
            throw ServiceError(.contentTooLarge, message: "Request body is larger than 1048576 bytes")
        }
        let lines: [PolicyCSV.Line]
        do {
            lines = try PolicyCSV.parse(String(buffer: buffer), file: "import")
        } catch let error as CasbinError {
            throw ServiceError.badRequest("\(error)")
        }
        guard !lines.isEmpty else { throw ServiceError.badRequest("no rules in the import") }
        var changes: [PolicyChange] = []
        for line in lines {
            switch line.type {
            case "p":
                guard line.values.count == 4 else {
                    throw ServiceError.badRequest("import:\(line.lineNumber): p rules need 4 values (sub, dom, obj, act)")
                }
                guard line.values[1] == tenant else { throw ServiceError.badRequest("import:\(line.lineNumber): domain must be \(tenant)") }
            case "g":
                guard line.values.count == 3 else {
                    throw ServiceError.badRequest("import:\(line.lineNumber): g rules need 3 values (user, role, dom)")
                }
                guard line.values[2] == tenant else { throw ServiceError.badRequest("import:\(line.lineNumber): domain must be \(tenant)") }
            default:
                throw ServiceError.badRequest("import:\(line.lineNumber): unknown rule type \(line.type)")
            }
            for value in line.values where value.isEmpty || value.utf8.count > 256 {
                throw ServiceError.badRequest("import:\(line.lineNumber): values must be 1 to 256 bytes")
            }
            changes.append(.add(StoredRule(ptype: line.type, values: line.values)))
        }
        return try await self.change(changes, tenant: tenant, status: .ok)
    }

    func change(_ changes: [PolicyChange], tenant: String, status: HTTPResponse.Status = .ok, missingIs404: Bool = false) async throws -> Response {
        let result = try await self.store.apply(changes)
        if missingIs404 && result.changed == 0 {
            throw ServiceError(.notFound, message: "No such rule in tenant \(tenant)")
        }
        try await self.engine.refresh(force: true)
        return try JSONResponse.make(Change(tenant: tenant, version: result.version, changed: result.changed), status: status)
    }
}
