import Foundation

/// Which definitions an enforce call uses (Go's `EnforceContext`).
public struct EnforceContext: Sendable, Hashable {
    public var rtype: String
    public var ptype: String
    public var etype: String
    public var mtype: String

    public init(rtype: String = "r", ptype: String = "p", etype: String = "e", mtype: String = "m") {
        self.rtype = rtype
        self.ptype = ptype
        self.etype = etype
        self.mtype = mtype
    }

    public static let standard = EnforceContext()
}

/// A decision and the rule that made it (Go's `EnforceEx`); `explain` is empty when no rule decided.
public struct Decision: Sendable, Equatable {
    public var allowed: Bool
    public var explain: [String]

    public init(allowed: Bool, explain: [String]) {
        self.allowed = allowed
        self.explain = explain
    }
}

/// Keeps only policy lines that match a filter (Go's file-adapter `Filter`): per type, a prefix of
/// values where `""` is a wildcard.
public struct PolicyFilter: Sendable, Equatable {
    public var byType: [String: [String]]
    public init(byType: [String: [String]]) { self.byType = byType }

    func keeps(_ line: PolicyCSV.Line) -> Bool {
        guard let filter = self.byType[line.type.uppercased()] else { return true }
        guard line.values.count >= filter.count else { return false }
        for (index, value) in filter.enumerated() where !value.isEmpty && value.trimmingCharacters(in: .whitespaces) != line.values[index] {
            return false
        }
        return true
    }
}

/// A Casbin-compatible enforcer: model + policy + role managers, with management operations
/// matching Go Casbin 2.60's semantics. Not thread-safe; wrap it (see `SynchronizedEnforcer`).
public final class Enforcer {
    public let model: CasbinModel
    /// Rules per type (`p`, `p2`, `g`, `g2`…), in evaluation order.
    /// Every write below keeps `membership` right: one added or removed rule updates its set in
    /// place (a grant costs its own rule, not a copy of the policy); wholesale changes drop it.
    public private(set) var rules: [String: [[String]]] = [:]
    /// Per-type rule sets for O(1) `hasPolicy`, built lazily.
    var membership: [String: Set<[String]>] = [:]
    var roleManagers: [String: RoleManager] = [:]
    var fieldIndexes: [String: [String: Int]] = [:]
    public var enforcementEnabled = true
    public var autoBuildRoleLinks = true
    /// Where `loadPolicy()` reads from; nil = an empty policy.
    public var policySource: (@Sendable () throws -> String)?
    public var policySourceName = "policy"
    public private(set) var isFiltered = false

    var compiledMatchers: [EnforceContext: CompiledMatcher] = [:]
    var standardMatcher: CompiledMatcher?
    /// The index of the standard context, kept outside the dictionary for the same reason.
    var standardIndex: RuleIndex?
    var evalCache: [String: Expr] = [:]
    /// Rule indexes per enforce context; dropped for a policy type whenever its rules change.
    var indexes: [EnforceContext: RuleIndex] = [:]

    /// Creates an enforcer and loads the policy from `policySource` (if any).
    public init(model: CasbinModel, policySource: (@Sendable () throws -> String)? = nil, policySourceName: String = "policy") throws {
        self.model = model
        for key in model.roleDefinitions.keys {
            self.roleManagers[key] = RoleManager()
        }
        self.policySource = policySource
        self.policySourceName = policySourceName
        try self.loadPolicy()
    }

    // MARK: Loading

    /// Replaces the policy with what `policySource` holds; on failure the old policy stays.
    public func loadPolicy() throws {
        try self.load(filter: nil)
        self.isFiltered = false
    }

    /// Loads only the lines `filter` keeps.
    public func loadFilteredPolicy(_ filter: PolicyFilter) throws {
        try self.load(filter: filter)
        self.isFiltered = true
    }

    func load(filter: PolicyFilter?) throws {
        let text = try self.policySource?() ?? ""
        try self.install(lines: try PolicyCSV.parse(text, file: self.policySourceName), filter: filter)
    }

