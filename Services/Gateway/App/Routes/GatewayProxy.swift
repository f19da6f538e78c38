import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceKit
import Shared

/// The gateway's whole public surface, driven by ``RouteCatalog``: match, resolve the caller,
/// check the permission, forward, envelope.
///
/// Requests it does not own (`/internal/v1/health`) fall through to the router.
public struct GatewayProxy<Context: ServiceRequestContextProtocol>: RouterMiddleware {
    let configuration: GatewayConfiguration
    let upstream: any UpstreamClient
    let credentials: CredentialResolver
    let authorization: AuthorizationClient
    let startedAt: Date
    let docs: APIDocs
    let pages: SelfServicePages

    public init(
        configuration: GatewayConfiguration, upstream: any UpstreamClient, credentials: CredentialResolver, authorization: AuthorizationClient,
        startedAt: Date
    ) {
        self.configuration = configuration
        self.upstream = upstream
        self.credentials = credentials
        self.authorization = authorization
        self.startedAt = startedAt
        self.docs = APIDocs(directory: configuration.docsDirectory)
        self.pages = SelfServicePages(dashboardURL: configuration.dashboardURL ?? "")
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path.hasPrefix(RouteCatalog.internalPrefix + "/") || path == "/metrics" {
            return try await next(request, context)
        }
        let requestID = context.requestID
        try EdgeInput.checkTarget(request.uri.description)
        // The one body-size check: an announced oversized body is refused before any other work
        // (after lingering, so the client reads the 413); a streamed one when collecting passes the
        // limit (``collectBody(_:refused:)``).
        if let length = request.headers[.contentLength].flatMap(Int.init), length > self.configuration.maxBodyBytes {
            _ = try await self.collectBody(request, refused: true)
        }
        if request.method == .get || request.method == .head, let page = self.pages.response(path: path) {
            RouteLabel.set(path.hasPrefix("/login/assets/") ? "/login/assets" : path)
            return request.method == .head ? page.createHeadResponse() : page
        }
        if let mount = RouteCatalog.mediaMount(of: path) {
            RouteLabel.set(mount)
            return try await self.forwardMount(request, context: context, requestID: requestID)
        }
        if request.method == .head, case .route = RouteCatalog.match(method: "GET", path: path) {
            // HEAD on an API route is its GET without the body (RFC 9110 §9.3.2): the same status
            // and headers, Content-Length included.
            var head = request.head
            head.method = .get
            let response = try await self.handle(Request(head: head, body: request.body), context: context, next: next)
            var answer = response.createHeadResponse()
            if let length = response.body.contentLength { answer.headers[.contentLength] = String(length) }
            return answer
        }
        switch RouteCatalog.match(method: request.method.rawValue, path: path) {
        case .notFound:
            throw ServiceError(.notFound, message: "Cannot \(request.method.rawValue) \(path)")
        case .methodNotAllowed(let allowed):
            throw ServiceError(
                .methodNotAllowed, message: "Method \(request.method.rawValue) is not allowed on \(path)",
                headers: [.allow: allowed.joined(separator: ", ")])
        case .route(let route, let parameters):
            RouteLabel.set(route.path)
            return try await self.serve(route, parameters: parameters, request: request, context: context, requestID: requestID)
        }
    }

    func serve(_ route: RouteDefinition, parameters: [String: String], request: Request, context: Context, requestID: String) async throws -> Response
    {
        if route.service == .gateway && route.aggregates.isEmpty {
            return try self.serveLocal(route, parameters: parameters)
        }
        let principal: Principal
        switch route.auth {
        case .public, .clusterToken, .livekitSignature:
            // Public routes never depend on a credential (or on identity being up); the owning
            // service checks cluster tokens and webhook signatures itself.
            principal = .anonymous
        case .authenticated:
            principal = try await self.credentials.resolve(
                authorization: try Self.authorization(request), requestID: requestID, logger: context.logger
            )
            guard !principal.isAnonymous else { throw ServiceError.unauthorized }
            if principal.scope == .app {
                guard route.allowsAppTokens else { throw ServiceError(.forbidden, message: "This API token is bound to an app") }
                if let app = parameters["app"], app != principal.appId {
                    throw ServiceError(.forbidden, message: "This API token is bound to another app")
                }
            }
            if let permission = route.permission {
                try await self.authorization.authorize(principal, permission: permission, requestID: requestID, logger: context.logger)
            }
        case .signedIn:
            // The caller's own data: a valid credential is all it takes.
            principal = try await self.credentials.resolve(
                authorization: try Self.authorization(request), requestID: requestID, logger: context.logger
            )
            guard !principal.isAnonymous else { throw ServiceError.unauthorized }
        }
        if !route.aggregates.isEmpty {
            return try await self.aggregate(route, parameters: parameters, principal: principal, requestID: requestID)
        }
        let body = try await self.collectBody(request)
        if let body, body.readableBytes > 0, Self.isJSON(request.headers[.contentType]) {
            // Reject malformed JSON at the edge so no service ever sees it.
            guard (try? JSONSerialization.jsonObject(with: Data(buffer: body), options: [.fragmentsAllowed])) != nil else {
                throw ServiceError.badRequest("Request body is not valid JSON")
            }
        }
        let response = try await self.send(
            request, to: route.service, principal: principal, body: body, requestID: requestID, context: context,
            keepAuthorization: route.auth == .livekitSignature, keepClusterToken: route.auth == .clusterToken
        )
        guard route.enveloped, (200..<300).contains(response.status.code) else {
            return self.passThrough(response)
        }
        return try await self.envelope(response)
    }

