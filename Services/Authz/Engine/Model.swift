import Foundation

/// One of the five policy effects Go Casbin 2.60 accepts.
public enum PolicyEffect: Sendable, Equatable {
    /// `some(where (p.eft == allow))`
    case allowOverride
    /// `!some(where (p.eft == deny))`
    case denyOverride
    /// `some(where (p.eft == allow)) && !some(where (p.eft == deny))`
    case allowAndDeny
    /// `priority(p.eft) || deny`
    case priority
    /// `subjectPriority(p.eft) || deny`
    case subjectPriority

    init?(expression: String) {
        let compact = expression.filter { !$0.isWhitespace }.replacingOccurrences(of: "p_eft", with: "p.eft")
        switch compact {
        case "some(where(p.eft==allow))": self = .allowOverride
        case "!some(where(p.eft==deny))": self = .denyOverride
        case "some(where(p.eft==allow))&&!some(where(p.eft==deny))": self = .allowAndDeny
        case "priority(p.eft)||deny": self = .priority
        case "subjectPriority(p.eft)||deny": self = .subjectPriority
        default: return nil
        }
    }
}

/// A parsed Casbin model (`.conf`).
public struct CasbinModel: Sendable {
    /// `r`, `r2`… → token names (`sub`, `obj`, `act`).
    public var requestDefinitions: [String: [String]]
    /// `p`, `p2`… → token names.
    public var policyDefinitions: [String: [String]]
    /// `g`, `g2`… → number of fields (2, or 3 with a domain).
    public var roleDefinitions: [String: Int]
    public var effects: [String: PolicyEffect]
    public var matchers: [String: String]