    /// Replaces the policy with `lines` (type + values), e.g. rules read from a database.
    public func replacePolicy(_ lines: [PolicyCSV.Line]) throws {
        try self.install(lines: lines, filter: nil)
        self.isFiltered = false
    }

    func install(lines: [PolicyCSV.Line], filter: PolicyFilter?) throws {
        var rules: [String: [[String]]] = [:]
        var seen: [String: Set<[String]>] = [:]
        for line in lines {
            guard self.isKnownType(line.type) else {
                throw CasbinError.policy(
                    file: self.policySourceName, line: line.lineNumber, reason: "policy type \(line.type) is not defined in the model")
            }
            if let filter, !filter.keeps(line) { continue }
            if let count = self.model.roleDefinitions[line.type], line.values.count < count {
                throw CasbinError.policy(
                    file: self.policySourceName, line: line.lineNumber, reason: "\(line.type) rule needs \(count) values, has \(line.values.count)"
                )
            }
            guard seen[line.type, default: []].insert(line.values).inserted else { continue }
            rules[line.type, default: []].append(line.values)
        }
        self.rules = rules
        self.membership.removeAll()
        self.sortByPriority()
        self.sortBySubjectHierarchy()
        self.indexes.removeAll()
        self.standardIndex = nil
        try self.buildRoleLinks()
    }

    func isKnownType(_ type: String) -> Bool {
        self.model.policyDefinitions[type] != nil || self.model.roleDefinitions[type] != nil
    }

    /// Rebuilds every role manager from the current `g` rules.
    public func buildRoleLinks() throws {
        for (key, manager) in self.roleManagers {
            manager.clear()
            for rule in self.rules[key] ?? [] {
                try self.link(key, rule, add: true, manager: manager)
            }
        }
    }

    func link(_ key: String, _ rule: [String], add: Bool, manager: RoleManager? = nil) throws {
        guard let manager = manager ?? self.roleManagers[key], let count = self.model.roleDefinitions[key] else { return }
        guard rule.count >= count else { throw CasbinError.invalidOperation("\(key) rule needs \(count) values") }
        let domain = count >= 3 ? rule[2] : ""
        if add {
            manager.addLink(rule[0], rule[1], domain: domain)
        } else {
            manager.deleteLink(rule[0], rule[1], domain: domain)
        }
    }

    func fieldIndex(_ ptype: String, _ field: String) -> Int? {
        if let explicit = self.fieldIndexes[ptype]?[field] { return explicit }
        return self.model.policyDefinitions[ptype]?.firstIndex(of: field)
    }

    /// `SetFieldIndex(ptype, "priority" | "sub", index)`.
    public func setFieldIndex(ptype: String, field: String, index: Int) {
        self.fieldIndexes[ptype, default: [:]][field] = index
    }

    func sortByPriority() {
        for (ptype, list) in self.rules where self.model.policyDefinitions[ptype] != nil {
            guard let index = self.fieldIndex(ptype, "priority") else { continue }
            let keyed = list.enumerated().map { (offset, rule) in (Int(index < rule.count ? rule[index] : "") ?? 0, offset, rule) }
            self.rules[ptype] = keyed.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
        }
    }

    func sortBySubjectHierarchy() {
        guard self.model.effects["e"] == .subjectPriority else { return }
        var depth: [String: Int] = [:]
        var children: [String: [String]] = [:]
        for rule in self.rules["g"] ?? [] where rule.count >= 2 {
            let domain = rule.count > 2 ? rule[2] : ""
            let child = domain + "::" + rule[0]
            let parent = domain + "::" + rule[1]
            children[parent, default: []].append(child)
            if depth[parent] == nil { depth[parent] = 0 }
            depth[child] = 1
        }
        for (root, value) in depth where value == 0 {
            var level = 0
            var queue = [root]
            var guardCount = 0
            while !queue.isEmpty && guardCount < 1000 {
                var next: [String] = []
                for node in queue {
                    depth[node] = level
                    next.append(contentsOf: children[node] ?? [])
                }
                queue = next
                level += 1
                guardCount += 1
            }
        }
        for (ptype, list) in self.rules where self.model.policyDefinitions[ptype] != nil {
            let tokens = self.model.policyDefinitions[ptype] ?? []
            let domainIndex = tokens.firstIndex(of: "dom")
            let subjectIndex = self.fieldIndex(ptype, "sub") ?? 0
            let keyed = list.enumerated().map { (offset, rule) -> (Int, Int, [String]) in
                let domain = domainIndex.flatMap { $0 < rule.count ? rule[$0] : nil } ?? ""
                let subject = subjectIndex < rule.count ? rule[subjectIndex] : ""
                return (depth[domain + "::" + subject] ?? 0, offset, rule)
            }
            self.rules[ptype] = keyed.sorted { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 < $1.1 }.map(\.2)
        }
    }

