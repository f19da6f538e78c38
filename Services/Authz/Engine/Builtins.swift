import Foundation
import Synchronization

/// The matcher functions Go Casbin 2.60 ships.
enum BuiltinFunction: String, Sendable, CaseIterable {
    case keyMatch, keyMatch2, keyMatch3, keyMatch4, keyMatch5
    case keyGet, keyGet2, keyGet3
    case regexMatch, ipMatch, globMatch

    var arity: ClosedRange<Int> {
        switch self {
        case .keyGet2, .keyGet3: 3...3
        default: 2...2
        }
    }

    func call(_ arguments: [CasbinValue]) throws -> CasbinValue {
        let strings = try arguments.map { value -> String in
            guard case .string(let s) = value else { throw CasbinError.evaluation("\(self.rawValue) expects string arguments, got \(value)") }
            return s
        }
        switch self {
        case .keyMatch: return .bool(CasbinFunctions.keyMatch(strings[0], strings[1]))
        case .keyMatch2: return .bool(CasbinFunctions.keyMatch2(strings[0], strings[1]))
        case .keyMatch3: return .bool(CasbinFunctions.keyMatch3(strings[0], strings[1]))
        case .keyMatch4: return .bool(CasbinFunctions.keyMatch4(strings[0], strings[1]))
        case .keyMatch5: return .bool(CasbinFunctions.keyMatch5(strings[0], strings[1]))
        case .keyGet: return .string(CasbinFunctions.keyGet(strings[0], strings[1]))
        case .keyGet2: return .string(CasbinFunctions.keyGet2(strings[0], strings[1], strings[2]))
        case .keyGet3: return .string(CasbinFunctions.keyGet3(strings[0], strings[1], strings[2]))
        case .regexMatch: return .bool(try CasbinFunctions.regexMatch(strings[0], strings[1]))
        case .ipMatch: return .bool(try CasbinFunctions.ipMatch(strings[0], strings[1]))
        case .globMatch: return .bool(CasbinFunctions.globMatch(strings[0], strings[1]))
        }
    }
}

/// Pattern matchers, usable both in matchers and as role/domain matching functions.
public enum CasbinFunctions {
    /// Names usable with `AddNamedMatchingFunc` / `AddNamedDomainMatchingFunc`.
    public static func named(_ name: String) -> (@Sendable (String, String) -> Bool)? {
        switch name {
        case "keyMatch": keyMatch
        case "keyMatch2": keyMatch2
        case "keyMatch3": keyMatch3
        case "keyMatch4": keyMatch4
        case "keyMatch5": keyMatch5
        case "regexMatch": { (try? regexMatch($0, $1)) ?? false }
        case "ipMatch": { (try? ipMatch($0, $1)) ?? false }
        case "globMatch": globMatch
        default: nil
        }
    }

    /// `*` in `key2` matches anything after its position.
    public static func keyMatch(_ key1: String, _ key2: String) -> Bool {
        guard let star = key2.firstIndex(of: "*") else { return key1 == key2 }
        // Go: key1[:i] == key2[:i] when key1 is longer, else key1 == key2[:i]: both are a prefix test.
        return key1.hasPrefix(key2[..<star])
    }

