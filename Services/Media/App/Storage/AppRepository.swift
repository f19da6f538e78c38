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

/// A stream of an app's room.
public struct StreamRecord: Sendable, Equatable {
    public var id: String
    public var appId: String
    public var tenantId: String
    public var room: String
    public var state: String
    public var viewers: Int
    public var createdAt: Int64
    public var endedAt: Int64?
    /// Whether a track is published in the room (LiveKit's webhooks say so).
    public var publishing: Bool = false

    public var summary: StreamSummary {
        StreamSummary(
            id: self.id, appId: self.appId, room: self.room, state: self.state, viewers: self.viewers, publishing: self.publishing,
            createdAt: Timestamp.iso8601(Timestamp.date(millis: self.createdAt)), endedAt: self.endedAt.map { Timestamp.iso8601(Timestamp.date(millis: $0)) })
    }
}

/// Media's apps, their rooms and streams.
public protocol AppRepository: Sendable {
    func insert(_ app: AppRecord) async throws
    /// The visible apps in creation order; with `page`, those after `page.after`, at most `page.limit`.
    func list(_ visibility: AppVisibility, page: ListPage?) async throws -> [AppRecord]
    /// Inserts `app` unless its tenant has `limit` apps already (checked and written atomically).
    /// - Throws: ``StorageError/quotaExceeded(_:)`` naming `maxApps`.
    func create(_ app: AppRecord, limit: Int) async throws
    func update(id: String, name: String?, publicPlayback: Bool?) async throws -> AppRecord?
    /// Deletes an app with its rooms and streams; false when there was none.
    func delete(id: String) async throws -> Bool
    /// Whether `room` belongs to app `appId` (a stream was opened for it).
    func hasRoom(appId: String, room: String) async throws -> Bool
    /// Opens `stream` (claiming its room for the app) unless its tenant has `limit` live streams.
    /// - Throws: ``StorageError/quotaExceeded(_:)`` naming `maxConcurrentStreams`.
    func openStream(_ stream: StreamRecord, limit: Int) async throws
    func liveStreams(appId: String) async throws -> [StreamRecord]
    /// Ends a live stream; nil when the app has no such stream.
    func endStream(appId: String, id: String, at: Int64) async throws -> StreamRecord?
}

enum MediaQuota {
    static func apps(_ limit: Int) -> StorageError {
        StorageError.quotaExceeded("Quota maxApps (\(limit)) reached: delete an app or raise the tenant's quota")
    }

    static func streams(_ limit: Int) -> StorageError {
        StorageError.quotaExceeded("Quota maxConcurrentStreams (\(limit)) reached: end a stream or raise the tenant's quota")
    }
}

