import Foundation
import Hummingbird
import ServiceKit
import ServiceStorage
import Shared

/// `/api/v1/apps*`, reached only through the gateway (internal token + forwarded principal): apps,
/// their streams, and the public play-token route.
///
/// An app another tenant owns is a 404 to all but global callers; an app token sees its own app
/// only. Quotas (`maxApps`, `maxConcurrentStreams`) come from identity and hold whatever the
/// enforcement mode, exactly under concurrency (a per-tenant lock around count-and-insert).
public struct AppsController<Context: ServiceRequestContextProtocol>: Sendable {
    let apps: any AppRepository
    let identity: InternalClient?
    let identityURL: String
    let livekit: LiveKitTokens?
    /// Where rooms are served when LiveKit nodes have joined; without it (or any alive node) `LIVEKIT_URL`.
    let nodes: SQLNodeRegistry?
    let nodeTTLSeconds: Int
    let timeSource: any TimeSource

    public init(
        apps: any AppRepository, identity: InternalClient? = nil, identityURL: String = "", livekit: LiveKitTokens? = nil,
        nodes: SQLNodeRegistry? = nil, nodeTTLSeconds: Int = 30, timeSource: any TimeSource = SystemTimeSource()
    ) {
        self.apps = apps
        self.identity = identity
        self.identityURL = identityURL
        self.livekit = livekit
        self.nodes = nodes
        self.nodeTTLSeconds = nodeTTLSeconds
        self.timeSource = timeSource
    }

    /// The LiveKit URL serving `room`: its alive node's, else the configured one.
    func serverURL(appId: String, room: String, now: Date) async throws -> String? {
        guard let nodes = self.nodes else { return nil }
        return try await nodes.place(appId: appId, room: room, aliveSince: Timestamp.millis(now) - Int64(self.nodeTTLSeconds) * 1000)
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("apps", use: self.list)
        group.post("apps", use: self.create)
        group.get("apps/:app", use: self.show)
        group.patch("apps/:app", use: self.update)
        group.delete("apps/:app", use: self.delete)
        group.get("apps/:app/play-token/:room", use: self.playToken)
        group.post("apps/:app/streams", use: self.openStream)
        group.get("apps/:app/streams", use: self.listStreams)
        group.delete("apps/:app/streams/:id", use: self.endStream)
    }

    /// `GET /internal/v1/apps/:app` for other services (identity mints app tokens in the app's tenant).
    public func addInternalRoutes(to group: RouterGroup<Context>) {
        group.get("apps/:app", use: self.lookup)
        group.get("tenants/:id/usage", use: self.usage)
    }