    public static func keyGet(_ key1: String, _ key2: String) -> String {
        guard let star = key2.firstIndex(of: "*") else { return "" }
        let prefix = String(key2[..<star])
        guard key1.utf8.count > prefix.utf8.count, key1.hasPrefix(prefix) else { return "" }
        return String(decoding: key1.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    }

    /// `:name` matches one segment, `/*` anything.
    public static func keyMatch2(_ key1: String, _ key2: String) -> Bool {
        var pattern = key2.replacingOccurrences(of: "/*", with: "/.*")
        pattern = RegexCache.shared.replace(pattern, regex: ":[^/]+", with: "[^/]+")
        return RegexCache.shared.matches(key1, pattern: "^" + pattern + "$")
    }

    public static func keyGet2(_ key1: String, _ key2: String, _ pathVar: String) -> String {
        self.keyGet(key1, key2, pathVar, variable: ":[^/]+", capture: "([^/]+)") { String($0.dropFirst()) }
    }

    /// The value `key1` has for the variable `pathVar` of `key2`, `""` when it does not match.
    static func keyGet(_ key1: String, _ key2: String, _ pathVar: String, variable: String, capture: String, name: (String) -> String) -> String {
        let pattern = key2.replacingOccurrences(of: "/*", with: "/.*")
        let names = RegexCache.shared.allMatches(pattern, regex: variable).map(name)
        let regex = "^" + RegexCache.shared.replace(pattern, regex: variable, with: capture) + "$"
        guard let groups = RegexCache.shared.groups(key1, pattern: regex) else { return "" }
        for (index, name) in names.enumerated() where name == pathVar && index < groups.count {
            return groups[index]
        }
        return ""
    }

    /// `{name}` matches one segment, `/*` anything.
    public static func keyMatch3(_ key1: String, _ key2: String) -> Bool {
        var pattern = key2.replacingOccurrences(of: "/*", with: "/.*")
        pattern = RegexCache.shared.replace(pattern, regex: "\\{[^/]+?\\}", with: "[^/]+")
        return RegexCache.shared.matches(key1, pattern: "^" + pattern + "$")
    }

    public static func keyGet3(_ key1: String, _ key2: String, _ pathVar: String) -> String {
        self.keyGet(key1, key2, pathVar, variable: "\\{[^/]+?\\}", capture: "([^/]+?)") { String($0.dropFirst().dropLast()) }
    }

    /// Like keyMatch3, and a name used twice must capture the same value.
    public static func keyMatch4(_ key1: String, _ key2: String) -> Bool {
        let pattern = key2.replacingOccurrences(of: "/*", with: "/.*")
        let names = RegexCache.shared.allMatches(pattern, regex: "\\{([^/]+?)\\}")
        let regex = "^" + RegexCache.shared.replace(pattern, regex: "\\{([^/]+?)\\}", with: "([^/]+)") + "$"
        guard let groups = RegexCache.shared.groups(key1, pattern: regex) else { return false }
        guard groups.count == names.count else { return false }
        var seen: [String: String] = [:]
        for (name, value) in zip(names, groups) {
            if let previous = seen[name], previous != value { return false }
            seen[name] = value
        }
        return true
    }

    /// keyMatch3 ignoring a query string in `key1`.
    public static func keyMatch5(_ key1: String, _ key2: String) -> Bool {
        let path = key1.firstIndex(of: "?").map { String(key1[..<$0]) } ?? key1
        var pattern = key2.replacingOccurrences(of: "/*", with: "/.*")
        pattern = RegexCache.shared.replace(pattern, regex: "\\{[^/]+?\\}", with: "[^/]+")
        return RegexCache.shared.matches(path, pattern: "^" + pattern + "$")
    }

    /// Unanchored regular-expression search, as Go's `regexp.MatchString`.
    public static func regexMatch(_ key1: String, _ key2: String) throws -> Bool {
        guard RegexCache.shared.compile(key2) != nil else { throw CasbinError.evaluation("invalid regular expression \(key2)") }
        return RegexCache.shared.matches(key1, pattern: key2)
    }

    /// `ip1` inside the CIDR `ip2`, or equal to the address `ip2`.
    public static func ipMatch(_ ip1: String, _ ip2: String) throws -> Bool {
        guard let address = IPAddress(ip1) else { throw CasbinError.evaluation("invalid argument: ip1 in ipMatch() function is not an IP address.") }
        if let slash = ip2.firstIndex(of: "/") {
            guard let network = IPAddress(String(ip2[..<slash])), let bits = Int(ip2[ip2.index(after: slash)...]),
                bits >= 0, bits <= network.bytes.count * 8
            else { throw CasbinError.evaluation("invalid argument: ip2 in ipMatch() function is not an IP address.") }
            let candidate = address.normalized(toLength: network.bytes.count)
            guard let candidate else { return false }
            return IPAddress.prefixEqual(candidate, network.bytes, bits: bits)
        }
        guard let other = IPAddress(ip2) else { throw CasbinError.evaluation("invalid argument: ip2 in ipMatch() function is not an IP address.") }
        return address.normalized(toLength: 16) == other.normalized(toLength: 16)
    }

    /// Go's `path.Match(pattern, name)`: `*` stops at `/`, `?` one character, `[…]` classes.
    public static func globMatch(_ key1: String, _ key2: String) -> Bool {
        GlobPattern.match(pattern: Array(key2.unicodeScalars), name: Array(key1.unicodeScalars))
    }
}

/// IPv4 and IPv6 addresses as bytes.
struct IPAddress {
    var bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            self.bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// The address as 4 or 16 bytes (IPv4 maps into `::ffff:a.b.c.d`), or nil when impossible.
    func normalized(toLength length: Int) -> [UInt8]? {
        if self.bytes.count == length { return self.bytes }
        if length == 16 && self.bytes.count == 4 { return [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + self.bytes }
        if length == 4 && self.bytes.count == 16 && self.bytes[0..<10].allSatisfy({ $0 == 0 }) && self.bytes[10] == 0xFF && self.bytes[11] == 0xFF {
            return Array(self.bytes[12...])
        }
        return nil
    }

    static func prefixEqual(_ a: [UInt8], _ b: [UInt8], bits: Int) -> Bool {
        var remaining = bits
        for i in 0..<a.count where remaining > 0 {
            let take = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if a[i] & mask != b[i] & mask { return false }
            remaining -= take
        }
        return true
    }
}

/// Go's `path.Match`.
enum GlobPattern {
    static func match(pattern: [Unicode.Scalar], name: [Unicode.Scalar]) -> Bool {
        var p = 0
        var n = 0
        var starP = -1
        var starN = 0
        while n < name.count {
            if p < pattern.count {
                let c = pattern[p]
                if c == "*" {
                    starP = p
                    starN = n
                    p += 1
                    continue
                }
                if c == "?" && name[n] != "/" {
                    p += 1
                    n += 1
                    continue
                }
                if c == "[" {
                    if let (matched, next) = self.matchClass(pattern, p, name[n]), matched {
                        p = next
                        n += 1
                        continue
                    }
                } else if c == "\\" && p + 1 < pattern.count {
                    if pattern[p + 1] == name[n] {
                        p += 2
                        n += 1
                        continue
                    }
                } else if c == name[n] {
                    p += 1
                    n += 1
                    continue
                }
            }
            // Backtrack: let the last star swallow one more character (never a '/').
            if starP >= 0 && name[starN] != "/" {
                starN += 1
                n = starN
                p = starP + 1
                continue
            }
            return false
        }
        while p < pattern.count && pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }

    /// Matches `[...]` at `start`; returns whether `c` is in it and the index after `]`.
    static func matchClass(_ pattern: [Unicode.Scalar], _ start: Int, _ c: Unicode.Scalar) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < pattern.count && pattern[i] == "^" {
            negate = true
            i += 1
        }
        var matched = false
        var first = true
        while i < pattern.count && (pattern[i] != "]" || first) {
            first = false
            var lo = pattern[i]
            if lo == "\\" && i + 1 < pattern.count {
                i += 1
                lo = pattern[i]
            }
            var hi = lo
            if i + 2 < pattern.count && pattern[i + 1] == "-" && pattern[i + 2] != "]" {
                hi = pattern[i + 2]
                i += 2
            }
            if lo.value <= c.value && c.value <= hi.value { matched = true }
            i += 1
        }
        guard i < pattern.count else { return nil }
        return (matched != negate, i + 1)
    }
}

/// Compiled regular expressions, shared and bounded.
final class RegexCache: Sendable {
    static let shared = RegexCache()
    let cache = Mutex<[String: NSRegularExpression]>([:])
    let invalid = Mutex<Set<String>>([])

    /// RE2 (Go) reads a `{` that does not start a `{n}`, `{n,}` or `{n,m}` repetition as a
    /// literal; ICU rejects it. Escape such braces so patterns mean what they mean in Go.
    static func re2Braces(_ pattern: String) -> String {
        let chars = Array(pattern)
        var out = ""
        var i = 0
        var openQuantifier = false
        while i < chars.count {
            let c = chars[i]
            if c == "\\" && i + 1 < chars.count {
                out.append(c)
                out.append(chars[i + 1])
                i += 2
                continue
            }
            if c == "{" {
                var j = i + 1
                var digits = 0
                while j < chars.count && chars[j].isASCII && chars[j].isNumber { j += 1; digits += 1 }
                if digits > 0 && j < chars.count && chars[j] == "," {
                    j += 1
                    while j < chars.count && chars[j].isASCII && chars[j].isNumber { j += 1 }
                }
                if digits > 0 && j < chars.count && chars[j] == "}" && i > 0 {
                    openQuantifier = true
                    out.append(c)
                } else {
                    out.append("\\{")
                }
            } else if c == "}" {
                if openQuantifier {
                    openQuantifier = false
                    out.append(c)
                } else {
                    out.append("\\}")
                }
            } else {
                out.append(c)
            }
            i += 1
        }
        return out
    }

    func compile(_ pattern: String) -> NSRegularExpression? {
        if let cached = self.cache.withLock({ $0[pattern] }) { return cached }
        if self.invalid.withLock({ $0.contains(pattern) }) { return nil }
        guard let regex = try? NSRegularExpression(pattern: Self.re2Braces(pattern)) else {
            self.invalid.withLock { _ = $0.insert(pattern) }
            return nil
        }
        self.cache.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[pattern] = regex
        }
        return regex
    }

    func matches(_ text: String, pattern: String) -> Bool {
        guard let regex = self.compile(pattern) else { return false }
        let range = NSRange(text.startIndex..., in: text)
        return regex.firstMatch(in: text, range: range) != nil
    }

    func groups(_ text: String, pattern: String) -> [String]? {
        guard let regex = self.compile(pattern) else { return nil }
        let ns = text as NSString
        guard let match = regex.firstMatch(in: text, range: NSRange(location: 0, length: ns.length)) else { return nil }
        return (1..<max(1, match.numberOfRanges)).map { index in
            let range = match.range(at: index)
            return range.location == NSNotFound ? "" : ns.substring(with: range)
        }
    }

    func allMatches(_ text: String, regex pattern: String) -> [String] {
        guard let regex = self.compile(pattern) else { return [] }
        let ns = text as NSString
        return regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { match in
            match.numberOfRanges > 1 && match.range(at: 1).location != NSNotFound
                ? ns.substring(with: match.range(at: 1)) : ns.substring(with: match.range)
        }
    }

    func replace(_ text: String, regex pattern: String, with template: String) -> String {
        guard let regex = self.compile(pattern) else { return text }
        return regex.stringByReplacingMatches(in: text, range: NSRange(location: 0, length: (text as NSString).length), withTemplate: template)
    }
}