    /// Parses model text. `file` names the source in errors.
    public init(text: String, file: String = "model") throws {
        var sections: [String: [(key: String, value: String, line: Int)]] = [:]
        var current: String?
        var pending = ""
        var pendingLine = 0
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n").components(separatedBy: "\n")
        for (index, raw) in lines.enumerated() {
            let lineNumber = index + 1
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if pending.isEmpty { pendingLine = lineNumber }
            if line.hasSuffix("\\") {
                pending += String(line.dropLast()).trimmingCharacters(in: .whitespaces) + " "
                continue
            }
            line = (pending + line).trimmingCharacters(in: .whitespaces)
            pending = ""
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else {
                    throw CasbinError.model(file: file, line: pendingLine, reason: "unterminated section header \(line)")
                }
                current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let section = current else {
                throw CasbinError.model(file: file, line: pendingLine, reason: "definition outside a section: \(line)")
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw CasbinError.model(file: file, line: pendingLine, reason: "expected key = value: \(line)")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = Self.stripComment(String(line[line.index(after: equals)...])).trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw CasbinError.model(file: file, line: pendingLine, reason: "missing key before '='") }
            sections[section, default: []].append((key, value, pendingLine))
        }
        let known: Set<String> = ["request_definition", "policy_definition", "role_definition", "policy_effect", "matchers"]
        for name in sections.keys where !known.contains(name) {
            throw CasbinError.model(file: file, line: sections[name]?.first?.line ?? 0, reason: "unknown section [\(name)]")
        }
        func require(_ name: String) throws -> [(key: String, value: String, line: Int)] {
            guard let entries = sections[name], !entries.isEmpty else {
                throw CasbinError.model(file: file, line: lines.count, reason: "missing required section [\(name)]")
            }
            return entries
        }
        func tokens(_ value: String) -> [String] {
            value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        self.requestDefinitions = [:]
        for entry in try require("request_definition") {
            let list = tokens(entry.value)
            guard !list.isEmpty else { throw CasbinError.model(file: file, line: entry.line, reason: "\(entry.key) has no tokens") }
            self.requestDefinitions[entry.key] = list
        }
        self.policyDefinitions = [:]
        for entry in try require("policy_definition") {
            let list = tokens(entry.value)
            guard !list.isEmpty else { throw CasbinError.model(file: file, line: entry.line, reason: "\(entry.key) has no tokens") }
            self.policyDefinitions[entry.key] = list
        }
        self.roleDefinitions = [:]
        for entry in sections["role_definition"] ?? [] {
            let list = tokens(entry.value)
            guard list.count >= 2, list.allSatisfy({ $0 == "_" }) else {
                throw CasbinError.model(file: file, line: entry.line, reason: "\(entry.key) must be `_, _` or `_, _, _`")
            }
            self.roleDefinitions[entry.key] = list.count
        }
        self.effects = [:]
        for entry in try require("policy_effect") {
            guard let effect = PolicyEffect(expression: entry.value) else {
                throw CasbinError.model(file: file, line: entry.line, reason: "unsupported policy effect \(entry.value)")
            }
            self.effects[entry.key] = effect
        }
        self.matchers = [:]
        for entry in try require("matchers") {
            self.matchers[entry.key] = entry.value
        }
        guard self.requestDefinitions["r"] != nil, self.policyDefinitions["p"] != nil, self.effects["e"] != nil, self.matchers["m"] != nil else {
            throw CasbinError.model(file: file, line: 1, reason: "the model needs r, p, e and m")
        }
    }

    /// Drops a trailing `# …` or `; …` comment outside quotes.
    static func stripComment(_ value: String) -> String {
        var quote: Character?
        for index in value.indices {
            let c = value[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == "#" || c == ";" {
                return String(value[..<index])
            }
        }
        return value
    }
}

/// Casbin's CSV policy line format.
public enum PolicyCSV {
    /// One parsed line: the type (`p`, `g2`…) and its values, trimmed.
    public struct Line: Sendable, Equatable {
        public var type: String
        public var values: [String]
        public var lineNumber: Int

        public init(type: String, values: [String], lineNumber: Int = 0) {
            self.type = type
            self.values = values
            self.lineNumber = lineNumber
        }
    }

    /// Parses policy text: blank lines and `#` comments skipped, `"quoted, fields"` kept whole.
    public static func parse(_ text: String, file: String = "policy") throws -> [Line] {
        var result: [Line] = []
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        for (index, raw) in normalized.components(separatedBy: "\n").enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = try Self.fields(line, file: file, lineNumber: index + 1)
            guard let type = fields.first, !type.isEmpty else {
                throw CasbinError.policy(file: file, line: index + 1, reason: "missing policy type")
            }
            guard fields.count > 1 else { throw CasbinError.policy(file: file, line: index + 1, reason: "\(type) rule has no values") }
            result.append(Line(type: type, values: Array(fields.dropFirst()), lineNumber: index + 1))
        }
        return result
    }

    static func fields(_ line: String, file: String, lineNumber: Int) throws -> [String] {
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var wasQuoted = false
        var chars = Array(line)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if inQuotes {
                if c == "\"" {
                    if i + 1 < chars.count && chars[i + 1] == "\"" {
                        field.append("\"")
                        i += 2
                        continue
                    }
                    inQuotes = false
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.trimmingCharacters(in: .whitespaces).isEmpty {
                inQuotes = true
                wasQuoted = true
                field = ""
            } else if c == "," {
                fields.append(wasQuoted ? field : field.trimmingCharacters(in: .whitespaces))
                field = ""
                wasQuoted = false
            } else {
                field.append(c)
            }
            i += 1
        }
        guard !inQuotes else { throw CasbinError.policy(file: file, line: lineNumber, reason: "unterminated quoted field") }
        fields.append(wasQuoted ? field : field.trimmingCharacters(in: .whitespaces))
        chars.removeAll()
        return fields
    }

    /// Writes one rule as a CSV line that ``parse(_:file:)`` reads back as the same rule: a field is
    /// quoted when it holds a comma or a quote, begins or ends with white space (which an unquoted
    /// field loses), or is empty or begins with `#` in first place (a blank line or a comment).
    /// Line breaks cannot be written in a line; identifiers never hold them.
    public static func format(type: String, values: [String]) -> String {
        ([type] + values).enumerated().map { index, value in
            Self.needsQuotes(value, first: index == 0) ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
        }.joined(separator: ", ")
    }

    static func needsQuotes(_ value: String, first: Bool) -> Bool {
        if value.contains(",") || value.contains("\"") { return true }
        if first && (value.isEmpty || value.hasPrefix("#")) { return true }
        guard let head = value.unicodeScalars.first, let tail = value.unicodeScalars.last else { return false }
        return CharacterSet.whitespacesAndNewlines.contains(head) || CharacterSet.whitespacesAndNewlines.contains(tail)
    }
}
