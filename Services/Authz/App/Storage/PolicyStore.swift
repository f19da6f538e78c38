import CasbinEngine
import Foundation
import SQLKit
import ServiceKit
import ServiceStorage

/// One stored Casbin rule: its type (`p`, `g`) and values.
public struct StoredRule: Sendable, Hashable, Codable {
    public var ptype: String
    public var values: [String]

    public init(ptype: String, values: [String]) {
        self.ptype = ptype
        self.values = values
    }
}

/// A change to the policy, applied atomically with a version bump.
public enum PolicyChange: Sendable, Equatable {
    case add(StoredRule)
    case remove(StoredRule)
}

/// The changes that bring a policy from one version to another, in the order they were made.
public struct PolicyDelta: Sendable, Equatable {
    public var version: Int64
    public var changes: [PolicyChange]
}

/// Where the policy lives. The version moves on every change, so every replica can tell
/// cheaply whether it is current.
public protocol PolicyStore: Sendable {
    func version() async throws -> Int64
    func load() async throws -> (version: Int64, rules: [StoredRule])
    /// The changes made after `version`, when the store still has every one of them (a replica then
    /// applies them instead of reloading everything); nil when it does not.
    func changes(since version: Int64) async throws -> PolicyDelta?
    /// Applies `changes` in one transaction; returns the new version and how many changed rows.
    func apply(_ changes: [PolicyChange]) async throws -> (version: Int64, changed: Int)
    /// Calls `onChange` whenever any writer (any replica) commits a change, until cancelled.
    /// Returns false at once when the store cannot push changes (then polling is all there is).
    func listen(_ onChange: @escaping @Sendable () async -> Void) async throws -> Bool
}

extension PolicyStore {
    public func listen(_ onChange: @escaping @Sendable () async -> Void) async throws -> Bool { false }
    public func changes(since version: Int64) async throws -> PolicyDelta? { nil }
}

/// The PostgreSQL channel every policy change is announced on (`NOTIFY`, sent on commit).
public enum PolicyChannel {
    public static let name = "streamhub_authz_policy"
}

public actor InMemoryPolicyStore: PolicyStore {
    var rules: [StoredRule]
    var currentVersion: Int64 = 0

    public init(rules: [StoredRule] = []) {
        self.rules = rules
    }

    public func version() async throws -> Int64 { self.currentVersion }

    public func load() async throws -> (version: Int64, rules: [StoredRule]) { (self.currentVersion, self.rules) }

    public func apply(_ changes: [PolicyChange]) async throws -> (version: Int64, changed: Int) {
        var changed = 0
        for change in changes {
            switch change {
            case .add(let rule):
                if !self.rules.contains(rule) {
                    self.rules.append(rule)
                    changed += 1
                }
            case .remove(let rule):
                if let index = self.rules.firstIndex(of: rule) {
                    self.rules.remove(at: index)
                    changed += 1
                }
            }
        }
        if changed > 0 { self.currentVersion += 1 }
        return (self.currentVersion, changed)
    }
}

/// The policy in authz's SQL store (`authz_rules`, `authz_policy_version`).
public struct SQLPolicyStore: PolicyStore {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    struct Row: Decodable {
        var ptype: String
        var v0: String
        var v1: String
        var v2: String
        var v3: String
        var v4: String
        var v5: String
    }

    struct VersionRow: Decodable { var version: Int64 }

    public func version() async throws -> Int64 {
        try await self.database.withSQL { sql in
            try await sql.raw("SELECT version FROM authz_policy_version WHERE id = 1").first(decoding: VersionRow.self)?.version ?? 0
        }
    }

    public func load() async throws -> (version: Int64, rules: [StoredRule]) {
        try await self.database.transaction { sql in
            let version = try await sql.raw("SELECT version FROM authz_policy_version WHERE id = 1").first(decoding: VersionRow.self)?.version ?? 0
            let rows = try await sql.raw("SELECT ptype, v0, v1, v2, v3, v4, v5 FROM authz_rules ORDER BY id").all(decoding: Row.self)
            let rules = rows.map { row in
                var values = [row.v0, row.v1, row.v2, row.v3, row.v4, row.v5]
                while let last = values.last, last.isEmpty { values.removeLast() }
                return StoredRule(ptype: row.ptype, values: values)
            }
            return (version, rules)
        }
    }

    struct LogRow: Decodable {
        var version: Int64
        var op: String
        var ptype: String
        var v0: String
        var v1: String
        var v2: String
        var v3: String
        var v4: String
        var v5: String
    }