    /// Routes the gateway answers by asking several services; all must answer, or the caller gets
    /// their error (503/504 when one is away) and never a half-filled answer.
    func aggregate(_ route: RouteDefinition, parameters: [String: String], principal: Principal, requestID: String) async throws -> Response {
        switch route.path {
        case "/api/v1/tenants/:id/usage":
            let id = try Identifier.validate(parameters["id"] ?? "", field: "id")
            // Another tenant's usage is a 404, as its other routes are.
            guard principal.bypassesAuthorization || principal.tenantId == id else { throw ServiceError.notFound("No such tenant") }
            let client = InternalClient(
                transport: self.upstream, internalToken: self.configuration.common.internalToken, timeout: self.configuration.upstreamTimeout)
            let path = "/internal/v1/tenants/\(id)/usage"
            async let identity: IdentityTenantUsage = client.call(
                .get, service: "identity", baseURL: self.configuration.identityURL, path: path, body: String?.none, requestID: requestID)
            async let media: MediaTenantUsage = client.call(
                .get, service: "media", baseURL: self.configuration.mediaURL, path: path, body: String?.none, requestID: requestID)
            let (owned, served) = try await (identity, media)
            let usage = TenantUsage(
                tenantId: id, quotas: owned.quotas,
                usage: .init(apps: served.apps, liveStreams: served.liveStreams, viewers: served.viewers, members: owned.members, tokens: owned.tokens))
            var payload = ByteBuffer(bytes: try JSONEncoder().encode(usage))
            var buffer = ByteBuffer(string: #"{"data":"#)
            buffer.writeBuffer(&payload)
            buffer.writeString(#","error":null}"#)
            return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: buffer))
        default:
            throw ServiceError(.notFound, message: "Cannot GET \(route.path)")
        }
    }

    /// The one `Authorization` header; two are ambiguous (which one did a proxy check?) and a 401.
    static func authorization(_ request: Request) throws -> String? {
        let values = request.headers[values: .authorization]
        guard values.count <= 1 else {
            throw ServiceError(.unauthorized, message: "Send one Authorization header, not \(values.count)")
        }
        return values.first
    }