    /// Drops the per-subject role closures and domain views (the only caches keyed by request
    /// values); decisions are unchanged. Benchmarks use it to measure decisions without them.
    public func invalidateCaches() {
        for manager in self.roleManagers.values { manager.invalidateCaches() }
    }

    // MARK: Matching functions

    /// `AddNamedMatchingFunc(ptype, name, fn)`: pattern matching of role names in `g`.
    public func setRoleMatchingFunction(_ roleType: String, _ function: (@Sendable (String, String) -> Bool)?) {
        self.roleManagers[roleType]?.matchingFunction = function
        self.indexes.removeAll()
        self.standardIndex = nil
    }

    /// `AddNamedDomainMatchingFunc(ptype, name, fn)`: pattern matching of domains in `g`.
    public func setDomainMatchingFunction(_ roleType: String, _ function: (@Sendable (String, String) -> Bool)?) {
        self.roleManagers[roleType]?.domainMatchingFunction = function
    }

    // MARK: Policy management

    func isRoleType(_ type: String) -> Bool { self.model.roleDefinitions[type] != nil }

    func checkType(_ type: String) throws {
        guard self.isKnownType(type) else { throw CasbinError.invalidOperation("policy type \(type) is not defined in the model") }
    }

    func dropIndexes(_ type: String) {
        self.indexes = self.indexes.filter { $0.key.ptype != type }
        if type == "p" { self.standardIndex = nil }
    }

    public func hasPolicy(_ type: String, _ rule: [String]) -> Bool {
        if let set = self.membership[type] { return set.contains(rule) }
        let set = Set(self.rules[type] ?? [])
        self.membership[type] = set
        return set.contains(rule)
    }

    /// Adds one rule; false when it already exists.
    @discardableResult
    public func addPolicy(_ type: String, _ rule: [String]) throws -> Bool {
        try self.addPolicies(type, [rule])
    }

    /// Adds rules all-or-nothing: false (and nothing added) when any already exists.
    @discardableResult
    public func addPolicies(_ type: String, _ newRules: [[String]]) throws -> Bool {
        try self.checkType(type)
        if let count = self.model.roleDefinitions[type], newRules.contains(where: { $0.count < count }) {
            throw CasbinError.invalidOperation("\(type) rule needs \(count) values")
        }
        var seen = Set<[String]>()
        for rule in newRules {
            if self.hasPolicy(type, rule) || !seen.insert(rule).inserted { return false }
        }
        for rule in newRules {
            self.insert(type, rule)
            if self.isRoleType(type) && self.autoBuildRoleLinks {
                try self.link(type, rule, add: true)
            }
        }
        self.dropIndexes(type)
        return true
    }

    /// Appends, keeping priority order when the type has a priority field.
    func insert(_ type: String, _ rule: [String]) {
        if self.model.policyDefinitions[type] != nil, let index = self.fieldIndex(type, "priority"), index < rule.count,
            let priority = Int(rule[index])
        {
            let list = self.rules[type] ?? []
            var position = list.count
            while position > 0 {
                let previous = list[position - 1]
                guard index < previous.count, let other = Int(previous[index]), other > priority else { break }
                position -= 1
            }
            self.rules[type, default: []].insert(rule, at: position)
        } else {
            self.rules[type, default: []].append(rule)
        }
        self.membership[type]?.insert(rule)
    }

