import ServiceKit
import ServiceStorage

/// Identity's tables. Each migration runs once, in order, on SQLite and PostgreSQL alike.
public enum IdentityMigrations {
    public static let migrator = Migrator(
        service: "identity",
        migrations: [
            Migration(version: 1, name: "api tokens") { _ in
                [
                    """
                    CREATE TABLE identity_api_tokens (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        prefix TEXT NOT NULL,
                        token_hash TEXT NOT NULL UNIQUE,
                        scope TEXT NOT NULL CHECK (scope IN ('global', 'app')),
                        app_id TEXT,
                        tenant_id TEXT,
                        created_at BIGINT NOT NULL,
                        last_used_at BIGINT,
                        expires_at BIGINT,
                        revoked_at BIGINT
                    )
                    """
                ]
            }
        ]
    )
}
