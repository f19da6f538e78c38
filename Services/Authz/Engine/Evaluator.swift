import Foundation

/// Evaluates a compiled matcher for one request against one rule.
struct Evaluator {
    let enforcer: Enforcer
    let request: [CasbinValue]
    let scope: ExpressionScope
    var rule: [String] = []
    var evalDepth = 0

    init(enforcer: Enforcer, request: [CasbinValue], scope: ExpressionScope) {
        self.enforcer = enforcer
        self.request = request
        self.scope = scope
    }

    /// The matcher's verdict: a true boolean or a non-zero number.
    mutating func truthy(_ expr: Expr, rule: [String]) throws -> Bool {
        self.rule = rule
        switch expr {
        case .and, .or, .compare(.eq, _, _), .compare(.ne, _, _): return try self.boolean(expr)
        default: break
        }
        switch try self.evaluate(expr) {
        case .bool(let b): return b
        case .number(let n): return n != 0
        case let other: throw CasbinError.evaluation("matcher result should be bool, int or float, got \(other)")
        }
    }

    mutating func evaluate(_ expr: Expr) throws -> CasbinValue {
        switch expr {
        case .literal(let value):
            return value
        case .requestField(let index):
            return self.request[index]
        case .policyField(let index):
            return index < self.rule.count ? .string(self.rule[index]) : .string("")
        case .attribute(let base, let name):
            let value = try self.evaluate(base)
            guard case .object(let object) = value else { throw CasbinError.evaluation("cannot read .\(name) of \(value)") }
            guard let attribute = object[name] else { throw CasbinError.evaluation("no attribute \(name)") }
            return attribute
        case .not(let inner):
            guard case .bool(let b) = try self.evaluate(inner) else { throw CasbinError.evaluation("! needs a boolean") }
            return .bool(!b)
        case .negate(let inner):
            guard case .number(let n) = try self.evaluate(inner) else { throw CasbinError.evaluation("- needs a number") }
            return .number(-n)
        case .and(let a, let b):
            guard try self.boolean(a) else { return .bool(false) }
            return .bool(try self.boolean(b))
        case .or(let a, let b):
            if try self.boolean(a) { return .bool(true) }
            return .bool(try self.boolean(b))
        case .compare(let op, let a, let b):
            // Hot path: string fields and literals compared without building values.
            if op == .eq || op == .ne, let left = self.plainString(a), let right = self.plainString(b) {
                return .bool((left == right) == (op == .eq))
            }
            return .bool(try self.compare(op, try self.evaluate(a), try self.evaluate(b)))
        case .arithmetic(let op, let a, let b):
            return try self.arithmetic(op, try self.evaluate(a), try self.evaluate(b))
        case .inList(let a, let b):
            let value = try self.evaluate(a)
            let container = try self.evaluate(b)
            if case .list(let items) = container { return .bool(items.contains(value)) }
            return .bool(container == value)
        case .list(let items):
            return .list(try items.map { try self.evaluate($0) })
        case .call(let function, let arguments):
            return try function.call(try arguments.map { try self.evaluate($0) })
        case .role(let name, let arguments):
            guard let manager = self.enforcer.roleManagers[name] else { throw CasbinError.evaluation("no role definition \(name)") }
            if let first = self.plainString(arguments[0]), let second = self.plainString(arguments[1]) {
                if arguments.count == 2 { return .bool(manager.hasLink(first, second, domain: "")) }
                if let domain = self.plainString(arguments[2]) { return .bool(manager.hasLink(first, second, domain: domain)) }
            }
            let values = try arguments.map { argument -> String in
                guard case .string(let s) = try self.evaluate(argument) else { throw CasbinError.evaluation("\(name)() expects string arguments") }
                return s
            }
            return .bool(manager.hasLink(values[0], values[1], domain: values.count > 2 ? values[2] : ""))
        case .eval(let inner):
            guard case .string(let text) = try self.evaluate(inner) else { throw CasbinError.evaluation("eval() needs a string") }
            guard self.evalDepth < 8 else { throw CasbinError.evaluation("eval() nested too deeply") }
            let parsed = try self.enforcer.parseEval(text, scope: self.scope)
            self.evalDepth += 1
            defer { self.evalDepth -= 1 }
            return try self.evaluate(parsed)
        }
    }