    @discardableResult
    public func removePolicy(_ type: String, _ rule: [String]) throws -> Bool {
        try self.removePolicies(type, [rule])
    }

    /// Removes rules all-or-nothing: false when any does not exist.
    @discardableResult
    public func removePolicies(_ type: String, _ old: [[String]]) throws -> Bool {
        try self.checkType(type)
        for rule in old where !self.hasPolicy(type, rule) { return false }
        for rule in old {
            if let index = self.rules[type]?.firstIndex(of: rule) {
                self.rules[type]?.remove(at: index)
                self.membership[type]?.remove(rule)
                if self.isRoleType(type) && self.autoBuildRoleLinks { try self.link(type, rule, add: false) }
            }
        }
        self.dropIndexes(type)
        return true
    }

    /// Removes every rule whose values from `fieldIndex` on equal `values` (`""` = any).
    @discardableResult
    public func removeFilteredPolicy(_ type: String, fieldIndex: Int, _ values: [String]) throws -> Bool {
        try self.checkType(type)
        guard fieldIndex >= 0 else { throw CasbinError.invalidOperation("field index must be ≥ 0") }
        var removed: [[String]] = []
        var kept: [[String]] = []
        for rule in self.rules[type] ?? [] {
            var matches = true
            for (offset, value) in values.enumerated() where !value.isEmpty {
                let index = fieldIndex + offset
                if index >= rule.count || rule[index] != value {
                    matches = false
                    break
                }
            }
            if matches { removed.append(rule) } else { kept.append(rule) }
        }
        guard !removed.isEmpty else { return false }
        self.rules[type] = kept
        self.membership[type] = nil
        if self.isRoleType(type) && self.autoBuildRoleLinks {
            for rule in removed { try self.link(type, rule, add: false) }
        }
        self.dropIndexes(type)
        return true
    }

    @discardableResult
    public func updatePolicy(_ type: String, _ old: [String], _ new: [String]) throws -> Bool {
        try self.updatePolicies(type, [old], [new])
    }

    @discardableResult
    public func updatePolicies(_ type: String, _ old: [[String]], _ new: [[String]]) throws -> Bool {
        try self.checkType(type)
        guard old.count == new.count else { throw CasbinError.invalidOperation("old and new rule lists differ in length") }
        for rule in old where !self.hasPolicy(type, rule) { return false }
        for (before, after) in zip(old, new) {
            guard let index = self.rules[type]?.firstIndex(of: before) else { continue }
            self.rules[type]?[index] = after
            self.membership[type] = nil
            if self.isRoleType(type) && self.autoBuildRoleLinks {
                try self.link(type, before, add: false)
                try self.link(type, after, add: true)
            }
        }
        self.dropIndexes(type)
        return true
    }

    /// Removes every rule. As in Go 2.60, role links stay until `buildRoleLinks`/`loadPolicy`.
    public func clearPolicy() {
        self.rules.removeAll()
        self.membership.removeAll()
        self.indexes.removeAll()
        self.standardIndex = nil
    }

    public func policies(_ type: String = "p") -> [[String]] { self.rules[type] ?? [] }

    // MARK: RBAC helpers

    /// Direct roles of `user` (in `domain`).
    public func rolesForUser(_ user: String, domain: String? = nil, roleType: String = "g") -> [String] {
        self.roleManagers[roleType]?.roles(of: user, domain: domain ?? "") ?? []
    }

    /// The roles `subject` is given by a rule naming exactly `domain` (the `g` rules
    /// `subject, role, domain`), from the role links.
    public func directRoles(of subject: String, inExactDomain domain: String, roleType: String = "g") -> [String] {
        self.roleManagers[roleType]?.parents(of: subject, inDomain: domain) ?? []
    }

    /// Every subject given a role in exactly `domain` (no pattern matching), read from the role
    /// links: O(subjects in the domain), not O(rules).
    public func subjectsWithRoles(inDomain domain: String, roleType: String = "g") -> [String] {
        self.roleManagers[roleType]?.children(inDomain: domain) ?? []
    }

