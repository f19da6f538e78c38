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
            },
            Migration(version: 2, name: "users, tenants, memberships") { dialect in
                let bool = dialect == .postgres ? "BOOLEAN" : "INTEGER"
                return [
                    """
                    CREATE TABLE identity_users (
                        id TEXT PRIMARY KEY,
                        email TEXT NOT NULL UNIQUE,
                        name TEXT,
                        password_hash TEXT NOT NULL,
                        superadmin \(bool) NOT NULL,
                        disabled_at BIGINT,
                        sessions_not_before BIGINT NOT NULL,
                        created_at BIGINT NOT NULL
                    )
                    """,
                    """
                    CREATE TABLE identity_tenants (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        owner_id TEXT NOT NULL REFERENCES identity_users (id),
                        max_apps INTEGER NOT NULL,
                        max_concurrent_streams INTEGER NOT NULL,
                        max_members INTEGER NOT NULL,
                        max_tokens INTEGER NOT NULL,
                        created_at BIGINT NOT NULL
                    )
                    """,
                    """
                    CREATE TABLE identity_memberships (
                        tenant_id TEXT NOT NULL REFERENCES identity_tenants (id),
                        user_id TEXT NOT NULL REFERENCES identity_users (id),
                        created_at BIGINT NOT NULL,
                        PRIMARY KEY (tenant_id, user_id)
                    )
                    """,
                    "CREATE INDEX identity_memberships_user ON identity_memberships (user_id, created_at)",
                ]
            },
            Migration(version: 3, name: "totp and recovery codes") { _ in
                [
                    """
                    CREATE TABLE identity_totp (
                        user_id TEXT PRIMARY KEY REFERENCES identity_users (id),
                        secret_sealed TEXT NOT NULL,
                        confirmed_at BIGINT,
                        last_step BIGINT NOT NULL
                    )
                    """,
                    """
                    CREATE TABLE identity_recovery_codes (
                        user_id TEXT NOT NULL REFERENCES identity_users (id),
                        code_hash TEXT NOT NULL,
                        used_at BIGINT,
                        PRIMARY KEY (user_id, code_hash)
                    )
                    """,
                ]
            },
            Migration(version: 4, name: "sign-in links, mail limiter, mail outbox") { _ in
                [
                    """
                    CREATE TABLE identity_link_tokens (
                        token_hash TEXT PRIMARY KEY,
                        purpose TEXT NOT NULL CHECK (purpose IN ('magic', 'reset')),
                        user_id TEXT NOT NULL REFERENCES identity_users (id),
                        created_at BIGINT NOT NULL,
                        expires_at BIGINT NOT NULL,
                        used_at BIGINT
                    )
                    """,
                    """
                    CREATE TABLE identity_mail_requests (
                        id TEXT PRIMARY KEY,
                        kind TEXT NOT NULL,
                        email TEXT NOT NULL,
                        ip TEXT NOT NULL,
                        created_at BIGINT NOT NULL
                    )
                    """,
                    "CREATE INDEX identity_mail_requests_email ON identity_mail_requests (email, created_at)",
                    "CREATE INDEX identity_mail_requests_ip ON identity_mail_requests (ip, created_at)",
                    """
                    CREATE TABLE identity_mail_outbox (
                        id TEXT PRIMARY KEY,
                        recipient TEXT NOT NULL,
                        subject TEXT NOT NULL,
                        body TEXT NOT NULL,
                        created_at BIGINT NOT NULL,
                        attempts INTEGER NOT NULL,
                        next_attempt_at BIGINT NOT NULL,
                        sent_at BIGINT
                    )
                    """,
                    "CREATE INDEX identity_mail_outbox_due ON identity_mail_outbox (sent_at, next_attempt_at)",
                ]
            },
            Migration(version: 5, name: "mail given up (refused, or its link expired)") { _ in
                ["ALTER TABLE identity_mail_outbox ADD COLUMN failed_at BIGINT"]
            },
            Migration(version: 6, name: "failure counts (second factor, magic links, the opt-in login throttle); the break-glass logout") { _ in
                [
                    """
                    CREATE TABLE identity_attempts (
                        id TEXT PRIMARY KEY,
                        kind TEXT NOT NULL,
                        subject TEXT NOT NULL,
                        created_at BIGINT NOT NULL
                    )
                    """,
                    "CREATE INDEX identity_attempts_subject ON identity_attempts (kind, subject, created_at)",
                    "CREATE TABLE identity_break_glass (id INTEGER PRIMARY KEY, sessions_not_before BIGINT NOT NULL)",
                ]
            },
            Migration(version: 7, name: "role intents: grants in authz made one outcome with identity's rows") { _ in
                [
                    """
                    CREATE TABLE identity_role_intents (
                        id TEXT PRIMARY KEY,
                        subject TEXT NOT NULL,
                        role TEXT NOT NULL,
                        tenant_id TEXT NOT NULL,
                        created_at BIGINT NOT NULL,
                        next_attempt_at BIGINT NOT NULL,
                        attempts INTEGER NOT NULL
                    )
                    """,
                    "CREATE INDEX identity_role_intents_due ON identity_role_intents (next_attempt_at)",
                ]
            },
            Migration(version: 8, name: "idempotency keys") { _ in SQLIdempotencyStore.migration(prefix: "identity") },
            Migration(version: 9, name: "idempotency leases: a key whose process died is known abandoned in seconds") { _ in
                SQLIdempotencyStore.leaseMigration(prefix: "identity")
            },
            Migration(version: 10, name: "invitations: pending offers accepted by the invitee") { _ in SQLInvitationRepository.migration },
            Migration(version: 11, name: "verified e-mail addresses (accounts made before count as verified)") { _ in
                [
                    "ALTER TABLE identity_users ADD COLUMN verified_at BIGINT",
                    "UPDATE identity_users SET verified_at = created_at",
                    // Links get a third purpose: the table is made again (SQLite cannot change a CHECK).
                    """
                    CREATE TABLE identity_link_tokens_v11 (
                        token_hash TEXT PRIMARY KEY,
                        purpose TEXT NOT NULL CHECK (purpose IN ('magic', 'reset', 'verify')),
                        user_id TEXT NOT NULL REFERENCES identity_users (id),
                        created_at BIGINT NOT NULL,
                        expires_at BIGINT NOT NULL,
                        used_at BIGINT
                    )
                    """,
                    """
                    INSERT INTO identity_link_tokens_v11 (token_hash, purpose, user_id, created_at, expires_at, used_at) \
                    SELECT token_hash, purpose, user_id, created_at, expires_at, used_at FROM identity_link_tokens
                    """,
                    "DROP TABLE identity_link_tokens",
                    "ALTER TABLE identity_link_tokens_v11 RENAME TO identity_link_tokens",
                ]
            },
        ]
    )
}
