import CasbinEngine
import Foundation
import Hummingbird
import ServiceKit
import ServiceStorage
import Shared

/// Public policy administration per tenant, reached through the gateway (`policy:read` /
/// `policy:write`). A tenant's rules live in its domain; the built-in role permissions (domain
/// `*`) are read-only here.
public struct PolicyAdminController<Context: ServiceRequestContextProtocol>: Sendable {
    let engine: PolicyEngine
    let tenants: TenantDirectory

    public init(engine: PolicyEngine, tenants: TenantDirectory) {
        self.engine = engine
        self.tenants = tenants
    }

    /// The tenant a write goes to: the caller's own, or — for a global caller — one that exists
    /// (a typo in `?tenant=` is a 404, never a new domain full of rules).
    func writeTenant(_ request: Request, context: Context) async throws -> String {
        let tenant = try Self.tenant(request, context: context)
        if try context.caller().bypassesAuthorization {
            try await self.tenants.requireExisting(tenant, requestID: context.requestID)
        }
        return tenant
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

    /// The tenant the caller administers: its own (naming another with `?tenant=` is a 403), or
    /// `?tenant=` for global callers.
    static func tenant(_ request: Request, context: Context) throws -> String {
        let principal = try context.caller()
        let named = request.uri.queryParameters["tenant"].map(String.init)
        if principal.bypassesAuthorization {
            guard let named, !named.isEmpty else {
                throw ServiceError.badRequest("tenant query parameter is required for global credentials")
            }
            return try Identifier.validate(named, field: "tenant")
        }
        guard let tenant = principal.tenantId else { throw ServiceError(.forbidden, message: "The credential has no tenant") }
        if let named, named != tenant {
            throw ServiceError(.forbidden, message: "This credential administers tenant \(tenant) only")
        }
        return tenant
    }

    static func query(_ request: Request, _ name: String) throws -> String {
        try Identifier.validate(request.uri.queryParameters[Substring(name)].map(String.init) ?? "", field: name)
    }

    static func queryRule(_ request: Request) throws -> PolicyRule {
        PolicyRule(
            subject: try Self.query(request, "subject"), resource: try Self.query(request, "resource"), action: try Self.query(request, "action"))
    }

    static func validated(_ rule: PolicyRule) throws -> PolicyRule {
        try Identifier.validate(rule.subject, field: "subject")
        try Identifier.validate(rule.resource, field: "resource", wildcard: true)
        try Identifier.validate(rule.action, field: "action", wildcard: true)
        return rule
    }

    /// A role assignment may name only a role that exists (has a permission in the tenant or among
    /// the built-ins, or a role of its own) or one that `alsoDefined` gives permissions, and never
    /// assigns a role to itself.
    /// `known` is the tenant's known roles when the caller already read them (an import reads them
    /// once, not per line).
    func checkAssignment(
        user: String, role: String, tenant: String, known: Set<String>? = nil, alsoDefined: Set<String> = [], line: String = ""
    ) throws {
        guard user != role else { throw ServiceError.badRequest("\(line)a role cannot be assigned to itself (\(role))") }
        let known = known ?? self.engine.knownRoles(in: tenant)
        guard known.contains(role) || alsoDefined.contains(role) else {
            throw ServiceError.badRequest("\(line)unknown role \(role); known roles: \(known.sorted().joined(separator: ", "))")
        }
    }

    /// The built-in roles by rank. A caller grants or removes roles only up to its own rank; a
    /// role of the tenant's own making ranks as `admin` (its permissions are the tenant's to write).
    static var ranks: [String: Int] { RoleRanks.builtIn }

    static func rank(of role: String) -> Int { Self.ranks[role] ?? 3 }

    /// The highest rank the caller holds in `tenant` (directly or through other roles); global
    /// callers outrank every role.
    func rank(of principal: Principal, in tenant: String) -> Int {
        if principal.bypassesAuthorization { return Int.max }
        return self.engine.implicitRoles(of: principal.subject, in: tenant).map { Self.ranks[$0] ?? 0 }.max() ?? 0
    }

    /// Refuses (403) a grant or a removal of `role` by a caller of lower rank, and any removal of
    /// `owner` but a global caller's: an admin can neither make itself owner nor lock the owner out
    /// (ownership moves only by transfer). Applied in every enforcement mode — it is the role
    /// hierarchy, not a policy decision.
    func checkRank(_ role: String, removing: Bool, context: Context, tenant: String, line: String = "") throws {
        let principal = try context.caller()
        if principal.bypassesAuthorization { return }
        if removing && role == "owner" {
            throw ServiceError(.forbidden, message: "\(line)The owner role is removed only by a platform operator or an ownership transfer")
        }
        guard Self.rank(of: role) <= self.rank(of: principal, in: tenant) else {
            throw ServiceError(.forbidden, message: "\(line)A role can be \(removing ? "removed" : "granted") only up to your own (\(role) is above it)")
        }
    }

    @Sendable func listPolicies(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request, context: context)
        let rules = self.engine.rules("p")
        let own = rules.filter { $0.count == 4 && $0[1] == tenant }.map { PolicyRule(subject: $0[0], resource: $0[2], action: $0[3]) }
        let builtIn = rules.filter { $0.count == 4 && $0[1] == "*" }.map { PolicyRule(subject: $0[0], resource: $0[2], action: $0[3]) }
        return try JSONResponse.make(PolicyListing(tenant: tenant, version: self.engine.currentVersion, policies: own, builtIn: builtIn))
    }