    /// The string a field or literal holds, without evaluation; nil for anything else.
    @inline(__always)
    func plainString(_ expr: Expr) -> String? {
        switch expr {
        case .requestField(let index):
            if case .string(let s) = self.request[index] { return s }
            return nil
        case .policyField(let index):
            return index < self.rule.count ? self.rule[index] : ""
        case .literal(.string(let s)):
            return s
        default:
            return nil
        }
    }

    /// An operand of `&&` / `||` (or a whole matcher), which must be a boolean. The logical
    /// operators and string equality are answered here without building values: they are most of
    /// every matcher, evaluated once per candidate rule.
    mutating func boolean(_ expr: Expr) throws -> Bool {
        switch expr {
        case .and(let a, let b):
            return try self.boolean(a) && self.boolean(b)
        case .or(let a, let b):
            return try self.boolean(a) || self.boolean(b)
        case .compare(let op, let a, let b) where op == .eq || op == .ne:
            if let left = self.plainString(a), let right = self.plainString(b) {
                return (left == right) == (op == .eq)
            }
        default:
            break
        }
        switch try self.evaluate(expr) {
        case .bool(let b): return b
        case let other: throw CasbinError.evaluation("expected a boolean, got \(other)")
        }
    }

    func compare(_ op: CompareOp, _ a: CasbinValue, _ b: CasbinValue) throws -> Bool {
        switch op {
        case .eq: return a == b
        case .ne: return a != b
        case .regex, .notRegex:
            guard case .string(let text) = a, case .string(let pattern) = b else { throw CasbinError.evaluation("=~ needs strings") }
            let matched = try CasbinFunctions.regexMatch(text, pattern)
            return op == .regex ? matched : !matched
        case .lt, .le, .gt, .ge:
            let order: Int
            switch (a, b) {
            case (.number(let x), .number(let y)): order = x < y ? -1 : (x > y ? 1 : 0)
            case (.string(let x), .string(let y)): order = x < y ? -1 : (x > y ? 1 : 0)
            default: throw CasbinError.evaluation("cannot compare \(a) and \(b)")
            }
            switch op {
            case .lt: return order < 0
            case .le: return order <= 0
            case .gt: return order > 0
            default: return order >= 0
            }
        }
    }

    func arithmetic(_ op: ArithmeticOp, _ a: CasbinValue, _ b: CasbinValue) throws -> CasbinValue {
        if op == .add {
            switch (a, b) {
            case (.number(let x), .number(let y)): return .number(x + y)
            case (.string, _), (_, .string): return .string(a.description + b.description)
            default: throw CasbinError.evaluation("cannot add \(a) and \(b)")
            }
        }
        guard case .number(let x) = a, case .number(let y) = b else { throw CasbinError.evaluation("arithmetic needs numbers") }
        switch op {
        case .sub: return .number(x - y)
        case .mul: return .number(x * y)
        case .div:
            guard y != 0 else { throw CasbinError.evaluation("division by zero") }
            return .number(x / y)
        case .mod:
            guard y != 0 else { throw CasbinError.evaluation("division by zero") }
            return .number(x.truncatingRemainder(dividingBy: y))
        case .add: return .number(x + y)
        }
    }
}

/// Candidate rules for a request, so a decision does not visit every rule.
///
/// Built from the matcher's top-level `&&` conjuncts:
/// - `r.x == p.y` (any number of them): rules bucketed by their `p.y` values;
/// - else `g(r.x, p.y[, dom])` on a role definition without pattern matching: rules bucketed by
///   `p.y`, candidates = the buckets of every role `r.x` reaches.
/// Candidates are visited in rule order, so priority, explain and short-circuiting are unchanged.
struct RuleIndex {
    enum Kind {
        case equality(requestFields: [Int], buckets: [String: [Int]])
        case role(name: String, requestField: Int, domain: Expr?, buckets: [String: [Int]])
    }

    var kind: Kind
    /// The matcher without the conjuncts the index already guarantees for its candidates
    /// (nil: nothing left, every candidate matches).
    var residual: Expr?
}