    /// From the change log; nil when a version after `since` has no entry there (pruned, or a
    /// migration that changed rules directly): then only a full reload is right.
    public func changes(since version: Int64) async throws -> PolicyDelta? {
        try await self.database.transaction { sql in
            let current = try await sql.raw("SELECT version FROM authz_policy_version WHERE id = 1").first(decoding: VersionRow.self)?.version ?? 0
            guard current > version else { return current == version ? PolicyDelta(version: current, changes: []) : nil }
            guard current - version <= 1000 else { return nil }
            let rows = try await sql.raw(
                """
                SELECT version, op, ptype, v0, v1, v2, v3, v4, v5 FROM authz_policy_log \
                WHERE version > \(bind: version) AND version <= \(bind: current) ORDER BY version, seq
                """
            ).all(decoding: LogRow.self)
            guard Set(rows.map(\.version)) == Set((version + 1)...current) else { return nil }
            let changes = rows.map { row -> PolicyChange in
                var values = [row.v0, row.v1, row.v2, row.v3, row.v4, row.v5]
                while let last = values.last, last.isEmpty { values.removeLast() }
                let rule = StoredRule(ptype: row.ptype, values: values)
                return row.op == "remove" ? .remove(rule) : .add(rule)
            }
            return PolicyDelta(version: current, changes: changes)
        }
    }

    /// On PostgreSQL: `LISTEN` on a connection of the pool's, held while listening.
    public func listen(_ onChange: @escaping @Sendable () async -> Void) async throws -> Bool {
        try await self.database.listen(channel: PolicyChannel.name, onChange)
    }

    public func apply(_ changes: [PolicyChange]) async throws -> (version: Int64, changed: Int) {
        for change in changes {
            let rule: StoredRule
            switch change {
            case .add(let r), .remove(let r): rule = r
            }
            guard rule.values.count <= 6, !rule.values.isEmpty else { throw StorageError.invalid("a rule has 1 to 6 values") }
        }
        return try await self.database.transaction { sql in
            // One writer at a time across replicas: an identical rule added by two concurrent requests
            // (two invitations granting one role) is stored once and counted once, not a 409.
            try await self.database.lock("authz_rules", in: sql)
            var changed = 0
            var applied: [(op: String, rule: StoredRule)] = []
            for change in changes {
                switch change {
                case .add(let rule):
                    let v = rule.values + Array(repeating: "", count: 6 - rule.values.count)
                    let existing = try await sql.raw(
                        """
                        SELECT ptype FROM authz_rules WHERE ptype = \(bind: rule.ptype) AND v0 = \(bind: v[0]) AND v1 = \(bind: v[1]) \
                        AND v2 = \(bind: v[2]) AND v3 = \(bind: v[3]) AND v4 = \(bind: v[4]) AND v5 = \(bind: v[5])
                        """
                    ).all()
                    guard existing.isEmpty else { continue }
                    try await sql.raw(
                        """
                        INSERT INTO authz_rules (ptype, v0, v1, v2, v3, v4, v5) VALUES (\(bind: rule.ptype), \(bind: v[0]), \(bind: v[1]), \
                        \(bind: v[2]), \(bind: v[3]), \(bind: v[4]), \(bind: v[5]))
                        """
                    ).run()
                    changed += 1
                    applied.append(("add", rule))
                case .remove(let rule):
                    let v = rule.values + Array(repeating: "", count: 6 - rule.values.count)
                    let removed = try await sql.raw(
                        """
                        DELETE FROM authz_rules WHERE ptype = \(bind: rule.ptype) AND v0 = \(bind: v[0]) AND v1 = \(bind: v[1]) \
                        AND v2 = \(bind: v[2]) AND v3 = \(bind: v[3]) AND v4 = \(bind: v[4]) AND v5 = \(bind: v[5]) RETURNING ptype
                        """
                    ).all()
                    changed += removed.count
                    if !removed.isEmpty { applied.append(("remove", rule)) }
                }
            }
            if changed > 0 {
                try await sql.raw("UPDATE authz_policy_version SET version = version + 1 WHERE id = 1").run()
                // The change log other replicas apply instead of reloading (the last 1,000 versions).
                let version = try await sql.raw("SELECT version FROM authz_policy_version WHERE id = 1").first(decoding: VersionRow.self)?.version ?? 0
                for (seq, entry) in applied.enumerated() {
                    let v = entry.rule.values + Array(repeating: "", count: 6 - entry.rule.values.count)
                    try await sql.raw(
                        """
                        INSERT INTO authz_policy_log (version, seq, op, ptype, v0, v1, v2, v3, v4, v5) VALUES (\(bind: version), \(bind: seq), \
                        \(bind: entry.op), \(bind: entry.rule.ptype), \(bind: v[0]), \(bind: v[1]), \(bind: v[2]), \(bind: v[3]), \(bind: v[4]), \(bind: v[5]))
                        """
                    ).run()
                }
                try await sql.raw("DELETE FROM authz_policy_log WHERE version <= \(bind: version - 1000)").run()
                // Delivered to every listening replica when the transaction commits.
                try await self.database.notify(channel: PolicyChannel.name, in: sql)
            }
            let version = try await sql.raw("SELECT version FROM authz_policy_version WHERE id = 1").first(decoding: VersionRow.self)?.version ?? 0
            return (version, changed)
        }
    }
}