public actor InMemoryAppRepository: AppRepository {
    var apps: [String: AppRecord] = [:]
    var rooms: Set<[String]> = []
    var streams: [String: StreamRecord] = [:]

    public func create(_ app: AppRecord, limit: Int) async throws {
        guard self.apps.values.filter({ $0.tenantId == app.tenantId }).count < limit else { throw MediaQuota.apps(limit) }
        self.apps[app.id] = app
    }

    public func update(id: String, name: String?, publicPlayback: Bool?) async throws -> AppRecord? {
        guard var app = self.apps[id] else { return nil }
        if let name { app.name = name }
        if let publicPlayback { app.publicPlayback = publicPlayback }
        self.apps[id] = app
        return app
    }

    public func delete(id: String) async throws -> Bool {
        self.rooms = self.rooms.filter { $0[0] != id }
        self.streams = self.streams.filter { $0.value.appId != id }
        return self.apps.removeValue(forKey: id) != nil
    }

    public func hasRoom(appId: String, room: String) async throws -> Bool { self.rooms.contains([appId, room]) }

    public func openStream(_ stream: StreamRecord, limit: Int) async throws {
        guard self.streams.values.filter({ $0.tenantId == stream.tenantId && $0.state == "live" }).count < limit else {
            throw MediaQuota.streams(limit)
        }
        if self.streams.values.contains(where: { $0.appId == stream.appId && $0.room == stream.room && $0.state == "live" }) {
            throw StorageError.conflict("Room \(stream.room) already has a live stream")
        }
        self.rooms.insert([stream.appId, stream.room])
        self.streams[stream.id] = stream
    }

    public func liveStreams(appId: String) async throws -> [StreamRecord] {
        self.streams.values.filter { $0.appId == appId && $0.state == "live" }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func endStream(appId: String, id: String, at: Int64) async throws -> StreamRecord? {
        guard var stream = self.streams[id], stream.appId == appId else { return nil }
        if stream.state == "live" {
            stream.state = "ended"
            stream.endedAt = at
            stream.viewers = 0
            self.streams[id] = stream
        }
        return stream
    }

    public init(apps: [AppRecord] = []) {
        for app in apps { self.apps[app.id] = app }
    }

    public func insert(_ app: AppRecord) async throws {
        self.apps[app.id] = app
    }

    public func list(_ visibility: AppVisibility, page: ListPage?) async throws -> [AppRecord] {
        let apps = self.apps.values.filter { app in
            switch visibility {
            case .all: true
            case .tenant(let tenant): app.tenantId == tenant
            case .app(let id): app.id == id
            case .nothing: false
            }
        }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        guard let page else { return apps }
        guard let after = page.after else { return Array(apps.prefix(page.limit)) }
        guard let mark = self.apps[after] else { return [] }
        return Array(apps.filter { ($0.createdAt, $0.id) > (mark.createdAt, mark.id) }.prefix(page.limit))
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

    public func create(_ app: AppRecord, limit: Int) async throws {
        try await self.database.transaction { sql in
            try await self.database.lock("media_apps:" + app.tenantId, in: sql)
            struct Count: Decodable { var n: Int }
            let count = try await sql.raw("SELECT COUNT(*) AS n FROM media_apps WHERE tenant_id = \(bind: app.tenantId)").first(decoding: Count.self)?.n ?? 0
            guard count < limit else { throw MediaQuota.apps(limit) }
            try await sql.raw(
                """
                INSERT INTO media_apps (id, tenant_id, name, public_playback, created_at) VALUES \
                (\(bind: app.id), \(bind: app.tenantId), \(bind: app.name), \(bind: app.publicPlayback), \(bind: app.createdAt))
                """
            ).run()
        }
    }

    public func update(id: String, name: String?, publicPlayback: Bool?) async throws -> AppRecord? {
        try await self.database.transaction { sql in
            if let name { try await sql.raw("UPDATE media_apps SET name = \(bind: name) WHERE id = \(bind: id)").run() }
            if let publicPlayback { try await sql.raw("UPDATE media_apps SET public_playback = \(bind: publicPlayback) WHERE id = \(bind: id)").run() }
            return try await sql.raw("SELECT id, tenant_id, name, public_playback, created_at FROM media_apps WHERE id = \(bind: id)").first(decoding: Row.self)
                .map { AppRecord(id: $0.id, tenantId: $0.tenant_id, name: $0.name, publicPlayback: $0.public_playback, createdAt: $0.created_at) }
        }
    }

    public func delete(id: String) async throws -> Bool {
        try await self.database.transaction { sql in
            for table in ["media_participants", "media_tracks"] {
                try await sql.raw(
                    "DELETE FROM \(unsafeRaw: table) WHERE stream_id IN (SELECT id FROM media_streams WHERE app_id = \(bind: id))"
                ).run()
            }
            try await sql.raw("DELETE FROM media_streams WHERE app_id = \(bind: id)").run()
            try await sql.raw("DELETE FROM media_rooms WHERE app_id = \(bind: id)").run()
            return !(try await sql.raw("DELETE FROM media_apps WHERE id = \(bind: id) RETURNING id").all()).isEmpty
        }
    }

    public func hasRoom(appId: String, room: String) async throws -> Bool {
        try await self.database.withSQL { sql in
            !(try await sql.raw("SELECT room FROM media_rooms WHERE app_id = \(bind: appId) AND room = \(bind: room)").all()).isEmpty
        }
    }

    public func openStream(_ stream: StreamRecord, limit: Int) async throws {
        try await self.database.transaction { sql in
            try await self.database.lock("media_streams:" + stream.tenantId, in: sql)
            struct Count: Decodable { var n: Int }
            let live =
                try await sql.raw("SELECT COUNT(*) AS n FROM media_streams WHERE tenant_id = \(bind: stream.tenantId) AND state = 'live'")
                .first(decoding: Count.self)?.n ?? 0
            guard live < limit else { throw MediaQuota.streams(limit) }
            // Rooms are the app's own (LiveKit's room is named after the app too): another
            // tenant's room of the same name is no conflict and is not revealed.
            struct Owner: Decodable { var app_id: String }
            let known = try await sql.raw("SELECT app_id FROM media_rooms WHERE app_id = \(bind: stream.appId) AND room = \(bind: stream.room)")
                .first(decoding: Owner.self)
            let occupied = try await sql.raw(
                "SELECT id FROM media_streams WHERE app_id = \(bind: stream.appId) AND room = \(bind: stream.room) AND state = 'live'"
            ).all()
            guard occupied.isEmpty else { throw StorageError.conflict("Room \(stream.room) already has a live stream") }
            if known == nil {
                try await sql.raw(
                    "INSERT INTO media_rooms (app_id, room, created_at) VALUES (\(bind: stream.appId), \(bind: stream.room), \(bind: stream.createdAt))"
                ).run()
            }
            try await sql.raw(
                """
                INSERT INTO media_streams (id, app_id, tenant_id, room, state, viewers, created_at, ended_at) VALUES (\(bind: stream.id), \
                \(bind: stream.appId), \(bind: stream.tenantId), \(bind: stream.room), 'live', 0, \(bind: stream.createdAt), NULL)
                """
            ).run()
        }
    }

    struct StreamRow: Decodable {
        var id: String
        var app_id: String
        var tenant_id: String
        var room: String
        var state: String
        var viewers: Int
        var created_at: Int64
        var ended_at: Int64?
        var publishing: Bool

        var record: StreamRecord {
            StreamRecord(
                id: self.id, appId: self.app_id, tenantId: self.tenant_id, room: self.room, state: self.state, viewers: self.viewers,
                createdAt: self.created_at, endedAt: self.ended_at, publishing: self.publishing)
        }
    }

    static let streamColumns = "id, app_id, tenant_id, room, state, viewers, created_at, ended_at, publishing"

    public func liveStreams(appId: String) async throws -> [StreamRecord] {
        try await self.database.withSQL { sql in
            try await sql.raw(
                "SELECT \(unsafeRaw: Self.streamColumns) FROM media_streams WHERE app_id = \(bind: appId) AND state = 'live' ORDER BY created_at, id"
            ).all(decoding: StreamRow.self).map(\.record)
        }
    }

    public func endStream(appId: String, id: String, at: Int64) async throws -> StreamRecord? {
        try await self.database.withSQL { sql in
            try await sql.raw(
                "UPDATE media_streams SET state = 'ended', ended_at = \(bind: at), viewers = 0 WHERE id = \(bind: id) AND app_id = \(bind: appId) AND state = 'live'"
            ).run()
            return try await sql.raw("SELECT \(unsafeRaw: Self.streamColumns) FROM media_streams WHERE id = \(bind: id) AND app_id = \(bind: appId)")
                .first(decoding: StreamRow.self)?.record
        }
    }

    public func list(_ visibility: AppVisibility, page: ListPage?) async throws -> [AppRecord] {
        let rows = try await self.database.withSQL { sql -> [Row] in
            var query: SQLQueryString = "SELECT a.id, a.tenant_id, a.name, a.public_playback, a.created_at FROM media_apps a"
            switch visibility {
            case .all: query = query + " WHERE 1 = 1"
            case .tenant(let tenant): query = query + " WHERE a.tenant_id = \(bind: tenant)"
            case .app(let id): query = query + " WHERE a.id = \(bind: id)"
            case .nothing: return []
            }
            if let after = page?.after {
                query = query + """
                     AND (a.created_at > (SELECT created_at FROM media_apps WHERE id = \(bind: after)) \
                    OR (a.created_at = (SELECT created_at FROM media_apps WHERE id = \(bind: after)) AND a.id > \(bind: after)))
                    """
            }
            query = query + " ORDER BY a.created_at, a.id"
            if let page { query = query + " LIMIT \(bind: page.limit)" }
            return try await sql.raw(query).all(decoding: Row.self)
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
            },
            Migration(version: 2, name: "rooms and streams") { _ in
                [
                    """
                    CREATE TABLE media_rooms (
                        app_id TEXT NOT NULL REFERENCES media_apps (id),
                        room TEXT NOT NULL,
                        created_at BIGINT NOT NULL,
                        PRIMARY KEY (app_id, room)
                    )
                    """,
                    """
                    CREATE TABLE media_streams (
                        id TEXT PRIMARY KEY,
                        app_id TEXT NOT NULL REFERENCES media_apps (id),
                        tenant_id TEXT NOT NULL,
                        room TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('live', 'ended')),
                        viewers INTEGER NOT NULL,
                        created_at BIGINT NOT NULL,
                        ended_at BIGINT
                    )
                    """,
                    "CREATE INDEX media_streams_tenant_live ON media_streams (tenant_id, state)",
                    "CREATE INDEX media_streams_app ON media_streams (app_id, state)",
                ]
            },
            Migration(version: 3, name: "LiveKit webhooks and nodes: one app per room, events seen, participants, tracks, node registry") { _ in
                [
                    "CREATE UNIQUE INDEX media_rooms_room ON media_rooms (room)",
                    "ALTER TABLE media_streams ADD COLUMN publishing BOOLEAN NOT NULL DEFAULT FALSE",
                    "CREATE INDEX media_streams_room ON media_streams (room, state)",
                    """
                    CREATE TABLE media_webhook_events (
                        id TEXT PRIMARY KEY,
                        event TEXT NOT NULL,
                        received_at BIGINT NOT NULL
                    )
                    """,
                    "CREATE INDEX media_webhook_events_received ON media_webhook_events (received_at)",
                    """
                    CREATE TABLE media_participants (
                        stream_id TEXT NOT NULL,
                        sid TEXT NOT NULL,
                        viewer BOOLEAN NOT NULL,
                        joined_at BIGINT,
                        left_at BIGINT,
                        PRIMARY KEY (stream_id, sid)
                    )
                    """,
                    """
                    CREATE TABLE media_nodes (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        url TEXT NOT NULL,
                        region TEXT,
                        capacity INTEGER,
                        rooms INTEGER NOT NULL,
                        participants INTEGER NOT NULL,
                        joined_at BIGINT NOT NULL,
                        last_seen_at BIGINT NOT NULL
                    )
                    """,
                    "ALTER TABLE media_rooms ADD COLUMN node_id TEXT",
                    """
                    CREATE TABLE media_tracks (
                        stream_id TEXT NOT NULL,
                        sid TEXT NOT NULL,
                        unpublished BOOLEAN NOT NULL,
                        PRIMARY KEY (stream_id, sid)
                    )
                    """,
                ]
            },
            Migration(version: 4, name: "rooms named per app: a room name is unique within its app only") { _ in
                ["DROP INDEX media_rooms_room"]
            },
            Migration(version: 5, name: "idempotency keys") { _ in SQLIdempotencyStore.migration(prefix: "media") },
            Migration(version: 6, name: "idempotency leases: a key whose process died is known abandoned in seconds") { _ in
                SQLIdempotencyStore.leaseMigration(prefix: "media")
            },
        ]
    )
}