extension Enforcer {
    /// Rule indices to visit in order and what is left to check on them, or nil to scan every rule.
    func candidates(context: EnforceContext, matcher: CompiledMatcher, request: [CasbinValue], list: [[String]]) throws -> (
        indices: [Int], residual: Expr?
    )? {
        guard list.count >= 16 else { return nil }
        // The effect type does not change which rules can match.
        let isStandard = context.rtype == "r" && context.ptype == "p" && context.mtype == "m"
        let key = EnforceContext(rtype: context.rtype, ptype: context.ptype, etype: "", mtype: context.mtype)
        let index: RuleIndex
        if isStandard, let standard = self.standardIndex {
            index = standard
        } else if !isStandard, let cached = self.indexes[key] {
            index = cached
        } else {
            guard let built = self.buildIndex(matcher: matcher, list: list, policyTokenCount: self.model.policyDefinitions[context.ptype]?.count ?? 0)
            else { return nil }
            if isStandard { self.standardIndex = built } else { self.indexes[key] = built }
            index = built
        }
        switch index.kind {
        case .equality(let fields, let buckets):
            var parts: [String] = []
            for field in fields {
                guard case .string(let s) = request[field] else { return ([], nil) }
                parts.append(s)
            }
            return (buckets[parts.joined(separator: "\u{1F}")] ?? [], index.residual)
        case .role(let name, let field, let domainExpr, let buckets):
            guard case .string(let subject) = request[field], let manager = self.roleManagers[name], manager.matchingFunction == nil else {
                return nil
            }
            var domain = ""
            if let domainExpr {
                var evaluator = Evaluator(enforcer: self, request: request, scope: matcher.scope)
                guard case .string(let d) = try evaluator.evaluate(domainExpr) else { return nil }
                domain = d
            }
            var result: [Int] = []
            for role in manager.closure(of: subject, domain: domain) {
                result.append(contentsOf: buckets[role] ?? [])
            }
            return (result.sorted(), index.residual)
        }
    }

    func buildIndex(matcher: CompiledMatcher, list: [[String]], policyTokenCount: Int) -> RuleIndex? {
        // A rule of the wrong size must surface as an error, which only a full scan reports.
        guard list.allSatisfy({ $0.count == policyTokenCount }) else { return nil }
        var pairs: [(request: Int, policy: Int)] = []
        var pairConjuncts: Set<Int> = []
        var roleCandidate: (name: String, request: Int, policy: Int, domain: Expr?, conjunct: Int)?
        let conjuncts = matcher.expr.conjuncts
        for (position, conjunct) in conjuncts.enumerated() {
            switch conjunct {
            case .compare(.eq, .requestField(let r), .policyField(let p)), .compare(.eq, .policyField(let p), .requestField(let r)):
                pairs.append((r, p))
                pairConjuncts.insert(position)
            case .role(let name, let arguments):
                if case .requestField(let r) = arguments[0], case .policyField(let p) = arguments[1], roleCandidate == nil {
                    let domain = arguments.count > 2 ? arguments[2] : nil
                    if let domain, domain.referencesPolicy { continue }
                    roleCandidate = (name, r, p, domain, position)
                }
            default:
                continue
            }
        }
        /// The conjuncts not in `covered`, re-joined in their order; nil when none remain.
        func residual(without covered: Set<Int>) -> Expr? {
            var result: Expr?
            for (position, conjunct) in conjuncts.enumerated() where !covered.contains(position) {
                result = result.map { .and($0, conjunct) } ?? conjunct
            }
            return result
        }
        if !pairs.isEmpty {
            var buckets: [String: [Int]] = [:]
            for (offset, rule) in list.enumerated() {
                buckets[pairs.map { rule[$0.policy] }.joined(separator: "\u{1F}"), default: []].append(offset)
            }
            return RuleIndex(kind: .equality(requestFields: pairs.map(\.request), buckets: buckets), residual: residual(without: pairConjuncts))
        }
        if let roleCandidate {
            var buckets: [String: [Int]] = [:]
            for (offset, rule) in list.enumerated() {
                buckets[rule[roleCandidate.policy], default: []].append(offset)
            }
            return RuleIndex(
                kind: .role(name: roleCandidate.name, requestField: roleCandidate.request, domain: roleCandidate.domain, buckets: buckets),
                residual: residual(without: [roleCandidate.conjunct])
            )
        }
        return nil
    }
}