    /// The apps the caller may see: all for global tokens, the tenant's for members, one for an app token.
    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let principal = try context.caller()
        let apps = try await self.apps.list(AppVisibility(principal: principal), page: try ListPage(request: request))
        return try JSONResponse.make(apps.map(\.summary))
    }

    @Sendable func lookup(_ request: Request, context: Context) async throws -> Response {
        let id = try Identifier.validate(context.parameters.get("app") ?? "", field: "app")
        guard let app = try await self.apps.list(.app(id), page: nil).first else { throw ServiceError.notFound("No such app") }
        return try JSONResponse.make(app.summary)
    }

    /// Media's part of `GET /tenants/:id/usage`.
    @Sendable func usage(_ request: Request, context: Context) async throws -> Response {
        let id = try Identifier.validate(context.parameters.get("id") ?? "", field: "id")
        let apps = try await self.apps.list(.tenant(id), page: nil)
        var live = 0
        var viewers = 0
        for app in apps {
            let streams = try await self.apps.liveStreams(appId: app.id)
            live += streams.count
            viewers += streams.reduce(0) { $0 + $1.viewers }
        }
        return try JSONResponse.make(MediaTenantUsage(apps: apps.count, liveStreams: live, viewers: viewers))
    }

    /// The app `:app` if it exists and the caller may see it, else 404.
    func visibleApp(_ context: Context) async throws -> AppRecord {
        let caller = try context.caller()
        let id = try Identifier.validate(context.parameters.get("app") ?? "", field: "app")
        guard let app = try await self.apps.list(.app(id), page: nil).first else { throw ServiceError.notFound("No such app") }
        switch AppVisibility(principal: caller) {
        case .all: return app
        case .tenant(let tenant) where tenant == app.tenantId: return app
        case .app(let own) where own == app.id: return app
        default: throw ServiceError.notFound("No such app")
        }
    }

    /// A tenant's quotas, from identity.
    func quotas(_ tenant: String, requestID: String) async throws -> TenantQuotas {
        guard let identity = self.identity else { throw ServiceError(.serviceUnavailable, message: "Quotas are unavailable") }
        do {
            let summary: TenantSummary = try await identity.call(
                .get, service: "identity", baseURL: self.identityURL, path: "/internal/v1/tenants/\(tenant)", body: String?.none, requestID: requestID)
            return summary.quotas
        } catch let error as ServiceError where error.status == .notFound {
            throw ServiceError.notFound("No such tenant")
        }
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let caller = try context.caller()
        let body = try await request.decodeJSON(CreateAppRequest.self, limit: 16 * 1024)
        let name = try Identifier.validate(body.name, field: "name")
        guard name.count <= 100 else { throw ServiceError.badRequest("name must be at most 100 characters") }
        let tenant: String
        if caller.bypassesAuthorization {
            guard let named = body.tenantId else { throw ServiceError.badRequest("tenantId is required for global credentials") }
            tenant = try Identifier.validate(named, field: "tenantId")
        } else {
            guard let own = caller.tenantId else { throw ServiceError(.forbidden, message: "The credential has no tenant") }
            if let named = body.tenantId, named != own { throw ServiceError(.forbidden, message: "Apps are created in your own tenant") }
            tenant = own
        }
        let limit = try await self.quotas(tenant, requestID: context.requestID).maxApps
        let app = AppRecord(
            id: UUID().uuidString.lowercased(), tenantId: tenant, name: name, publicPlayback: body.features?.publicPlayback ?? true,
            createdAt: Timestamp.millis(self.timeSource.now()))
        do {
            try await self.apps.create(app, limit: limit)
        } catch let error as StorageError {
            throw error.serviceError
        }
        return try JSONResponse.make(app.summary, status: .created)
    }

    @Sendable func show(_ request: Request, context: Context) async throws -> Response {
        try JSONResponse.make(try await self.visibleApp(context).summary)
    }

    @Sendable func update(_ request: Request, context: Context) async throws -> Response {
        let app = try await self.visibleApp(context)
        let body = try await request.decodeJSON(AppUpdate.self, limit: 16 * 1024)
        let name = try body.name.map { try Identifier.validate($0, field: "name") }
        if let name, name.count > 100 { throw ServiceError.badRequest("name must be at most 100 characters") }
        guard let updated = try await self.apps.update(id: app.id, name: name, publicPlayback: body.features?.publicPlayback) else {
            throw ServiceError.notFound("No such app")
        }
        return try JSONResponse.make(updated.summary)
    }

    /// Deletes the app, its rooms and streams: no play-token is minted for it from now on.
    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let app = try await self.visibleApp(context)
        guard try await self.apps.delete(id: app.id) else { throw ServiceError.notFound("No such app") }
        context.logger.info("app deleted", metadata: ["app": "\(app.id)"])
        return try JSONResponse.make(app.summary)
    }

    /// Public: a subscribe-only LiveKit token for a room the app has, for a fresh random viewer.
    @Sendable func playToken(_ request: Request, context: Context) async throws -> Response {
        guard let livekit = self.livekit else { throw ServiceError(.serviceUnavailable, message: "LiveKit is not configured") }
        let appId = context.parameters.get("app") ?? ""
        let room = context.parameters.get("room") ?? ""
        // Unknown apps, malformed or foreign rooms are all the same 404: LiveKit creates rooms on
        // join, so a token is never minted for an arbitrary name.
        guard Identifier.problem(appId) == nil, RoomName.isValid(room), let app = try await self.apps.list(.app(appId), page: nil).first,
            try await self.apps.hasRoom(appId: app.id, room: room)
        else { throw ServiceError.notFound("No such app or room") }
        guard app.publicPlayback else { throw ServiceError(.forbidden, message: "Public playback is off for this app") }
        let now = self.timeSource.now()
        var response = try JSONResponse.make(livekit.viewer(appId: app.id, room: room, url: try await self.serverURL(appId: app.id, room: room, now: now), now: now))
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// Opens a stream for a room of the app and answers a publisher token for it.
    @Sendable func openStream(_ request: Request, context: Context) async throws -> Response {
        guard let livekit = self.livekit else { throw ServiceError(.serviceUnavailable, message: "LiveKit is not configured") }
        let app = try await self.visibleApp(context)
        let body = try await request.decodeJSON(OpenStreamRequest.self, limit: 16 * 1024)
        guard RoomName.isValid(body.room) else {
            throw ServiceError.badRequest("room must be 1 to 128 characters of A-Z, a-z, 0-9, '-', '_' and '.'")
        }
        let limit = try await self.quotas(app.tenantId, requestID: context.requestID).maxConcurrentStreams
        let now = self.timeSource.now()
        let stream = StreamRecord(
            id: UUID().uuidString.lowercased(), appId: app.id, tenantId: app.tenantId, room: body.room, state: "live", viewers: 0,
            createdAt: Timestamp.millis(now), endedAt: nil)
        do {
            try await self.apps.openStream(stream, limit: limit)
        } catch let error as StorageError {
            throw error.serviceError
        }
        let publisher = livekit.publisher(
            appId: app.id, room: body.room, identity: "publisher-" + stream.id, url: try await self.serverURL(appId: app.id, room: body.room, now: now),
            now: now)
        var response = try JSONResponse.make(OpenedStream(stream: stream.summary, publisher: publisher), status: .created)
        response.headers[.cacheControl] = "no-store"
        return response
    }

    @Sendable func listStreams(_ request: Request, context: Context) async throws -> Response {
        let app = try await self.visibleApp(context)
        return try JSONResponse.make(try await self.apps.liveStreams(appId: app.id).map(\.summary))
    }

    @Sendable func endStream(_ request: Request, context: Context) async throws -> Response {
        let app = try await self.visibleApp(context)
        let id = try Identifier.validate(context.parameters.get("id") ?? "", field: "id")
        guard let stream = try await self.apps.endStream(appId: app.id, id: id, at: Timestamp.millis(self.timeSource.now())) else {
            throw ServiceError.notFound("No such stream")
        }
        return try JSONResponse.make(stream.summary)
    }
}