    /// Direct members of `role` (in `domain`).
    public func usersForRole(_ role: String, domain: String? = nil, roleType: String = "g") -> [String] {
        self.roleManagers[roleType]?.users(of: role, domain: domain ?? "") ?? []
    }

    /// Every role `user` has, transitively, in breadth-first order.
    public func implicitRolesForUser(_ user: String, domain: String? = nil, roleType: String = "g") -> [String] {
        guard let manager = self.roleManagers[roleType] else { return [] }
        var result: [String] = []
        var seen: Set<String> = [user]
        var queue = [user]
        while !queue.isEmpty {
            let name = queue.removeFirst()
            for role in manager.roles(of: name, domain: domain ?? "") where seen.insert(role).inserted {
                result.append(role)
                queue.append(role)
            }
        }
        return result
    }

    /// The `p` rules whose subject is `user` (and whose domain field is `domain`).
    public func permissionsForUser(_ user: String, domain: String? = nil, ptype: String = "p") -> [[String]] {
        let domainIndex = self.fieldIndex(ptype, "dom")
        let subjectIndex = self.fieldIndex(ptype, "sub") ?? 0
        return self.policies(ptype).filter { rule in
            guard subjectIndex < rule.count, rule[subjectIndex] == user else { return false }
            if let domain, let domainIndex { return domainIndex < rule.count && rule[domainIndex] == domain }
            return true
        }
    }

    /// The `p` rules of `user` and of every role it has, transitively.
    public func implicitPermissionsForUser(_ user: String, domain: String? = nil) -> [[String]] {
        ([user] + self.implicitRolesForUser(user, domain: domain)).flatMap { self.permissionsForUser($0, domain: domain) }
    }

    // MARK: Enforcement

    public func enforce(_ request: [CasbinValue], context: EnforceContext = .standard) throws -> Bool {
        try self.enforceEx(request, context: context).allowed
    }

    /// Decides a request and names the rule that decided it.
    public func enforceEx(_ request: [CasbinValue], context: EnforceContext = .standard) throws -> Decision {
        guard self.enforcementEnabled else { return Decision(allowed: true, explain: []) }
        let matcher = try self.compiledMatcher(context)
        let requestTokens = matcher.scope.requestTokens
        guard !requestTokens.isEmpty else {
            throw CasbinError.invalidRequest("request definition \(context.rtype) is not in the model")
        }
        guard request.count == requestTokens.count else {
            throw CasbinError.invalidRequest(
                "expected \(requestTokens.count) request values (\(requestTokens.joined(separator: ", "))), got \(request.count)")
        }
        guard let effect = context.etype == "e" ? matcher.standardEffect : self.model.effects[context.etype] else {
            throw CasbinError.invalidRequest("effect \(context.etype) is not in the model")
        }
        let policyTokenCount = matcher.scope.policyTokens.count
        let list = self.rules[context.ptype] ?? []
        var evaluator = Evaluator(enforcer: self, request: request, scope: matcher.scope)

        guard matcher.usesPolicy && !list.isEmpty else {
            if matcher.expr.containsEval && list.isEmpty {
                throw CasbinError.evaluation("please make sure rule exists in policy when using eval() in matcher")
            }
            let matched = try evaluator.truthy(matcher.expr, rule: [String](repeating: "", count: policyTokenCount))
            switch effect {
            case .denyOverride:
                return Decision(allowed: true, explain: [])
            default:
                // Go reports policy[0] as the deciding rule here (its explain index is 0).
                return Decision(allowed: matched, explain: matched ? (list.first ?? []) : [])
            }
        }

        let eftIndex = matcher.eftIndex
        var firstAllow: [String]?
        let candidates = try self.candidates(context: context, matcher: matcher, request: request, list: list)
        func consider(_ rule: [String], _ expr: Expr?) throws -> Decision? {
            guard rule.count == policyTokenCount else {
                throw CasbinError.evaluation("invalid policy size: expected \(policyTokenCount), got \(rule.count), pvals: \(rule)")
            }
            if let expr {
                guard try evaluator.truthy(expr, rule: rule) else { return nil }
            }
            let eft = eftIndex.map { rule[$0] } ?? "allow"
            switch effect {
            case .allowOverride:
                if eft == "allow" { return Decision(allowed: true, explain: rule) }
            case .denyOverride:
                if eft == "deny" { return Decision(allowed: false, explain: rule) }
            case .allowAndDeny:
                if eft == "deny" { return Decision(allowed: false, explain: rule) }
                if eft == "allow" && firstAllow == nil { firstAllow = rule }
            case .priority, .subjectPriority:
                if eft == "allow" { return Decision(allowed: true, explain: rule) }
                if eft == "deny" { return Decision(allowed: false, explain: rule) }
            }
            return nil
        }
        if let candidates {
            for index in candidates.indices {
                if let decision = try consider(list[index], candidates.residual) { return decision }
            }
        } else {
            for rule in list {
                if let decision = try consider(rule, matcher.expr) { return decision }
            }
        }
        switch effect {
        case .allowOverride, .priority, .subjectPriority: return Decision(allowed: false, explain: [])
        case .denyOverride: return Decision(allowed: true, explain: [])
        case .allowAndDeny: return firstAllow.map { Decision(allowed: true, explain: $0) } ?? Decision(allowed: false, explain: [])
        }
    }

