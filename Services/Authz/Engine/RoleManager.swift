import Foundation

/// Casbin's default role manager (Go 2.60 semantics): links `child → parent` per domain,
/// transitive up to `maxHierarchyLevel` links (10), optional pattern matching of role names
/// (`AddNamedMatchingFunc`) and of domains (`AddNamedDomainMatchingFunc`).
///
/// Links live apart from the `g` rules, as in Go: `ClearPolicy` keeps them until the next
/// `BuildRoleLinks`/`LoadPolicy`.
final class RoleManager {
    typealias MatchingFunction = @Sendable (String, String) -> Bool

    let maxHierarchyLevel: Int
    /// domain → child → parents, in insertion order.
    private(set) var links: [String: [String: [String]]] = [:]
    /// Every name ever linked per domain (Go keeps roles after their links are deleted, and
    /// pattern matching sees them).
    private var knownRoles: [String: Set<String>] = [:]
    var matchingFunction: MatchingFunction? {
        didSet { self.invalidate() }
    }
    var domainMatchingFunction: MatchingFunction? {
        didSet { self.invalidate() }
    }
    /// Cached effective link tables per requested domain (domain patterns merged in).
    private var domainViews: [String: [String: [String]]] = [:]
    /// Cached reachable-role sets (plain case, no role matching function).
    private var closures: [String: [String: Set<String>]] = [:]
    private var closureCount = 0

    init(maxHierarchyLevel: Int = 10) {
        self.maxHierarchyLevel = maxHierarchyLevel
    }

    private func invalidate() {
        self.domainViews.removeAll(keepingCapacity: true)
        self.closures.removeAll(keepingCapacity: true)
        self.closureCount = 0
    }

    func invalidateCaches() {
        self.invalidate()
    }

    func clear() {
        self.links.removeAll()
        self.knownRoles.removeAll()
        self.invalidate()
    }

    func addLink(_ child: String, _ parent: String, domain: String = "") {
        var parents = self.links[domain]?[child] ?? []
        guard !parents.contains(parent) else { return }
        parents.append(parent)
        self.links[domain, default: [:]][child] = parents
        self.knownRoles[domain, default: []].formUnion([child, parent])
        self.invalidate()
    }

    /// The parents `child` is linked to in exactly `domain` (no pattern matching).
    func parents(of child: String, inDomain domain: String) -> [String] {
        self.links[domain]?[child] ?? []
    }

    /// The children linked in exactly `domain`.
    func children(inDomain domain: String) -> [String] {
        self.links[domain].map { Array($0.keys) } ?? []
    }

    func deleteLink(_ child: String, _ parent: String, domain: String = "") {
        guard var parents = self.links[domain]?[child], let index = parents.firstIndex(of: parent) else { return }
        parents.remove(at: index)
        self.links[domain]?[child] = parents.isEmpty ? nil : parents
        self.invalidate()
    }

    /// The links visible from `domain`: its own, plus those of every domain pattern matching it.
    private func view(for domain: String) -> [String: [String]] {
        guard let domainMatching = self.domainMatchingFunction else { return self.links[domain] ?? [:] }
        if let cached = self.domainViews[domain] { return cached }
        var merged: [String: [String]] = [:]
        for (linkDomain, table) in self.links where linkDomain == domain || domainMatching(domain, linkDomain) {
            for (child, parents) in table {
                var existing = merged[child] ?? []
                for parent in parents where !existing.contains(parent) { existing.append(parent) }
                merged[child] = existing
            }
        }
        self.domainViews[domain] = merged
        return merged
    }

    private func matches(_ name: String, _ pattern: String) -> Bool {
        name == pattern || (self.matchingFunction?(name, pattern) ?? false)
    }

    /// Whether `name1` has role `name2` in `domain` (directly, transitively, or by pattern).
    func hasLink(_ name1: String, _ name2: String, domain: String = "") -> Bool {
        if self.matches(name1, name2) { return true }
        let table = self.view(for: domain)
        guard self.matchingFunction != nil else {
            return self.closure(of: name1, domain: domain, table: table).contains(name2)
        }
        return self.patternHasLink(name1, name2, table: table, roles: self.roles(in: domain))
    }

    /// Every role reachable from `name` within the level limit (itself included).
    func closure(of name: String, domain: String = "") -> Set<String> {
        if let cached = self.closures[domain]?[name] { return cached }
        return self.closure(of: name, domain: domain, table: self.view(for: domain))
    }

    private func closure(of name: String, domain: String, table: [String: [String]]) -> Set<String> {
        if let cached = self.closures[domain]?[name] { return cached }
        var reached: Set<String> = [name]
        var frontier = [name]
        var level = self.maxHierarchyLevel
        while level > 0 && !frontier.isEmpty {
            var next: [String] = []
            for role in frontier {
                for parent in table[role] ?? [] where reached.insert(parent).inserted {
                    next.append(parent)
                }
            }
            frontier = next
            level -= 1
        }
        if self.closureCount > 200_000 {
            self.closures.removeAll(keepingCapacity: true)
            self.closureCount = 0
        }
        self.closures[domain, default: [:]][name] = reached
        self.closureCount += 1
        return reached
    }

    /// Go's breadth-first walk with pattern roles: from a role you reach its parents, the names
    /// those parents match as patterns, and the parents of the patterns that match it.
    private func patternHasLink(_ name1: String, _ name2: String, table: [String: [String]], roles: Set<String>) -> Bool {
        var allRoles = roles
        allRoles.insert(name1)
        allRoles.insert(name2)
        var matchedByCache: [String: [String]] = [:]
        var matchedCache: [String: [String]] = [:]
        /// Patterns that match `name`.
        func matchedBy(_ name: String) -> [String] {
            if let cached = matchedByCache[name] { return cached }
            let result = allRoles.filter { $0 != name && self.matches(name, $0) }.sorted()
            matchedByCache[name] = result
            return result
        }
        /// Names the pattern `name` matches.
        func matched(_ name: String) -> [String] {
            if let cached = matchedCache[name] { return cached }
            let result = allRoles.filter { $0 != name && self.matches($0, name) }.sorted()
            matchedCache[name] = result
            return result
        }
        var current: Set<String> = [name1]
        var level = self.maxHierarchyLevel
        while level >= 0 && !current.isEmpty {
            var next = Set<String>()
            for role in current {
                if role == name2 || self.matches(role, name2) { return true }
                for parent in table[role] ?? [] {
                    next.insert(parent)
                    next.formUnion(matched(parent))
                }
                for pattern in matchedBy(role) {
                    next.formUnion(table[pattern] ?? [])
                }
            }
            current = next
            level -= 1
        }
        return false
    }

    /// Names known in `domain` (with domain patterns, those of every matching domain).
    private func roles(in domain: String) -> Set<String> {
        guard let domainMatching = self.domainMatchingFunction else { return self.knownRoles[domain] ?? [] }
        var result = Set<String>()
        for (linkDomain, names) in self.knownRoles where linkDomain == domain || domainMatching(domain, linkDomain) {
            result.formUnion(names)
        }
        return result
    }

    /// Direct roles of `name` in `domain`.
    func roles(of name: String, domain: String = "") -> [String] {
        self.view(for: domain)[name] ?? []
    }

    /// Direct members of `role` in `domain`.
    func users(of role: String, domain: String = "") -> [String] {
        self.view(for: domain).filter { $0.value.contains(role) }.map(\.key).sorted()
    }
}
