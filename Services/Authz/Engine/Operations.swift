import Foundation

/// Go Casbin's management and RBAC API by name, for scripted setups (the conformance corpus,
/// policy imports): `AddPolicy`, `RemoveFilteredPolicy`, `AddRoleForUser`, `LoadFilteredPolicy`…
public enum CasbinOperations {
    /// Applies one operation. `args` are JSON-like values (strings, numbers, bools, arrays, objects).
    /// - Parameter setAdapter: called by `SetAdapter(path)` to point `loadPolicy()` elsewhere.
    /// - Returns: the operation's boolean result where it has one.
    @discardableResult
    public static func apply(_ name: String, _ args: [Any], to enforcer: Enforcer, setAdapter: (String) throws -> Void = { _ in }) throws -> Bool {
        func strings(_ values: [Any]) throws -> [String] {
            try values.flatMap { value -> [String] in
                if let s = value as? String { return [s] }
                if let list = value as? [Any] { return try strings(list) }
                throw CasbinError.invalidOperation("\(name): expected strings, got \(value)")
            }
        }
        func ruleList(_ value: Any) throws -> [[String]] {
            guard let list = value as? [Any] else { throw CasbinError.invalidOperation("\(name): expected a list of rules") }
            return try list.map { rule in
                guard let values = rule as? [Any] else { throw CasbinError.invalidOperation("\(name): expected a rule") }
                return try strings(values)
            }
        }
        func string(_ index: Int) throws -> String {
            guard index < args.count, let s = args[index] as? String else {
                throw CasbinError.invalidOperation("\(name): argument \(index + 1) must be a string")
            }
            return s
        }
        func int(_ index: Int) throws -> Int {
            if index < args.count, let i = args[index] as? Int { return i }
            if index < args.count, let d = args[index] as? Double, d == d.rounded() { return Int(d) }
            if index < args.count, let s = args[index] as? String, let i = Int(s) { return i }
            throw CasbinError.invalidOperation("\(name): argument \(index + 1) must be an integer")
        }
        func bool(_ index: Int) throws -> Bool {
            guard index < args.count, let b = args[index] as? Bool else {
                throw CasbinError.invalidOperation("\(name): argument \(index + 1) must be a boolean")
            }
            return b
        }
        func function(_ index: Int) throws -> @Sendable (String, String) -> Bool {
            let functionName = try string(index)
            guard let function = CasbinFunctions.named(functionName) else {
                throw CasbinError.invalidOperation("unknown matching function \(functionName)")
            }
            return function
        }
        let rest = { (from: Int) in Array(args.dropFirst(from)) }
        /// As in Go: the `p` field named `sub`, or the one `SetFieldIndex` chose; otherwise an error.
        func subjectIndex() throws -> Int {
            guard let index = enforcer.fieldIndex("p", "sub") else {
                throw CasbinError.invalidOperation("sub index is not set, please use SetFieldIndex() to set it")
            }
            return index
        }

        switch name {
        case "AddPolicy": return try enforcer.addPolicy("p", strings(args))
        case "AddPolicies": return try enforcer.addPolicies("p", ruleList(args.first ?? []))
        case "RemovePolicy": return try enforcer.removePolicy("p", strings(args))
        case "RemovePolicies": return try enforcer.removePolicies("p", ruleList(args.first ?? []))
        case "AddNamedPolicy": return try enforcer.addPolicy(string(0), strings(rest(1)))
        case "AddNamedPolicies": return try enforcer.addPolicies(string(0), ruleList(args.count > 1 ? args[1] : []))
        case "RemoveNamedPolicy": return try enforcer.removePolicy(string(0), strings(rest(1)))
        case "RemoveNamedPolicies": return try enforcer.removePolicies(string(0), ruleList(args.count > 1 ? args[1] : []))
        case "RemoveFilteredPolicy": return try enforcer.removeFilteredPolicy("p", fieldIndex: int(0), strings(rest(1)))
        case "RemoveFilteredNamedPolicy": return try enforcer.removeFilteredPolicy(string(0), fieldIndex: int(1), strings(rest(2)))
        case "AddGroupingPolicy": return try enforcer.addPolicy("g", strings(args))
        case "AddGroupingPolicies": return try enforcer.addPolicies("g", ruleList(args.first ?? []))
        case "RemoveGroupingPolicy": return try enforcer.removePolicy("g", strings(args))
        case "RemoveGroupingPolicies": return try enforcer.removePolicies("g", ruleList(args.first ?? []))
        case "RemoveFilteredGroupingPolicy": return try enforcer.removeFilteredPolicy("g", fieldIndex: int(0), strings(rest(1)))
        case "AddNamedGroupingPolicy": return try enforcer.addPolicy(string(0), strings(rest(1)))
        case "AddNamedGroupingPolicies": return try enforcer.addPolicies(string(0), ruleList(args.count > 1 ? args[1] : []))
        case "RemoveNamedGroupingPolicy": return try enforcer.removePolicy(string(0), strings(rest(1)))
        case "RemoveNamedGroupingPolicies": return try enforcer.removePolicies(string(0), ruleList(args.count > 1 ? args[1] : []))
        case "RemoveFilteredNamedGroupingPolicy": return try enforcer.removeFilteredPolicy(string(0), fieldIndex: int(1), strings(rest(2)))
        case "UpdatePolicy": return try enforcer.updatePolicy("p", strings([args.first ?? []]), strings([args.count > 1 ? args[1] : []]))
        case "UpdatePolicies": return try enforcer.updatePolicies("p", ruleList(args.first ?? []), ruleList(args.count > 1 ? args[1] : []))
        case "UpdateGroupingPolicy": return try enforcer.updatePolicy("g", strings([args.first ?? []]), strings([args.count > 1 ? args[1] : []]))
        case "UpdateGroupingPolicies": return try enforcer.updatePolicies("g", ruleList(args.first ?? []), ruleList(args.count > 1 ? args[1] : []))
        case "AddPermissionForUser": return try enforcer.addPolicy("p", [string(0)] + strings(rest(1)))
        case "AddPermissionsForUser":
            let user = try string(0)
            return try enforcer.addPolicies("p", rest(1).map { [user] + (try strings([$0])) })
        case "DeletePermission": return try enforcer.removeFilteredPolicy("p", fieldIndex: 1, strings(args))
        case "DeletePermissionForUser": return try enforcer.removePolicy("p", [string(0)] + strings(rest(1)))
        case "DeletePermissionsForUser": return try enforcer.removeFilteredPolicy("p", fieldIndex: subjectIndex(), [string(0)])
        case "AddRoleForUser", "AddRoleForUserInDomain": return try enforcer.addPolicy("g", strings(args))
        case "AddRolesForUser":
            let user = try string(0)
            let roles = try strings([args.count > 1 ? args[1] : []])
            let domain = try strings(rest(2))
            return try enforcer.addPolicies("g", roles.map { [user, $0] + domain })
        case "DeleteRoleForUser", "DeleteRoleForUserInDomain": return try enforcer.removePolicy("g", strings(args))
        case "DeleteRolesForUser", "DeleteRolesForUserInDomain":
            let user = try string(0)
            let domain = try strings(rest(1))
            return try enforcer.removeFilteredPolicy("g", fieldIndex: 0, domain.isEmpty ? [user] : [user, ""] + domain)
        case "DeleteUser":
            let user = try string(0)
            let groups = try enforcer.removeFilteredPolicy("g", fieldIndex: 0, [user])
            let policies = try enforcer.removeFilteredPolicy("p", fieldIndex: subjectIndex(), [user])
            return groups || policies
        case "DeleteRole":
            let role = try string(0)
            let groups = try enforcer.removeFilteredPolicy("g", fieldIndex: 1, [role])
            let policies = try enforcer.removeFilteredPolicy("p", fieldIndex: subjectIndex(), [role])
            return groups || policies
        case "ClearPolicy":
            enforcer.clearPolicy()
        case "LoadPolicy":
            try enforcer.loadPolicy()
        case "SetAdapter":
            try setAdapter(try string(0))
        case "LoadFilteredPolicy", "LoadIncrementalFilteredPolicy":
            guard let filter = args.first as? [String: Any] else { throw CasbinError.invalidOperation("\(name) needs a filter object") }
            var byType: [String: [String]] = [:]
            for (key, value) in filter { byType[key.uppercased()] = try strings([value]) }
            try enforcer.loadFilteredPolicy(PolicyFilter(byType: byType))
        case "EnableEnforce":
            enforcer.enforcementEnabled = try bool(0)
        case "EnableAutoSave":
            _ = try bool(0)
        case "EnableAutoBuildRoleLinks":
            enforcer.autoBuildRoleLinks = try bool(0)
        case "BuildRoleLinks":
            try enforcer.buildRoleLinks()
        case "SetFieldIndex":
            enforcer.setFieldIndex(ptype: try string(0), field: try string(1), index: try int(2))
        case "AddNamedMatchingFunc":
            enforcer.setRoleMatchingFunction(try string(0), try function(2))
        case "AddNamedDomainMatchingFunc":
            enforcer.setDomainMatchingFunction(try string(0), try function(2))
        default:
            throw CasbinError.invalidOperation("unknown operation \(name)")
        }
        return true
    }
}