    /// Decides many requests; each gets its own result or error.
    public func batchEnforce(_ requests: [[CasbinValue]], context: EnforceContext = .standard) -> [Result<Decision, CasbinError>] {
        requests.map { request in
            do {
                return .success(try self.enforceEx(request, context: context))
            } catch let error as CasbinError {
                return .failure(error)
            } catch {
                return .failure(.evaluation("\(error)"))
            }
        }
    }

    /// Parses the matcher of `context` (the standard one by default) without deciding anything, so
    /// a syntax error can stop start-up instead of failing the first decision.
    public func checkMatcher(_ context: EnforceContext = .standard) throws {
        _ = try self.compiledMatcher(context)
    }

    func compiledMatcher(_ context: EnforceContext) throws -> CompiledMatcher {
        // The standard context is nearly every call: skip hashing four strings for it.
        let isStandard = context.rtype == "r" && context.ptype == "p" && context.mtype == "m"
        if isStandard, let standard = self.standardMatcher { return standard }
        if let cached = self.compiledMatchers[context] { return cached }
        guard let text = self.model.matchers[context.mtype] else { throw CasbinError.invalidRequest("matcher \(context.mtype) is not in the model") }
        let scope = ExpressionScope(
            requestKey: context.rtype, requestTokens: self.model.requestDefinitions[context.rtype] ?? [], policyKey: context.ptype,
            policyTokens: self.model.policyDefinitions[context.ptype] ?? [], roleKeys: Set(self.model.roleDefinitions.keys)
        )
        let expr = try ExpressionParser.parse(text, scope: scope)
        let compiled = CompiledMatcher(
            expr: expr, scope: scope, usesPolicy: expr.referencesPolicy, standardEffect: self.model.effects["e"],
            eftIndex: scope.policyTokens.firstIndex(of: "eft")
        )
        self.compiledMatchers[context] = compiled
        if isStandard { self.standardMatcher = compiled }
        return compiled
    }

    func parseEval(_ text: String, scope: ExpressionScope) throws -> Expr {
        let key = scope.requestKey + "|" + scope.policyKey + "|" + text
        if let cached = self.evalCache[key] { return cached }
        let expr = try ExpressionParser.parse(text, scope: scope)
        if self.evalCache.count > 50_000 { self.evalCache.removeAll() }
        self.evalCache[key] = expr
        return expr
    }
}

/// A matcher parsed once per (matcher, request type, policy type).
struct CompiledMatcher {
    var expr: Expr
    var scope: ExpressionScope
    var usesPolicy: Bool
    /// The effect `e`, looked up once.
    var standardEffect: PolicyEffect?
    var eftIndex: Int?
}
