import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import Shared

/// `/api/v1/cluster/*`: LiveKit nodes join and beat with `X-Cluster-Token`
/// (= `STREAMHUB_CLUSTER_TOKEN`, compared in constant time); operators list them.
///
/// A node not heard from within `STREAMHUB_NODE_TTL_S` is not alive: no room is placed on it,
/// and rooms on it move to an alive node at their next token. Nodes silent for a day are pruned.
public struct ClusterController<Context: ServiceRequestContextProtocol>: Sendable {
    let registry: SQLNodeRegistry
    let clusterToken: String
    let ttlSeconds: Int
    let timeSource: any TimeSource

    public init(registry: SQLNodeRegistry, clusterToken: String, ttlSeconds: Int, timeSource: any TimeSource = SystemTimeSource()) {
        self.registry = registry
        self.clusterToken = clusterToken
        self.ttlSeconds = ttlSeconds
        self.timeSource = timeSource
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("cluster/join", use: self.join)
        group.post("cluster/heartbeat", use: self.heartbeat)
        group.get("cluster/nodes", use: self.list)
    }

    func checkToken(_ request: Request) throws {
        let values = request.headers[values: HTTPField.Name(StreamHubHeader.clusterToken)!]
        guard values.count == 1, let presented = values.first, ConstantTime.equals(presented, self.clusterToken) else {
            throw ServiceError(.unauthorized, message: values.isEmpty ? "Missing X-Cluster-Token" : "Invalid cluster token")
        }
    }

    var aliveWindow: Int64 { Int64(self.ttlSeconds) * 1000 }

    func lease(_ node: NodeRecord, now: Int64) throws -> Response {
        try JSONResponse.make(
            NodeLease(
                node: node.summary(aliveSince: now - self.aliveWindow), heartbeatIntervalSeconds: max(1, self.ttlSeconds / 3),
                expiresAt: Timestamp.iso8601(Timestamp.date(millis: node.lastSeenAt + self.aliveWindow))))
    }

    @Sendable func join(_ request: Request, context: Context) async throws -> Response {
        try self.checkToken(request)
        let body = try await request.decodeJSON(NodeJoinRequest.self, limit: 16 * 1024)
        let id: String
        if let given = body.id {
            guard let uuid = UUID(uuidString: given), uuid.uuidString.lowercased() == given else {
                throw ServiceError.badRequest("id must be a lower-case UUID")
            }
            id = given
        } else {
            id = UUID().uuidString.lowercased()
        }
        let name = body.name.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(name.count), !name.contains(where: { $0.isNewline || $0.asciiValue.map { $0 < 0x20 } == true }) else {
            throw ServiceError.badRequest("name must be 1 to 100 printable characters")
        }
        guard body.url.utf8.count <= 2048, let url = URLComponents(string: body.url), ["ws", "wss", "http", "https"].contains(url.scheme ?? ""),
            url.host?.isEmpty == false
        else { throw ServiceError.badRequest("url must be a ws://, wss://, http:// or https:// URL") }
        if let region = body.region, let problem = Identifier.problem(region) { throw ServiceError.badRequest("region \(problem)") }
        if let capacity = body.capacity, !(0...10_000_000).contains(capacity) {
            throw ServiceError.badRequest("capacity must be between 0 and 10000000")
        }
        let now = Timestamp.millis(self.timeSource.now())
        let node = try await self.registry.join(
            NodeRecord(
                id: id, name: name, url: body.url, region: body.region, capacity: body.capacity, rooms: 0, participants: 0, joinedAt: now,
                lastSeenAt: now), pruneBefore: now - 24 * 3600 * 1000)
        context.logger.notice("cluster node joined", metadata: ["node": "\(node.id)", "url": "\(node.url)"])
        return try self.lease(node, now: now)
    }

    @Sendable func heartbeat(_ request: Request, context: Context) async throws -> Response {
        try self.checkToken(request)
        let body = try await request.decodeJSON(NodeHeartbeat.self, limit: 16 * 1024)
        guard UUID(uuidString: body.id) != nil else { throw ServiceError.badRequest("id must be a node id (a UUID)") }
        for (field, value) in [("rooms", body.rooms), ("participants", body.participants)] {
            if let value, !(0...100_000_000).contains(value) { throw ServiceError.badRequest("\(field) must be between 0 and 100000000") }
        }
        let now = Timestamp.millis(self.timeSource.now())
        guard let node = try await self.registry.heartbeat(id: body.id.lowercased(), rooms: body.rooms, participants: body.participants, at: now) else {
            throw ServiceError.notFound("Unknown node: join first")
        }
        return try self.lease(node, now: now)
    }

    /// The whole registry: platform-wide (every tenant's rooms are placed on these nodes), so for
    /// platform operators only — superadmins and global tokens. A tenant's owner is refused (403)
    /// whatever the policy grants.
    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        guard try context.caller().bypassesAuthorization else {
            throw ServiceError(.forbidden, message: "The node registry is for platform operators (superadmins and global tokens)")
        }
        let since = Timestamp.millis(self.timeSource.now()) - self.aliveWindow
        return try JSONResponse.make(try await self.registry.nodes().map { $0.summary(aliveSince: since) })
    }
}
