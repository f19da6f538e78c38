import Hummingbird
import ServiceKit
import Shared

/// `/api/v1/apps*`, reached only through the gateway (internal token + forwarded principal).
public struct AppsController<Context: ServiceRequestContextProtocol>: Sendable {
    let apps: any AppRepository

    public init(apps: any AppRepository) {
        self.apps = apps
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("apps", use: self.list)
    }

    /// `GET /internal/v1/apps/:app` for other services (identity mints app tokens in the app's tenant).
    public func addInternalRoutes(to group: RouterGroup<Context>) {
        group.get("apps/:app", use: self.lookup)
        group.get("tenants/:id/usage", use: self.usage)
    }

    /// Media's part of `GET /tenants/:id/usage`. Streams are not tracked yet (issue 10), so live
    /// streams and viewers are 0 — which is what media knows.
    @Sendable func usage(_ request: Request, context: Context) async throws -> Response {
        let id = try Identifier.validate(context.parameters.get("id") ?? "", field: "id")
        let apps = try await self.apps.list(.tenant(id)).count
        return try JSONResponse.make(MediaTenantUsage(apps: apps, liveStreams: 0, viewers: 0))
    }

    @Sendable func lookup(_ request: Request, context: Context) async throws -> Response {
        let id = try Identifier.validate(context.parameters.get("app") ?? "", field: "app")
        guard let app = try await self.apps.list(.app(id)).first else { throw ServiceError.notFound("No such app") }
        return try JSONResponse.make(app.summary)
    }

    /// The apps the caller may see: all for global tokens, the tenant's for members, one for an app token.
    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let principal = try context.caller()
        let apps = try await self.apps.list(AppVisibility(principal: principal))
        return try JSONResponse.make(apps.map(\.summary))
    }
}
