import Foundation

/// A parsed matcher expression (the subset of govaluate Casbin matchers use).
indirect enum Expr: Sendable {
    case literal(CasbinValue)
    /// `r.sub`: the request definition key and the token index.
    case requestField(Int)
    /// `p.obj`: the policy token index.
    case policyField(Int)
    case attribute(Expr, String)
    case not(Expr)
    case negate(Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case compare(CompareOp, Expr, Expr)
    case arithmetic(ArithmeticOp, Expr, Expr)
    case inList(Expr, Expr)
    case list([Expr])
    case call(BuiltinFunction, [Expr])
    /// `g(…)`, `g2(…)`: membership in a role definition.
    case role(String, [Expr])
    /// `eval(expr)`: evaluates the string `expr` yields as a matcher.
    case eval(Expr)

    var referencesPolicy: Bool {
        switch self {
        case .policyField: true
        case .literal, .requestField: false
        case .attribute(let e, _), .not(let e), .negate(let e), .eval(let e): e.referencesPolicy
        case .and(let a, let b), .or(let a, let b), .compare(_, let a, let b), .arithmetic(_, let a, let b), .inList(let a, let b):
            a.referencesPolicy || b.referencesPolicy
        case .list(let items), .call(_, let items), .role(_, let items): items.contains { $0.referencesPolicy }
        }
    }

    var containsEval: Bool {
        switch self {
        case .eval: true
        case .literal, .requestField, .policyField: false
        case .attribute(let e, _), .not(let e), .negate(let e): e.containsEval
        case .and(let a, let b), .or(let a, let b), .compare(_, let a, let b), .arithmetic(_, let a, let b), .inList(let a, let b):
            a.containsEval || b.containsEval
        case .list(let items), .call(_, let items), .role(_, let items): items.contains { $0.containsEval }
        }
    }

    /// The conjuncts of a top-level `&&` chain.
    var conjuncts: [Expr] {
        if case .and(let a, let b) = self { return a.conjuncts + b.conjuncts }
        return [self]
    }
}

enum CompareOp: Sendable { case eq, ne, lt, le, gt, ge, regex, notRegex }
enum ArithmeticOp: Sendable { case add, sub, mul, div, mod }

/// Names the parser resolves: request and policy tokens, and role definitions.
/// A class so an evaluator holds one reference instead of copying five collections per decision.
final class ExpressionScope: Sendable {
    /// `r` (or `r2`) and its tokens.
    let requestKey: String
    let requestTokens: [String]
    let policyKey: String
    let policyTokens: [String]
    let roleKeys: Set<String>

    init(requestKey: String, requestTokens: [String], policyKey: String, policyTokens: [String], roleKeys: Set<String>) {
        self.requestKey = requestKey
        self.requestTokens = requestTokens
        self.policyKey = policyKey
        self.policyTokens = policyTokens
        self.roleKeys = roleKeys
    }
}

/// Tokenizer + recursive-descent parser.
struct ExpressionParser {
    enum Token: Equatable {
        case identifier(String)
        case number(Double)
        case string(String)
        case op(String)
        case lparen, rparen, lbracket, rbracket, comma, dot
        case end
    }

    let scope: ExpressionScope
    var tokens: [Token] = []
    var position = 0
    var depth = 0
    static let maxDepth = 200
    static let maxTokens = 2000

    init(scope: ExpressionScope) {
        self.scope = scope
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        let chars = Array(text.unicodeScalars)
        var i = 0
        func isIdentStart(_ c: Unicode.Scalar) -> Bool { c == "_" || CharacterSet.letters.contains(c) }
        func isIdent(_ c: Unicode.Scalar) -> Bool { isIdentStart(c) || CharacterSet.decimalDigits.contains(c) }
        while i < chars.count {
            let c = chars[i]
            if CharacterSet.whitespacesAndNewlines.contains(c) {
                i += 1
                continue
            }
            if isIdentStart(c) {
                var j = i
                while j < chars.count && isIdent(chars[j]) { j += 1 }
                tokens.append(.identifier(String(String.UnicodeScalarView(chars[i..<j]))))
                i = j
                continue
            }
            if CharacterSet.decimalDigits.contains(c) {
                var j = i
                while j < chars.count && (CharacterSet.decimalDigits.contains(chars[j]) || chars[j] == ".") { j += 1 }
                let text = String(String.UnicodeScalarView(chars[i..<j]))
                guard let value = Double(text) else { throw CasbinError.matcher("bad number \(text)") }
                tokens.append(.number(value))
                i = j
                continue
            }
            if c == "'" || c == "\"" {
                var j = i + 1
                var value = String.UnicodeScalarView()
                while j < chars.count && chars[j] != c {
                    if chars[j] == "\\" && j + 1 < chars.count && chars[j + 1] == c {
                        value.append(c)
                        j += 2
                        continue
                    }
                    value.append(chars[j])
                    j += 1
                }
                guard j < chars.count else { throw CasbinError.matcher("unterminated string") }
                tokens.append(.string(String(value)))
                i = j + 1
                continue
            }
            let two = i + 1 < chars.count ? String(String.UnicodeScalarView([c, chars[i + 1]])) : ""
            if ["&&", "||", "==", "!=", "<=", ">=", "=~", "!~"].contains(two) {
                tokens.append(.op(two))
                i += 2
                continue
            }
            switch c {
            case "(": tokens.append(.lparen)
            case ")": tokens.append(.rparen)
            case "[": tokens.append(.lbracket)
            case "]": tokens.append(.rbracket)
            case ",": tokens.append(.comma)
            case ".": tokens.append(.dot)
            case "!", "<", ">", "+", "-", "*", "/", "%": tokens.append(.op(String(c)))
            default: throw CasbinError.matcher("unexpected character '\(c)'")
            }
            i += 1
        }
        tokens.append(.end)
        return tokens
    }

    static func parse(_ text: String, scope: ExpressionScope) throws -> Expr {
        var parser = ExpressionParser(scope: scope)
        parser.tokens = try Self.tokenize(text)
        // Bounds the tree (and so evaluation depth) for chains like `a && a && …`.
        guard parser.tokens.count <= Self.maxTokens else { throw CasbinError.matcher("expression longer than \(Self.maxTokens) tokens") }
        let expr = try parser.parseOr()
        guard parser.peek == .end else { throw CasbinError.matcher("unexpected \(parser.peek) in \"\(text)\"") }
        return expr
    }

    var peek: Token { self.tokens[self.position] }

    mutating func next() -> Token {
        let token = self.tokens[self.position]
        if self.position < self.tokens.count - 1 { self.position += 1 }
        return token
    }

    mutating func expect(_ token: Token) throws {
        guard self.next() == token else { throw CasbinError.matcher("expected \(token)") }
    }

    mutating func enter() throws {
        self.depth += 1
        if self.depth > Self.maxDepth { throw CasbinError.matcher("expression nested too deeply") }
    }

    mutating func parseOr() throws -> Expr {
        try self.enter()
        defer { self.depth -= 1 }
        var left = try self.parseAnd()
        while self.peek == .op("||") {
            _ = self.next()
            left = .or(left, try self.parseAnd())
        }
        return left
    }

    mutating func parseAnd() throws -> Expr {
        var left = try self.parseComparison()
        while self.peek == .op("&&") {
            _ = self.next()
            left = .and(left, try self.parseComparison())
        }
        return left
    }

    mutating func parseComparison() throws -> Expr {
        var left = try self.parseAdditive()
        while true {
            switch self.peek {
            case .op("=="): _ = self.next(); left = .compare(.eq, left, try self.parseAdditive())
            case .op("!="): _ = self.next(); left = .compare(.ne, left, try self.parseAdditive())
            case .op("<"): _ = self.next(); left = .compare(.lt, left, try self.parseAdditive())
            case .op("<="): _ = self.next(); left = .compare(.le, left, try self.parseAdditive())
            case .op(">"): _ = self.next(); left = .compare(.gt, left, try self.parseAdditive())
            case .op(">="): _ = self.next(); left = .compare(.ge, left, try self.parseAdditive())
            case .op("=~"): _ = self.next(); left = .compare(.regex, left, try self.parseAdditive())
            case .op("!~"): _ = self.next(); left = .compare(.notRegex, left, try self.parseAdditive())
            case .identifier("in"): _ = self.next(); left = .inList(left, try self.parseAdditive())
            default: return left
            }
        }
    }

    mutating func parseAdditive() throws -> Expr {
        var left = try self.parseMultiplicative()
        while true {
            switch self.peek {
            case .op("+"): _ = self.next(); left = .arithmetic(.add, left, try self.parseMultiplicative())
            case .op("-"): _ = self.next(); left = .arithmetic(.sub, left, try self.parseMultiplicative())
            default: return left
            }
        }
    }

    mutating func parseMultiplicative() throws -> Expr {
        var left = try self.parseUnary()
        while true {
            switch self.peek {
            case .op("*"): _ = self.next(); left = .arithmetic(.mul, left, try self.parseUnary())
            case .op("/"): _ = self.next(); left = .arithmetic(.div, left, try self.parseUnary())
            case .op("%"): _ = self.next(); left = .arithmetic(.mod, left, try self.parseUnary())
            default: return left
            }
        }
    }

    mutating func parseUnary() throws -> Expr {
        try self.enter()
        defer { self.depth -= 1 }
        switch self.peek {
        case .op("!"): _ = self.next(); return .not(try self.parseUnary())
        case .op("-"): _ = self.next(); return .negate(try self.parseUnary())
        default: return try self.parsePostfix()
        }
    }

    mutating func parsePostfix() throws -> Expr {
        var expr = try self.parsePrimary()
        while self.peek == .dot {
            _ = self.next()
            guard case .identifier(let name) = self.next() else { throw CasbinError.matcher("expected an attribute name after '.'") }
            expr = .attribute(expr, name)
        }
        return expr
    }

    mutating func parseList(closing: Token) throws -> [Expr] {
        var items: [Expr] = []
        if self.peek == closing {
            _ = self.next()
            return items
        }
        while true {
            items.append(try self.parseOr())
            switch self.next() {
            case .comma: continue
            case closing: return items
            default: throw CasbinError.matcher("expected ',' or a closing bracket")
            }
        }
    }

    mutating func parsePrimary() throws -> Expr {
        switch self.next() {
        case .number(let n): return .literal(.number(n))
        case .string(let s): return .literal(.string(s))
        case .lbracket: return .list(try self.parseList(closing: .rbracket))
        case .lparen:
            let items = try self.parseList(closing: .rparen)
            if items.count == 1 { return items[0] }
            return .list(items)
        case .identifier(let name):
            if name == "true" { return .literal(.bool(true)) }
            if name == "false" { return .literal(.bool(false)) }
            if self.peek == .lparen {
                _ = self.next()
                let arguments = try self.parseList(closing: .rparen)
                return try self.resolveCall(name, arguments)
            }
            if self.peek == .dot, let resolved = try self.resolveDotted(name) { return resolved }
            return try self.resolveUnderscored(name)
        default:
            throw CasbinError.matcher("unexpected token")
        }
    }

    mutating func resolveCall(_ name: String, _ arguments: [Expr]) throws -> Expr {
        if name == "eval" {
            guard arguments.count == 1 else { throw CasbinError.matcher("eval takes one argument") }
            return .eval(arguments[0])
        }
        if self.scope.roleKeys.contains(name) {
            guard arguments.count == 2 || arguments.count == 3 else { throw CasbinError.matcher("\(name) takes 2 or 3 arguments") }
            return .role(name, arguments)
        }
        guard let function = BuiltinFunction(rawValue: name) else { throw CasbinError.matcher("unknown function \(name)") }
        guard function.arity.contains(arguments.count) else { throw CasbinError.matcher("\(name) takes \(function.arity) arguments") }
        return .call(function, arguments)
    }

    /// `r.sub`, `p2.obj`: a definition key followed by `.token`.
    mutating func resolveDotted(_ name: String) throws -> Expr? {
        let isRequest = name == self.scope.requestKey
        let isPolicy = name == self.scope.policyKey
        guard isRequest || isPolicy else { return nil }
        _ = self.next()
        guard case .identifier(let token) = self.next() else { throw CasbinError.matcher("expected a token after \(name).") }
        return try self.field(isRequest: isRequest, token: token, key: name)
    }

    func field(isRequest: Bool, token: String, key: String) throws -> Expr {
        let tokens = isRequest ? self.scope.requestTokens : self.scope.policyTokens
        guard let index = tokens.firstIndex(of: token) else { throw CasbinError.matcher("\(key).\(token) is not defined") }
        return isRequest ? .requestField(index) : .policyField(index)
    }

    /// `r_sub` (Casbin's internal spelling) is accepted too.
    func resolveUnderscored(_ name: String) throws -> Expr {
        for (key, isRequest) in [(self.scope.requestKey, true), (self.scope.policyKey, false)] where name.hasPrefix(key + "_") {
            let token = String(name.dropFirst(key.count + 1))
            if (isRequest ? self.scope.requestTokens : self.scope.policyTokens).contains(token) {
                return try self.field(isRequest: isRequest, token: token, key: key)
            }
        }
        throw CasbinError.matcher("unknown identifier \(name)")
    }
}
