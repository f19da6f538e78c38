import CasbinEngine
import ServiceKit
import ServiceStorage

/// Authz's tables: Casbin rules in the usual `ptype, v0…v5` shape, and the policy version that
/// moves on every change.
public enum AuthzMigrations {
    public static let migrator = Migrator(
        service: "authz",
        migrations: [
            Migration(version: 1, name: "casbin rules and policy version") { dialect in
                let id = dialect == .postgres ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
                return [
                    """
                    CREATE TABLE authz_rules (
                        id \(id),
                        ptype TEXT NOT NULL,
                        v0 TEXT NOT NULL DEFAULT '',
                        v1 TEXT NOT NULL DEFAULT '',
                        v2 TEXT NOT NULL DEFAULT '',
                        v3 TEXT NOT NULL DEFAULT '',
                        v4 TEXT NOT NULL DEFAULT '',
                        v5 TEXT NOT NULL DEFAULT ''
                    )
                    """,
                    "CREATE UNIQUE INDEX authz_rules_unique ON authz_rules (ptype, v0, v1, v2, v3, v4, v5)",
                    "CREATE TABLE authz_policy_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
                    "INSERT INTO authz_policy_version (id, version) VALUES (1, 0)",
                ]
            },
            Migration(version: 2, name: "default roles") { _ in
                // The built-in roles from config/authz/default_policy.csv.
                let lines = try PolicyCSV.parse(DefaultPolicy.policy, file: "default_policy.csv")
                return lines.map { line in
                    let values = line.values + Array(repeating: "", count: max(0, 6 - line.values.count))
                    let quoted = values.prefix(6).map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: ", ")
                    return "INSERT INTO authz_rules (ptype, v0, v1, v2, v3, v4, v5) VALUES ('\(line.type)', \(quoted))"
                } + ["UPDATE authz_policy_version SET version = version + 1 WHERE id = 1"]
            },
            Migration(version: 3, name: "cluster:read for admins") { _ in
                // Stores made before the permission existed get it; a fresh store has it from version 2.
                [
                    """
                    INSERT INTO authz_rules (ptype, v0, v1, v2, v3, v4, v5) \
                    SELECT 'p', 'admin', '*', 'cluster', 'read', '', '' WHERE NOT EXISTS \
                    (SELECT 1 FROM authz_rules WHERE ptype = 'p' AND v0 = 'admin' AND v1 = '*' AND v2 = 'cluster' AND v3 = 'read' AND v4 = '' AND v5 = '')
                    """,
                    "UPDATE authz_policy_version SET version = version + 1 WHERE id = 1",
                ]
            },
            Migration(version: 4, name: "idempotency keys") { _ in SQLIdempotencyStore.migration(prefix: "authz") },
            Migration(version: 5, name: "policy change log: replicas apply changes instead of reloading") { _ in
                [
                    """
                    CREATE TABLE authz_policy_log (
                        version BIGINT NOT NULL,
                        seq INTEGER NOT NULL,
                        op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
                        ptype TEXT NOT NULL,
                        v0 TEXT NOT NULL, v1 TEXT NOT NULL, v2 TEXT NOT NULL, v3 TEXT NOT NULL, v4 TEXT NOT NULL, v5 TEXT NOT NULL,
                        PRIMARY KEY (version, seq)
                    )
                    """
                ]
            },
            Migration(version: 6, name: "idempotency leases: a key whose process died is known abandoned in seconds") { _ in
                SQLIdempotencyStore.leaseMigration(prefix: "authz")
            },
        ]
    )
}
