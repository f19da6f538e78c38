import Foundation
import SQLKit
import ServiceKit
import ServiceStorage
import Shared

/// What a webhook delivery did.
public enum WebhookOutcome: String, Sendable, Equatable {
    /// The stream's state follows the event.
    case applied
    /// This event id was seen before (LiveKit retries): nothing changed.
    case duplicate
    /// No live stream in that room, or an event stream state does not depend on.
    case ignored
}

/// Stream state from LiveKit's webhooks, in the database so every replica agrees.
///
/// Each event id is recorded in the same transaction as its effect, so a repeated delivery (to
/// this replica or another) changes nothing. Participants and tracks are kept as sets keyed by
/// LiveKit's sid, and viewer counts and `publishing` are recounted from them: a duplicate, or a
/// `participant_left` that arrives before its `participant_joined`, cannot skew a count.
public struct SQLStreamEvents: Sendable {
    let database: any Database
    /// How long event ids are remembered (LiveKit retries for minutes, not days).
    let memory: Int64

    public init(database: any Database, memory: Int64 = 24 * 3600 * 1000) {
        self.database = database
        self.memory = memory
    }

    struct StreamId: Decodable { var id: String }

    public func apply(_ event: LiveKitEvent, at now: Int64) async throws -> WebhookOutcome {
        let effects: Set<String> = [
            "room_finished", "participant_joined", "participant_left", "track_published", "track_unpublished",
        ]
        return try await self.database.transaction { sql in
            if let id = event.id, !id.isEmpty {
                let fresh = try await sql.raw(
                    """
                    INSERT INTO media_webhook_events (id, event, received_at) VALUES (\(bind: id), \(bind: event.event), \(bind: now)) \
                    ON CONFLICT (id) DO NOTHING RETURNING id
                    """
                ).all()
                guard !fresh.isEmpty else { return .duplicate }
                try await sql.raw("DELETE FROM media_webhook_events WHERE received_at < \(bind: now - self.memory)").run()
            }
            guard effects.contains(event.event), let room = event.room?.name, !room.isEmpty else { return .ignored }
            // One writer per room at a time, across replicas.
            try await self.database.lock("media_room_events:" + room, in: sql)
            // LiveKit's room is `<app>.<room>`; otherwise it is a room opened before rooms were named
            // per app, taken when exactly one live stream has that name.
            var streams: [StreamId] = []
            if let (appId, name) = RoomName.split(room) {
                streams = try await sql.raw(
                    "SELECT id FROM media_streams WHERE app_id = \(bind: appId) AND room = \(bind: name) AND state = 'live'"
                ).all(decoding: StreamId.self)
            }
            if streams.isEmpty {
                streams = try await sql.raw("SELECT id FROM media_streams WHERE room = \(bind: room) AND state = 'live'").all(decoding: StreamId.self)
            }
            guard streams.count == 1, let stream = streams.first?.id else { return .ignored }
            switch event.event {
            case "room_finished":
                try await sql.raw(
                    "UPDATE media_streams SET state = 'ended', ended_at = \(bind: now), viewers = 0, publishing = \(bind: false) WHERE id = \(bind: stream)"
                ).run()
                return .applied
            case "participant_joined":
                guard let sid = event.participant?.sid, !sid.isEmpty else { return .ignored }
                try await sql.raw(
                    """
                    INSERT INTO media_participants (stream_id, sid, viewer, joined_at, left_at) \
                    VALUES (\(bind: stream), \(bind: sid), \(bind: event.isViewer), \(bind: now), NULL) ON CONFLICT (stream_id, sid) DO NOTHING
                    """
                ).run()
            case "participant_left":
                guard let sid = event.participant?.sid, !sid.isEmpty else { return .ignored }
                try await sql.raw(
                    """
                    INSERT INTO media_participants (stream_id, sid, viewer, joined_at, left_at) \
                    VALUES (\(bind: stream), \(bind: sid), \(bind: event.isViewer), NULL, \(bind: now)) \
                    ON CONFLICT (stream_id, sid) DO UPDATE SET left_at = \(bind: now)
                    """
                ).run()
            case "track_published", "track_unpublished":
                guard let sid = event.track?.sid, !sid.isEmpty else { return .ignored }
                let gone = event.event == "track_unpublished"
                // Once unpublished, a late `track_published` for the same sid does not bring it back.
                try await sql.raw(
                    """
                    INSERT INTO media_tracks (stream_id, sid, unpublished) VALUES (\(bind: stream), \(bind: sid), \(bind: gone)) \
                    ON CONFLICT (stream_id, sid) DO \(unsafeRaw: gone ? "UPDATE SET unpublished = excluded.unpublished" : "NOTHING")
                    """
                ).run()
            default:
                return .ignored
            }
            try await sql.raw(
                """
                UPDATE media_streams SET \
                viewers = (SELECT COUNT(*) FROM media_participants p WHERE p.stream_id = \(bind: stream) AND p.viewer = \(bind: true) \
                AND p.joined_at IS NOT NULL AND p.left_at IS NULL), \
                publishing = EXISTS (SELECT 1 FROM media_tracks t WHERE t.stream_id = \(bind: stream) AND t.unpublished = \(bind: false)) \
                WHERE id = \(bind: stream)
                """
            ).run()
            return .applied
        }
    }
}
