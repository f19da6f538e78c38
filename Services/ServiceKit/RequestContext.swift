import Hummingbird
import Logging
import NIOCore
import Shared

/// A request context that carries who is calling and the request's id.
///
/// ``RequestIDMiddleware`` sets ``requestID`` first thing; ``CallerMiddleware`` decodes the
/// gateway's `X-StreamHub-Principal` once into ``principal``. Handlers read both from here and
/// never decode headers or logger metadata themselves.
public protocol ServiceRequestContextProtocol: RequestContext {
    /// The id in `X-Request-Id`, the `request_id` of every log line of this request.
    var requestID: String { get set }
    /// The caller as the gateway resolved it; ``Principal/anonymous`` until ``CallerMiddleware`` ran.
    var principal: Principal { get set }
    /// The peer's IP address, if known.
    var clientIP: String? { get }
    /// The client's IP as the gateway saw it (`X-StreamHub-Client-IP`), set by ``CallerMiddleware``
    /// for callers holding the internal token.
    var forwardedClientIP: String? { get set }
}

extension ServiceRequestContextProtocol {
    /// The caller on a route that needs one.
    /// - Throws: ``ServiceError`` 401 for an anonymous caller.
    public func caller() throws -> Principal {
        guard !self.principal.isAnonymous else { throw ServiceError.unauthorized }
        return self.principal
    }
}

/// The request context of every StreamHub service.
public struct ServiceRequestContext: ServiceRequestContextProtocol, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    public var requestID: String = ""
    public var principal: Principal = .anonymous
    public var forwardedClientIP: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    public var clientIP: String? { self.remoteAddress?.ipAddress }

    /// Routes bound their own bodies (`collectBody(upTo:)`, ``Request/decodeJSON(_:limit:)``, the
    /// gateway's `GATEWAY_MAX_BODY_BYTES`); this only bounds Hummingbird's own collection.
    public var maxUploadSize: Int { 256 << 20 }
}

/// Puts the forwarded caller (`X-StreamHub-Principal`) into the context, once per request.
///
/// Sits behind ``InternalTokenMiddleware``: only a caller holding the internal token (the gateway,
/// another service) can name a principal. No header is an anonymous caller; a malformed one is a 400.
public struct CallerMiddleware<Context: ServiceRequestContextProtocol>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let ip = request.headers[.streamHubClientIP], ip.utf8.count <= 64 {
            context.forwardedClientIP = ip
        }
        guard let header = request.headers[.streamHubPrincipal] else { return try await next(request, context) }
        guard let principal = PrincipalHeader.decode(header) else {
            throw ServiceError.badRequest("Malformed principal header")
        }
        context.principal = principal
        return try await next(request, context)
    }
}

extension Router where Context: ServiceRequestContextProtocol {
    /// The group of routes the gateway forwards to this service (`/api/v1/…`): internal token
    /// required, the caller in the context, and `Idempotency-Key` honoured when a store is given.
    public func forwardedGroup(_ path: RouterPath = "/api/v1", internalToken: String, idempotency: (any IdempotencyStore)? = nil) -> RouterGroup<
        Context
    > {
        let group = self.group(path).add(middleware: InternalTokenMiddleware(token: internalToken)).add(middleware: CallerMiddleware())
        guard let idempotency else { return group }
        return group.add(middleware: IdempotencyMiddleware<Context>(store: idempotency))
    }

    /// The group of this service's internal routes (`/internal/v1/…`): internal token required.
    public func internalGroup(internalToken: String) -> RouterGroup<Context> {
        self.group(RouterPath(RouteCatalog.internalPrefix)).add(middleware: InternalTokenMiddleware(token: internalToken))
            .add(middleware: CallerMiddleware())
    }
}

extension Router where Context: ServiceRequestContextProtocol {
    /// `GET /internal/v1/routes`: the public routes (`/api/v1/…`) this router serves, as
    /// `METHOD /api/v1/path/:param`, so a test proves the catalog and the routers agree route for
    /// route. Call it after every route is added.
    public func addRouteListing(internalToken: String) {
        let listed = self.routes.compactMap { route -> String? in
            let path = route.path.components.map { component -> String in
                let text = component.description
                return text.hasPrefix("{") && text.hasSuffix("}") ? ":" + text.dropFirst().dropLast() : text
            }.joined(separator: "/")
            guard path.hasPrefix(String(RouteCatalog.apiPrefix.dropFirst())) else { return nil }
            return "\(route.method.rawValue) /\(path)"
        }.sorted()
        self.internalGroup(internalToken: internalToken).get("routes") { _, _ in try JSONResponse.make(listed) }
    }
}