    @Sendable func addPolicy(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.writeTenant(request, context: context)
        let rule = try Self.validated(try await request.decodeJSON(PolicyRule.self, limit: 16 * 1024))
        return try await self.change(
            [.add(StoredRule(ptype: "p", values: [rule.subject, tenant, rule.resource, rule.action]))], tenant: tenant, status: .created)
    }

    @Sendable func removePolicy(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.writeTenant(request, context: context)
        let rule = try Self.queryRule(request)
        return try await self.change([.remove(StoredRule(ptype: "p", values: [rule.subject, tenant, rule.resource, rule.action]))], tenant: tenant)
    }

    @Sendable func listRoles(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request, context: context)
        let roles = self.engine.rules("g").filter { $0.count >= 3 && $0[2] == tenant }.map { RoleAssignment(user: $0[0], role: $0[1]) }
        return try JSONResponse.make(RoleListing(tenant: tenant, version: self.engine.currentVersion, roles: roles))
    }

    @Sendable func addRole(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.writeTenant(request, context: context)
        let body = try await request.decodeJSON(RoleAssignment.self, limit: 16 * 1024)
        let user = try Identifier.validate(body.user, field: "user")
        let role = try Identifier.validate(body.role, field: "role")
        try self.checkAssignment(user: user, role: role, tenant: tenant)
        try self.checkRank(role, removing: false, context: context, tenant: tenant)
        return try await self.change([.add(StoredRule(ptype: "g", values: [user, role, tenant]))], tenant: tenant, status: .created)
    }

    @Sendable func removeRole(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.writeTenant(request, context: context)
        let user = try Self.query(request, "user")
        let role = try Self.query(request, "role")
        try self.checkRank(role, removing: true, context: context, tenant: tenant)
        return try await self.change([.remove(StoredRule(ptype: "g", values: [user, role, tenant]))], tenant: tenant)
    }

    @Sendable func check(_ request: Request, context: Context) async throws -> Response {
        let tenant = try Self.tenant(request, context: context)
        let body = try await request.decodeJSON(PolicyCheckRequest.self, limit: 16 * 1024)
        let subject = try Identifier.validate(body.subject, field: "subject")
        let resource = try Identifier.validate(body.resource, field: "resource", wildcard: true)
        let action = try Identifier.validate(body.action, field: "action", wildcard: true)
        let decision: Decision
        do {
            decision = try self.engine.decide([.string(subject), .string(tenant), .string(resource), .string(action)])
        } catch let error as CasbinError {
            throw ServiceError(.unprocessableContent, message: "The policy could not be evaluated: \(error)")
        }
        let roles = self.engine.implicitRoles(of: subject, in: tenant)
        return try JSONResponse.make(PolicyCheckResult(tenant: tenant, allowed: decision.allowed, explain: decision.explain, roles: roles))
    }

    /// Imports Casbin CSV (`p, sub, dom, obj, act` / `g, user, role, dom`) into the tenant. Every
    /// line must name the caller's tenant as its domain; the whole file is refused otherwise.
    @Sendable func importCSV(_ request: Request, context: Context) async throws -> Response {
        let tenant = try await self.writeTenant(request, context: context)
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
        var assignments: [(line: PolicyCSV.Line, user: String, role: String)] = []
        var defined: Set<String> = []
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
            let names = line.type == "p" ? ["subject", "tenant", "resource", "action"] : ["user", "role", "tenant"]
            for (value, name) in zip(line.values, names) {
                if let problem = Identifier.problem(value, wildcard: name == "resource" || name == "action") {
                    throw ServiceError.badRequest("import:\(line.lineNumber): \(name) \(problem)")
                }
            }
            if line.type == "p" {
                defined.insert(line.values[0])
            } else {
                assignments.append((line, line.values[0], line.values[1]))
            }
            changes.append(.add(StoredRule(ptype: line.type, values: line.values)))
        }
        // Roles the import itself defines, or gives roles of their own, may be assigned by it.
        defined.formUnion(assignments.map(\.user))
        defined = defined.filter { !PolicyEngine.isCaller($0) }
        let known = self.engine.knownRoles(in: tenant)
        for assignment in assignments {
            try self.checkAssignment(
                user: assignment.user, role: assignment.role, tenant: tenant, known: known, alsoDefined: defined,
                line: "import:\(assignment.line.lineNumber): ")
            try self.checkRank(assignment.role, removing: false, context: context, tenant: tenant, line: "import:\(assignment.line.lineNumber): ")
        }
        return try await self.change(changes, tenant: tenant, status: .ok)
    }

    /// Applies `changes` through the engine. Adding what exists and removing what does not both
    /// succeed with `changed: 0`, so retries are harmless.
    func change(_ changes: [PolicyChange], tenant: String, status: HTTPResponse.Status = .ok) async throws -> Response {
        let result: (version: Int64, changed: Int)
        do {
            result = try await self.engine.apply(changes)
        } catch let error as StorageError {
            throw error.serviceError
        }
        return try JSONResponse.make(PolicyChangeResult(tenant: tenant, version: result.version, changed: result.changed), status: status)
    }
}

/// The built-in roles by rank (``PolicyAdminController/checkRank(_:removing:context:tenant:line:)``).
enum RoleRanks {
    static let builtIn: [String: Int] = ["owner": 4, "admin": 3, "member": 2, "viewer": 1]
    /// A role of the tenant's own making ranks as `admin`.
    static func rank(of role: String) -> Int { Self.builtIn[role] ?? 3 }
}
