import Foundation
import SQLKit
import ServiceKit
import ServiceStorage
import Shared

/// A stored node.
public struct NodeRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var url: String
    public var region: String?
    public var capacity: Int?
    public var rooms: Int
    public var participants: Int
    public var joinedAt: Int64
    public var lastSeenAt: Int64

    func summary(aliveSince: Int64) -> ClusterNode {
        ClusterNode(
            id: self.id, name: self.name, url: self.url, region: self.region, capacity: self.capacity, rooms: self.rooms,
            participants: self.participants, alive: self.lastSeenAt > aliveSince, joinedAt: Timestamp.iso8601(Timestamp.date(millis: self.joinedAt)),
            lastSeenAt: Timestamp.iso8601(Timestamp.date(millis: self.lastSeenAt)))
    }
}

/// The LiveKit node registry, in the database: a heartbeat to any media replica keeps a node
/// alive for all of them, and a room stays on the node it was placed on while that node lives.
public struct SQLNodeRegistry: Sendable {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    struct Row: Decodable {
        var id: String
        var name: String
        var url: String
        var region: String?
        var capacity: Int?
        var rooms: Int
        var participants: Int
        var joined_at: Int64
        var last_seen_at: Int64

        var record: NodeRecord {
            NodeRecord(
                id: self.id, name: self.name, url: self.url, region: self.region, capacity: self.capacity, rooms: self.rooms,
                participants: self.participants, joinedAt: self.joined_at, lastSeenAt: self.last_seen_at)
        }
    }

    static let columns = "id, name, url, region, capacity, rooms, participants, joined_at, last_seen_at"

    /// Registers `node` (or refreshes it when its id is known); nodes silent for `pruneBefore` are dropped.
    public func join(_ node: NodeRecord, pruneBefore: Int64) async throws -> NodeRecord {
        try await self.database.transaction { sql in
            try await sql.raw("DELETE FROM media_nodes WHERE last_seen_at < \(bind: pruneBefore)").run()
            try await sql.raw(
                """
                INSERT INTO media_nodes (\(unsafeRaw: Self.columns)) VALUES (\(bind: node.id), \(bind: node.name), \(bind: node.url), \
                \(bind: node.region), \(bind: node.capacity), 0, 0, \(bind: node.joinedAt), \(bind: node.lastSeenAt)) \
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url, region = excluded.region, \
                capacity = excluded.capacity, last_seen_at = excluded.last_seen_at
                """
            ).run()
            return try await sql.raw("SELECT \(unsafeRaw: Self.columns) FROM media_nodes WHERE id = \(bind: node.id)").first(decoding: Row.self)?.record
                ?? node
        }
    }

    /// Marks a node alive now with its load; nil when the id is unknown.
    public func heartbeat(id: String, rooms: Int?, participants: Int?, at now: Int64) async throws -> NodeRecord? {
        try await self.database.withSQL { sql in
            try await sql.raw(
                """
                UPDATE media_nodes SET last_seen_at = \(bind: now), rooms = COALESCE(\(bind: rooms), rooms), \
                participants = COALESCE(\(bind: participants), participants) WHERE id = \(bind: id) \
                RETURNING \(unsafeRaw: Self.columns)
                """
            ).first(decoding: Row.self)?.record
        }
    }

    public func nodes() async throws -> [NodeRecord] {
        try await self.database.withSQL { sql in
            try await sql.raw("SELECT \(unsafeRaw: Self.columns) FROM media_nodes ORDER BY joined_at, id").all(decoding: Row.self).map(\.record)
        }
    }

    struct Placement: Decodable {
        var node_id: String?
    }

    /// Where `room` is served: the node it was placed on while that node is alive; else the alive
    /// node with the fewest participants that has room for one more (and the room is placed there);
    /// nil when no node is alive (then the configured `LIVEKIT_URL` serves it).
    public func place(appId: String, room: String, aliveSince: Int64) async throws -> String? {
        try await self.database.transaction { sql in
            try await self.database.lock("media_room_placement:" + RoomName.livekit(appId: appId, room: room), in: sql)
            if let current = try await sql.raw("SELECT node_id FROM media_rooms WHERE app_id = \(bind: appId) AND room = \(bind: room)")
                .first(decoding: Placement.self)?.node_id,
                let node = try await sql.raw(
                    "SELECT \(unsafeRaw: Self.columns) FROM media_nodes WHERE id = \(bind: current) AND last_seen_at > \(bind: aliveSince)"
                ).first(decoding: Row.self)
            {
                return node.url
            }
            guard
                let node = try await sql.raw(
                    """
                    SELECT \(unsafeRaw: Self.columns) FROM media_nodes WHERE last_seen_at > \(bind: aliveSince) \
                    AND (capacity IS NULL OR participants < capacity) ORDER BY participants, rooms, joined_at, id LIMIT 1
                    """
                ).first(decoding: Row.self)
            else { return nil }
            try await sql.raw("UPDATE media_rooms SET node_id = \(bind: node.id) WHERE app_id = \(bind: appId) AND room = \(bind: room)").run()
            return node.url
        }
    }
}
