import Foundation
import SQLKit
import ServiceKit
import ServiceStorage
import Shared

/// A stored app.
public struct AppRecord: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var publicPlayback: Bool
    public var createdAt: Int64

    public init(id: String, tenantId: String, name: String, publicPlayback: Bool, createdAt: Int64) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.publicPlayback = publicPlayback
        self.createdAt = createdAt
    }

    public var summary: AppSummary {
        AppSummary(
            id: self.id, tenantId: self.tenantId, name: self.name, features: AppFeatures(publicPlayback: self.publicPlayback),
            createdAt: Timestamp.iso8601(Timestamp.date(millis: self.createdAt))
        )
    }
}

/// Which apps a caller may see.
public enum AppVisibility: Sendable, Equatable {
    /// Every app (global tokens, superadmins).
    case all
    case tenant(String)
    case app(String)
    case nothing

    public init(principal: Principal) {
        if principal.bypassesAuthorization {
            self = .all
        } else if principal.scope == .app, let app = principal.appId {
            self = .app(app)
        } else if let tenant = principal.tenantId {
            self = .tenant(tenant)
        } else {
            self = .nothing
        }
    }
}

/// Media's apps.
public protocol AppRepository: Sendable {
    func insert(_ app: AppRecord) async throws
    func list(_ visibility: AppVisibility) async throws -> [AppRecord]
}

public actor InMemoryAppRepository: AppRepository {
    var apps: [String: AppRecord] = [:]

    public init(apps: [AppRecord] = []) {
        for app in apps { self.apps[app.id] = app }
    }

    public func insert(_ app: AppRecord) async throws {
        self.apps[app.id] = app
    }

    public func list(_ visibility: AppVisibility) async throws -> [AppRecord] {
        self.apps.values.filter { app in
            switch visibility {
            case .all: true
            case .tenant(let tenant): app.tenantId == tenant
            case .app(let id): app.id == id
            case .nothing: false
            }
        }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }
}

public struct SQLAppRepository: AppRepository {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    struct Row: Decodable {
        var id: String
        var tenant_id: String
        var name: String
        var public_playback: Bool
        var created_at: Int64
    }

    public func insert(_ app: AppRecord) async throws {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                INSERT INTO media_apps (id, tenant_id, name, public_playback, created_at) VALUES \
                (\(bind: app.id), \(bind: app.tenantId), \(bind: app.name), \(bind: app.publicPlayback), \(bind: app.createdAt))
                """
            ).run()
        }
    }

    public func list(_ visibility: AppVisibility) async throws -> [AppRecord] {
        let rows = try await self.database.withSQL { sql -> [Row] in
            let base: SQLQueryString = "SELECT id, tenant_id, name, public_playback, created_at FROM media_apps"
            let query: SQLQueryString
            switch visibility {
            case .all: query = base
            case .tenant(let tenant): query = base + " WHERE tenant_id = \(bind: tenant)"
            case .app(let id): query = base + " WHERE id = \(bind: id)"
            case .nothing: return []
            }
            return try await sql.raw(query + " ORDER BY created_at, id").all(decoding: Row.self)
        }
        return rows.map { AppRecord(id: $0.id, tenantId: $0.tenant_id, name: $0.name, publicPlayback: $0.public_playback, createdAt: $0.created_at) }
    }
}

public enum MediaMigrations {
    public static let migrator = Migrator(
        service: "media",
        migrations: [
            Migration(version: 1, name: "apps") { _ in
                [
                    """
                    CREATE TABLE media_apps (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        public_playback BOOLEAN NOT NULL DEFAULT TRUE,
                        created_at BIGINT NOT NULL
                    )
                    """,
                    "CREATE INDEX media_apps_tenant ON media_apps (tenant_id)",
                ]
            }
        ]
    )
}
