/// `POST /apps`.
public struct CreateAppRequest: Codable, Sendable, Equatable {
    public var name: String
    /// Required for global tokens and superadmins; others create in their own tenant.
    public var tenantId: String?
    public var features: AppFeatures?

    public init(name: String, tenantId: String? = nil, features: AppFeatures? = nil) {
        self.name = name
        self.tenantId = tenantId
        self.features = features
    }
}

/// `PATCH /apps/:app`.
public struct AppUpdate: Codable, Sendable, Equatable {
    public struct Features: Codable, Sendable, Equatable {
        public var publicPlayback: Bool?
        public init(publicPlayback: Bool? = nil) { self.publicPlayback = publicPlayback }
    }

    public var name: String?
    public var features: Features?

    public init(name: String? = nil, features: Features? = nil) {
        self.name = name
        self.features = features
    }
}

/// A LiveKit access token with where to use it: the answer of the play-token route and part of
/// an opened stream.
public struct LiveKitGrant: Codable, Sendable, Equatable {
    public var token: String
    /// The LiveKit server to connect to.
    public var url: String
    public var room: String
    public var identity: String
    public var expiresAt: String

    public init(token: String, url: String, room: String, identity: String, expiresAt: String) {
        self.token = token
        self.url = url
        self.room = room
        self.identity = identity
        self.expiresAt = expiresAt
    }
}

/// `POST /apps/:app/streams`.
public struct OpenStreamRequest: Codable, Sendable, Equatable {
    public var room: String
    public init(room: String) { self.room = room }
}

/// A stream of an app's room.
public struct StreamSummary: Codable, Sendable, Equatable {
    public var id: String
    public var appId: String
    public var room: String
    /// `live` or `ended`.
    public var state: String
    /// Viewers in the room now (LiveKit's participant events).
    public var viewers: Int
    /// Whether the publisher has a track up (LiveKit's track events).
    public var publishing: Bool
    public var createdAt: String
    public var endedAt: String?

    public init(id: String, appId: String, room: String, state: String, viewers: Int, publishing: Bool = false, createdAt: String, endedAt: String?) {
        self.id = id
        self.appId = appId
        self.room = room
        self.state = state
        self.viewers = viewers
        self.publishing = publishing
        self.createdAt = createdAt
        self.endedAt = endedAt
    }
}

/// The answer of `POST /apps/:app/streams`: the stream and a publisher token for its room.
public struct OpenedStream: Codable, Sendable, Equatable {
    public var stream: StreamSummary
    public var publisher: LiveKitGrant

    public init(stream: StreamSummary, publisher: LiveKitGrant) {
        self.stream = stream
        self.publisher = publisher
    }
}

/// The answer to a LiveKit webhook delivery: `applied`, `duplicate` (an event id seen before:
/// nothing changed) or `ignored` (no live stream in that room, or an event stream state does not
/// depend on).
public struct WebhookReceipt: Codable, Sendable, Equatable {
    public var event: String
    public var outcome: String

    public init(event: String, outcome: String) {
        self.event = event
        self.outcome = outcome
    }
}

/// `POST /cluster/join`: a LiveKit node announces itself. `id` (a lower-case UUID) lets a node
/// that restarts keep its identity; without it one is assigned.
public struct NodeJoinRequest: Codable, Sendable, Equatable {
    public var id: String?
    public var name: String
    /// Where clients reach this node's LiveKit (`ws://`, `wss://`, `http://` or `https://`).
    public var url: String
    public var region: String?
    /// Most participants the node takes; nil: no limit.
    public var capacity: Int?

    public init(id: String? = nil, name: String, url: String, region: String? = nil, capacity: Int? = nil) {
        self.id = id
        self.name = name
        self.url = url
        self.region = region
        self.capacity = capacity
    }
}

/// `POST /cluster/heartbeat`: the node is alive, with its current load.
public struct NodeHeartbeat: Codable, Sendable, Equatable {
    public var id: String
    public var rooms: Int?
    public var participants: Int?

    public init(id: String, rooms: Int? = nil, participants: Int? = nil) {
        self.id = id
        self.rooms = rooms
        self.participants = participants
    }
}

/// A node of the registry as `GET /cluster/nodes` lists it.
public struct ClusterNode: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var url: String
    public var region: String?
    public var capacity: Int?
    public var rooms: Int
    public var participants: Int
    /// Heard from within the liveness window (`STREAMHUB_NODE_TTL_S`).
    public var alive: Bool
    public var joinedAt: String
    public var lastSeenAt: String

    public init(
        id: String, name: String, url: String, region: String?, capacity: Int?, rooms: Int, participants: Int, alive: Bool, joinedAt: String,
        lastSeenAt: String
    ) {
        self.id = id
        self.name = name
        self.url = url
        self.region = region
        self.capacity = capacity
        self.rooms = rooms
        self.participants = participants
        self.alive = alive
        self.joinedAt = joinedAt
        self.lastSeenAt = lastSeenAt
    }
}

/// The answer to join and heartbeat: the node, and how often to beat before it expires.
public struct NodeLease: Codable, Sendable, Equatable {
    public var node: ClusterNode
    public var heartbeatIntervalSeconds: Int
    public var expiresAt: String

    public init(node: ClusterNode, heartbeatIntervalSeconds: Int, expiresAt: String) {
        self.node = node
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.expiresAt = expiresAt
    }
}

/// An oEmbed 1.0 answer (`GET /api/v1/oembed?url=`), with oEmbed's own snake_case keys.
public struct OEmbed: Codable, Sendable, Equatable {
    public var type: String
    public var version: String
    public var title: String
    public var providerName: String
    public var providerURL: String
    public var html: String
    public var width: Int
    public var height: Int

    enum CodingKeys: String, CodingKey {
        case type, version, title, html, width, height
        case providerName = "provider_name"
        case providerURL = "provider_url"
    }

    public init(type: String, version: String, title: String, providerName: String, providerURL: String, html: String, width: Int, height: Int) {
        self.type = type
        self.version = version
        self.title = title
        self.providerName = providerName
        self.providerURL = providerURL
        self.html = html
        self.width = width
        self.height = height
    }
}