    func serveLocal(_ route: RouteDefinition, parameters: [String: String]) throws -> Response {
        switch route.path {
        case "/api/v1/health":
            return HealthCheck.response(startedAt: self.startedAt)
        case "/api/v1/openapi.json":
            return self.docs.openAPI()
        case "/api/v1/docs":
            return self.docs.docsPage()
        case "/api/v1/docs/:asset":
            return try self.docs.asset(parameters["asset"] ?? "")
        default:
            throw ServiceError(.notFound, message: "Cannot GET \(route.path)")
        }
    }

    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        return contentType.lowercased().hasPrefix("application/json")
    }

    /// The body within ``GatewayConfiguration/maxBodyBytes`` and ``GatewayConfiguration/bodyTimeout``;
    /// an oversized one is read on and dropped briefly before the 413 (``EdgeInput/read(_:limit:timeout:refused:)``).
    func collectBody(_ request: Request, refused: Bool = false) async throws -> ByteBuffer? {
        guard refused || (request.method != .get && request.method != .head) else { return nil }
        switch try await EdgeInput.read(
            request.body, limit: self.configuration.maxBodyBytes, timeout: self.configuration.bodyTimeout, refused: refused) {
        case .complete(let body): return body
        case .tooLarge: throw Self.tooLarge(self.configuration.maxBodyBytes)
        case .malformed: throw ServiceError(.badRequest, message: "Malformed HTTP request body", headers: [.connection: "close"])
        case .timedOut:
            throw ServiceError(
                .requestTimeout, message: "The request body did not arrive within \(self.configuration.bodyTimeout.components.seconds) s",
                headers: [.connection: "close"])
        }
    }

    static func tooLarge(_ limit: Int) -> ServiceError {
        ServiceError(.contentTooLarge, message: "Request body is larger than \(limit) bytes", headers: [.connection: "close"])
    }

    /// Copies end-to-end headers, drops hop-by-hop ones and every client-sent `X-StreamHub-*`, then
    /// sets the gateway's own.
    /// `keepAuthorization`: the owning service checks the credential itself (LiveKit's webhook
    /// signature, which covers the body: that is forwarded byte for byte too).
    func forwardedHeaders(
        _ request: Request, principal: Principal, requestID: String, context: Context, keepAuthorization: Bool = false, keepClusterToken: Bool = false
    ) -> HTTPFields {
        var headers = HTTPFields()
        let keepAuthorization = keepAuthorization || RouteCatalog.isMediaMount(request.uri.path)
        for field in request.headers
        where ProxyHeaders.forwards(field.name.canonicalName, keepAuthorization: keepAuthorization, keepClusterToken: keepClusterToken) {
            headers.append(field)
        }
        headers[.streamHubInternalToken] = self.configuration.common.internalToken
        headers[.streamHubPrincipal] = PrincipalHeader.encode(principal)
        headers[.requestID] = requestID
        if let ip = self.configuration.trustedProxies.clientIP(
            peer: context.clientIP, forwardedFor: request.headers[values: HTTPField.Name("X-Forwarded-For")!])
        {
            headers[.streamHubClientIP] = ip
        }
        return headers
    }

    func send(
        _ request: Request, to service: ServiceName, principal: Principal, body: ByteBuffer?, requestID: String, context: Context,
        keepAuthorization: Bool = false, keepClusterToken: Bool = false, streamsAnswer: Bool = false
    ) async throws -> UpstreamResponse {
        var pathAndQuery = request.uri.path
        if let query = request.uri.query, !query.isEmpty { pathAndQuery += "?" + query }
        let outgoing = UpstreamRequest(
            method: request.method, baseURL: self.configuration.baseURL(of: service), pathAndQuery: pathAndQuery,
            headers: self.forwardedHeaders(
                request, principal: principal, requestID: requestID, context: context, keepAuthorization: keepAuthorization,
                keepClusterToken: keepClusterToken),
            body: body, streamsAnswer: streamsAnswer
        )
        do {
            return try await InternalClient.mapFailures(service: service.rawValue) {
                try await self.upstream.send(outgoing, timeout: self.configuration.upstreamTimeout)
            }
        } catch let error as ServiceError {
            context.logger.warning("upstream failed", metadata: ["service": "\(service.rawValue)", "error": "\(error)"])
            throw error
        }
    }

    func forwardMount(_ request: Request, context: Context, requestID: String) async throws -> Response {
        guard request.method == .get || request.method == .head || request.method == .options else {
            throw ServiceError(
                .methodNotAllowed, message: "Method \(request.method.rawValue) is not allowed on \(request.uri.path)",
                headers: [.allow: RouteCatalog.mediaMountMethods.joined(separator: ", ")])
        }
        // Files stream through (a recording can be large); API answers are collected.
        let response = try await self.send(
            request, to: .media, principal: .anonymous, body: nil, requestID: requestID, context: context, streamsAnswer: true)
        return self.passThrough(response)
    }

    func passThrough(_ upstream: UpstreamResponse) -> Response {
        var headers = HTTPFields()
        for field in upstream.headers where !ProxyHeaders.hopByHop.contains(field.name.canonicalName) {
            headers.append(field)
        }
        if let length = upstream.headers[.contentLength] {
            headers[.contentLength] = length
        }
        return Response(status: upstream.status, headers: headers, body: upstream.body)
    }

    /// `{"data":<payload>,"error":null}` built around the upstream bytes, without re-encoding them.
    func envelope(_ upstream: UpstreamResponse) async throws -> Response {
        let payload: ByteBuffer
        do {
            payload = try await upstream.collect(16 << 20)
        } catch UpstreamFailure.timeout {
            throw ServiceError(.gatewayTimeout, message: "Upstream service did not answer in time")
        } catch {
            throw ServiceError(.badGateway, message: "Upstream service sent an unreadable answer")
        }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.readableBytes + 24)
        buffer.writeString(#"{"data":"#)
        if payload.readableBytes == 0 {
            buffer.writeString("null")
        } else {
            var payload = payload
            buffer.writeBuffer(&payload)
        }
        buffer.writeString(#","error":null}"#)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if let requestID = upstream.headers[.requestID] { headers[.requestID] = requestID }
        if let cacheControl = upstream.headers[.cacheControl] { headers[.cacheControl] = cacheControl }
        if let replayed = upstream.headers[IdempotencyMiddleware<Context>.replayed] { headers[IdempotencyMiddleware<Context>.replayed] = replayed }
        return Response(status: upstream.status, headers: headers, body: .init(byteBuffer: buffer))
    }
}

enum ProxyHeaders {
    /// Hop-by-hop headers never forwarded in either direction (RFC 9110 §7.6.1), plus ones the
    /// gateway recomputes.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
        "proxy-authorization", "proxy-authenticate",
    ]

    /// Whether a client's header (lower-cased `name`) travels on to a service: not hop-by-hop, no
    /// client-sent `X-StreamHub-*` or request id (the gateway sets its own), no forwarding claims
    /// (the client IP goes in the gateway's own header), `Authorization` only where the service
    /// checks it itself (else the principal replaces it), `X-Cluster-Token` only to the node routes.
    static func forwards(_ name: String, keepAuthorization: Bool, keepClusterToken: Bool) -> Bool {
        if Self.hopByHop.contains(name) || name.hasPrefix(StreamHubHeader.reservedPrefix) || name == "x-request-id" { return false }
        if name.hasPrefix("x-forwarded-") || name == "forwarded" || name == "x-real-ip" { return false }
        if name == "authorization" { return keepAuthorization }
        if name == "x-cluster-token" { return keepClusterToken }
        return true
    }
}
