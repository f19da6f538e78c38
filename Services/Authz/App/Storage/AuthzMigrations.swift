import ServiceKit

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
            }
        ]
    )
}
