import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceKit
import Shared
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What the gateway's connections share to answer a request on their event loop
/// (``GatewayFastPathHandler``): the common case of an API read by a caller seen a moment ago.
///
/// A request takes this lane only when everything it needs is at hand: a `GET` on a catalog API
/// route that takes a credential (not aggregated, not the gateway's own), one `Authorization`
/// whose principal is cached (``CredentialResolver/cachedPrincipal(authorization:)``), replicas
/// in rotation with idle pooled connections on this event loop (``OnLoopUpstream``) for the
/// upstream and — when the permission is not answered without a call
/// (``AuthorizationClient/allowedWithoutCall(_:permission:)``) — for authz, no body, no `Origin`
/// (CORS stays with ``EdgeMiddleware``), and a plain target (no percent-escapes, dot or empty
/// segments). Everything else goes to Hummingbird's router (``GatewayProxy``), and so does a
/// request whose authz call fails, or whose upstream call fails other than by timing out (GETs
/// only, so sending it again is safe). What this lane answers is what the router would: the same
/// headers, envelope, 403, metrics, counters and log line (tested side by side).
public struct GatewayFastLane: Sendable {
    let configuration: GatewayConfiguration
    let upstream: OnLoopUpstream
    let credentials: CredentialResolver
    let authorization: AuthorizationClient
    let metrics: ServiceMetrics
    let answered: MetricCounter
    let logger: Logger
    let serverName: String
    let routes = Routes()

    init(
        configuration: GatewayConfiguration, upstream: OnLoopUpstream, credentials: CredentialResolver, authorization: AuthorizationClient,
        metrics: ServiceMetrics, logger: Logger, serverName: String
    ) {
        self.configuration = configuration
        self.upstream = upstream
        self.credentials = credentials
        self.authorization = authorization
        self.metrics = metrics
        self.answered = metrics.counter(.gatewayFastPath)
        self.logger = logger
        self.serverName = serverName
    }

    /// The catalog route of each plain API path this lane may answer, remembered: matching splits
    /// the path and scans the catalog (a quarter of ``plan(_:peer:)``'s own cost, measured), a
    /// lookup hashes it. Bounded (short paths only; full, it starts over), so distinct paths cost
    /// memory only up to a limit.
    final class Routes: Sendable {
        static let capacity = 4096
        static let maxPathBytes = 256
        private let known = Mutex<[String: (route: RouteDefinition, app: String?)?]>([:])

        /// The route of `GET path` and its `:app` parameter when this lane may take it: a catalog
        /// API route that takes a credential, not the gateway's own, not aggregated.
        func route(_ path: String) -> (route: RouteDefinition, app: String?)? {
            if let known = self.known.withLock({ $0[path] }) { return known }
            var entry: (route: RouteDefinition, app: String?)?
            if case .route(let route, let parameters) = RouteCatalog.match(method: "GET", path: path), route.service != .gateway,
                route.aggregates.isEmpty, route.auth == .authenticated || route.auth == .signedIn
            {
                entry = (route, parameters["app"])
            }
            if path.utf8.count <= Self.maxPathBytes {
                self.known.withLock { known in
                    if known.count >= Self.capacity { known.removeAll(keepingCapacity: true) }
                    known[path] = entry
                }
            }
            return entry
        }
    }

    /// A permission check authz must answer first (nothing cached): its cache key, the policy
    /// version known now, and the `/internal/v1/enforce` body.
    struct PendingDecision {
        var key: DecisionCache.Key
        var policy: PolicyVersion?
        var body: ByteBuffer
    }

    /// A request this lane can answer, with what it sends upstream.
    struct Plan {
        var route: RouteDefinition
        var principal: Principal
        var decision: PendingDecision?
        var pathAndQuery: String
        var headers: HTTPHeaders
        var requestID: String
    }

    /// What ``InternalClient`` sends with a call to authz.
    func enforceHeaders(_ requestID: String) -> HTTPHeaders {
        [
            StreamHubHeader.internalToken: self.configuration.common.internalToken, StreamHubHeader.requestID: requestID,
            "Content-Type": "application/json",
        ]
    }

    /// The plan for `head`, or nil when the router must answer it. Counts nothing.
    func plan(_ head: HTTPRequestHead, peer: Peer) -> Plan? {
        guard head.method == .GET, head.version == .http1_1, head.isKeepAlive else { return nil }
        let target = head.uri
        guard let (path, query) = Self.plainTarget(target) else { return nil }
        guard let (route, app) = self.routes.route(path) else { return nil }
        // One pass over the headers: what decides, and what goes upstream.
        var authorization: String?
        var authorizations = 0
        var clientRequestID: String?
        var requestIDs = 0
        var forwardedFor: [String] = []
        var hosts = 0
        var forwarded = HTTPHeaders()
        forwarded.reserveCapacity(head.headers.count + 4)
        for (name, value) in head.headers {
            let lowered = name.lowercased()
            switch lowered {
            case "content-length", "transfer-encoding", "origin", "expect":
                return nil
            case "authorization":
                authorizations += 1
                authorization = value
            case "x-request-id":
                requestIDs += 1
                clientRequestID = value
            case "x-forwarded-for":
                forwardedFor.append(value)
            case "host":
                // Not exactly one is the router's 400 (RFC 9112 §3.2).
                hosts += 1
                if ProxyHeaders.forwards(lowered, keepAuthorization: false, keepClusterToken: false) { forwarded.add(name: name, value: value) }
            default:
                if ProxyHeaders.forwards(lowered, keepAuthorization: false, keepClusterToken: false) { forwarded.add(name: name, value: value) }
            }
        }
        guard hosts == 1, authorizations == 1, let authorization, let principal = self.credentials.cachedPrincipal(authorization: authorization),
            !principal.isAnonymous
        else { return nil }
        var decision: PendingDecision?
        if route.auth == .authenticated {
            if principal.scope == .app {
                guard route.allowsAppTokens, app.map({ $0 == principal.appId }) ?? true else { return nil }
            }
            if let permission = route.permission, !self.authorization.allowedWithoutCall(principal, permission: permission) {
                let (key, policy) = self.authorization.pending(principal, permission: permission)
                decision = PendingDecision(key: key, policy: policy, body: Self.enforceBody(key))
            }
        }
        let requestID = RequestIDs.resolve(requestIDs == 1 ? clientRequestID : nil)
        forwarded.add(name: StreamHubHeader.internalToken, value: self.configuration.common.internalToken)
        forwarded.add(name: StreamHubHeader.principal, value: PrincipalHeader.encode(principal))
        forwarded.add(name: StreamHubHeader.requestID, value: requestID)
        let clientIP =
            forwardedFor.isEmpty ? peer.clientIP : self.configuration.trustedProxies.clientIP(peer: peer.address, forwardedFor: forwardedFor)
        if let clientIP { forwarded.add(name: StreamHubHeader.clientIP, value: clientIP) }
        return Plan(
            route: route, principal: principal, decision: decision, pathAndQuery: query.isEmpty ? path : path + "?" + query, headers: forwarded,
            requestID: requestID)
    }

    /// The client end of a connection, worked out once per connection: its address, and the
    /// client IP forwarded for a request that carries no `X-Forwarded-For`.
    struct Peer {
        var address: String?
        var clientIP: String?
    }

    func peer(_ channel: any Channel) -> Peer {
        let address = channel.remoteAddress?.ipAddress
        return Peer(address: address, clientIP: self.configuration.trustedProxies.clientIP(peer: address, forwardedFor: []))
    }

    /// The `/internal/v1/enforce` body for `key` (``EnforceRequest``'s fields), written directly:
    /// Foundation's `JSONEncoder` and `JSONDecoder` were a tenth of the lane's CPU without the
    /// decision cache.
    static func enforceBody(_ key: DecisionCache.Key) -> ByteBuffer {
        OrderedJSON.object([
            ("subject", .string(key.subject)), ("tenant", .string(key.tenant)), ("resource", .string(key.resource)), ("action", .string(key.action)),
        ])
    }

    /// Authz's decision: the form authz writes (`{"allowed":…,"mode":"…","enforced":…}`, in that
    /// order) read straight from the bytes, anything else through `JSONDecoder`.
    static func decision(_ body: ByteBuffer) -> EnforceDecision? {
        if let decision = body.withUnsafeReadableBytes({ Self.plainDecision($0) }) { return decision }
        return try? JSONDecoder().decode(EnforceDecision.self, from: Data(buffer: body))
    }

    static func plainDecision(_ bytes: UnsafeRawBufferPointer) -> EnforceDecision? {
        var index = 0
        func literal(_ text: StaticString) -> Bool {
            let expected = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
            guard bytes.count - index >= expected.count, bytes[index..<(index + expected.count)].elementsEqual(expected) else { return false }
            index += expected.count
            return true
        }
        func bool() -> Bool? { literal("true") ? true : literal("false") ? false : nil }
        guard literal(#"{"allowed":"#), let allowed = bool(), literal(#","mode":""#) else { return nil }
        let modeStart = index
        while index < bytes.count, bytes[index] >= UInt8(ascii: "a"), bytes[index] <= UInt8(ascii: "z") { index += 1 }
        guard index > modeStart, index - modeStart <= 16 else { return nil }
        let mode = String(decoding: bytes[modeStart..<index], as: UTF8.self)
        guard literal(#"","enforced":"#), let enforced = bool(), literal("}"), index == bytes.count else { return nil }
        return EnforceDecision(allowed: allowed, mode: mode, enforced: enforced)
    }

    /// `target` split into path and query when it is plain: under `/api/v1/`, printable ASCII
    /// without `%`, `#`, dot segments or empty segments (the router decodes and normalises the
    /// rest, so it answers those).
    static func plainTarget(_ target: String) -> (path: String, query: Substring)? {
        let prefix = RouteCatalog.apiPrefix + "/"
        guard target.utf8.count <= EdgeInput.maxURIBytes, target.hasPrefix(prefix) else { return nil }
        var previous: UInt8 = 0
        var questionMark: String.Index?
        for index in target.utf8.indices {
            let byte = target.utf8[index]
            guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "%"), byte != UInt8(ascii: "#") else { return nil }
            if byte == UInt8(ascii: "?") {
                questionMark = index
                break
            }
            if byte == UInt8(ascii: "/"), previous == UInt8(ascii: "/") { return nil }
            if byte == UInt8(ascii: "."), previous == UInt8(ascii: "/") { return nil }
            previous = byte
        }
        guard let questionMark else { return (target, "") }
        let query = target[target.index(after: questionMark)...]
        guard query.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "%") && $0 != UInt8(ascii: "#") }) else { return nil }
        return (String(target[..<questionMark]), query)
    }

    /// A response as the client gets it: status line, headers and body, ready for the socket.
    struct Response {
        var status: Int
        var bytes: ByteBuffer
    }

    /// The answer the router would give for the upstream's: the envelope around a 2xx of an
    /// enveloped route, else the upstream's answer passed through; then the edge's headers,
    /// `Content-Length` and `date`.
    func answer(_ plan: Plan, upstream: OnLoopUpstream.Answer, date: String) -> Response {
        let code = Int(upstream.status.code)
        guard plan.route.enveloped, (200..<300).contains(code) else {
            var headers = HTTPHeaders()
            for (name, value) in upstream.headers where !ProxyHeaders.hopByHop.contains(name.lowercased()) {
                headers.add(name: name, value: value)
            }
            return self.response(code, headers: headers, body: upstream.body, requestID: plan.requestID, date: date)
        }
        // The common answer, written straight: the same headers `edge` would give it.
        var payload = upstream.body
        let length = (payload.readableBytes == 0 ? 4 : payload.readableBytes) + 22
        var bytes = ByteBuffer()
        bytes.reserveCapacity(length + 384)
        bytes.writeStatusLine(HTTPResponse.Status(code: code))
        bytes.writeStaticString("Content-Type: application/json; charset=utf-8\r\n")
        bytes.writeHeader("Cache-Control", upstream.header("cache-control") ?? "no-store")
        bytes.writeHeader("X-Request-Id", plan.requestID)
        if self.configuration.cors.isConfigured { bytes.writeStaticString("Vary: Origin\r\n") }
        bytes.writeStaticString("X-Content-Type-Options: nosniff\r\n")
        bytes.writeHeader("Server", self.serverName)
        bytes.writeHeader("Content-Length", String(length))
        bytes.writeHeader("Date", date)
        bytes.writeStaticString("\r\n{\"data\":")
        if payload.readableBytes == 0 {
            bytes.writeStaticString("null")
        } else {
            bytes.writeBuffer(&payload)
        }
        bytes.writeStaticString(",\"error\":null}")
        return Response(status: code, bytes: bytes)
    }

    /// A timed-out call's error, as ``InternalClient/mapFailures(service:_:)`` makes it.
    func timedOut(_ plan: Plan) -> ServiceError {
        ServiceError(.gatewayTimeout, message: "The \(plan.route.service.rawValue) service did not answer in time")
    }

    /// An error's answer, as the error middleware writes it.
    func errorAnswer(_ error: ServiceError, _ plan: Plan, date: String) -> Response {
        var headers: HTTPHeaders = ["Content-Type": "application/json; charset=utf-8"]
        for field in error.headers { headers.replaceOrAdd(name: field.name.rawName, value: field.value) }
        return self.response(error.status.code, headers: headers, body: OrderedJSON.encode(error.body), requestID: plan.requestID, date: date)
    }

    /// `headers` with the edge's, `Content-Length` and `Date`, and `body`, as bytes.
    func response(_ code: Int, headers: HTTPHeaders, body: ByteBuffer, requestID: String, date: String) -> Response {
        var headers = headers
        self.edge(&headers, status: code, requestID: requestID)
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        headers.replaceOrAdd(name: "Date", value: date)
        var bytes = ByteBuffer()
        bytes.reserveCapacity(body.readableBytes + 512)
        bytes.writeStatusLine(HTTPResponse.Status(code: code))
        for (name, value) in headers { bytes.writeHeader(name, value) }
        bytes.writeStaticString("\r\n")
        var body = body
        bytes.writeBuffer(&body)
        return Response(status: code, bytes: bytes)
    }

    /// What ``RequestIDMiddleware``, ``EdgeMiddleware`` and Hummingbird add to every API answer
    /// (`Date`, `Content-Length` and `Connection` are the handler's).
    func edge(_ headers: inout HTTPHeaders, status: Int, requestID: String) {
        headers.replaceOrAdd(name: "X-Request-Id", value: requestID)
        if !headers.contains(name: "cache-control") { headers.add(name: "Cache-Control", value: "no-store") }
        if self.configuration.cors.isConfigured { headers.replaceOrAdd(name: "Vary", value: "Origin") }
        headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
        if status == 401, !headers.contains(name: "www-authenticate") { headers.add(name: "WWW-Authenticate", value: "Bearer") }
        headers.replaceOrAdd(name: "Server", value: self.serverName)
    }

    /// Counts the request as the router's path counts it (credential kind, cached decision; a
    /// decision authz made is counted when it arrives).
    func commit(_ plan: Plan) {
        self.credentials.count(plan.principal)
        if plan.route.auth == .authenticated, plan.route.permission != nil, plan.decision == nil {
            self.authorization.countAllowedWithoutCall(plan.principal)
        }
        self.answered.increment()
    }
}

/// Sits right after the HTTP/1 decoder of every gateway connection and answers what
/// ``GatewayFastLane`` can, on the event loop; everything else passes to Hummingbird unchanged.
///
/// Order is kept as in ``EventLoopRouteHandler``: a request is taken only when Hummingbird owes no
/// answer on the connection, and while this handler waits on an upstream, later requests wait in
/// order (reading stops once ``maxHeldParts`` wait, so a client that pipelines a flood is not
/// buffered without end).
final class GatewayFastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum State {
        case idle
        case passing
        /// A request this handler takes, until its end arrives.
        case taking(GatewayFastLane.Plan, HTTPRequestHead, ContinuousClock.Instant)
        /// Waiting on the upstream.
        case waiting
    }

    let lane: GatewayFastLane
    var state = State.idle
    /// Requests handed to Hummingbird whose response has not ended yet.
    var owed = 0
    /// Parts that arrived while waiting on the upstream, and an error the decoder raised then.
    var held: [HTTPServerRequestPart] = []
    var heldError: (any Error)?
    var readPending = false
    var date: (second: Int, value: String) = (-1, "")
    var instruments: [String: ServiceMetrics.RequestInstruments] = [:]
    /// The context of NIO's response encoder: answers written there go straight to the socket,
    /// as bytes (one write instead of head, body and end through the encoder). Without it (a
    /// pipeline not set up as expected) every request goes to the router.
    var socket: ChannelHandlerContext?

    init(lane: GatewayFastLane) {
        self.lane = lane
    }

    /// The connection's client end (``GatewayFastLane/peer(_:)``), once known.
    var knownPeer: GatewayFastLane.Peer?

    func peer(_ context: ChannelHandlerContext) -> GatewayFastLane.Peer {
        if let knownPeer { return knownPeer }
        let peer = self.lane.peer(context.channel)
        if peer.address != nil { self.knownPeer = peer }
        return peer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.socket = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.socket = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.socket = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        if case .waiting = self.state {
            self.held.append(part)
            return
        }
        self.process(part, context: context)
    }

    func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (self.state, part) {
        case (.idle, .head(let head)):
            if self.owed == 0, self.socket != nil, let plan = self.lane.plan(head, peer: self.peer(context)) {
                self.state = .taking(plan, head, .now)
            } else {
                self.owed += 1
                self.state = .passing
                context.fireChannelRead(self.wrapInboundOut(part))
            }
        case (.taking(let plan, let head, let start), .end):
            self.forward(plan, head: head, start: start, context: context)
        case (.taking(_, let head, _), .body):
            // A body nobody announced (no Content-Length or Transfer-Encoding): the router's.
            self.handOver(head, context: context, then: part)
        case (.passing, .end):
            self.state = .idle
            context.fireChannelRead(self.wrapInboundOut(part))
        default:
            context.fireChannelRead(self.wrapInboundOut(part))
        }
    }

    /// Reserves the connections the request needs (the upstream's, and authz's when its decision is
    /// not cached) — without them the router takes it — then asks authz if it must, then the
    /// upstream.
    func forward(_ plan: GatewayFastLane.Plan, head: HTTPRequestHead, start: ContinuousClock.Instant, context: ChannelHandlerContext) {
        let lane = self.lane
        guard let upstream = lane.upstream.reserve(lane.configuration.baseURL(of: plan.route.service)) else {
            self.handOver(head, context: context)
            return
        }
        guard let pending = plan.decision else {
            self.state = .waiting
            self.call(upstream, plan: plan, head: head, start: start, context: context)
            return
        }
        guard let authz = lane.upstream.reserve(lane.configuration.authzURL) else {
            lane.upstream.release(upstream)
            self.handOver(head, context: context)
            return
        }
        self.state = .waiting
        lane.upstream.send(
            authz, method: .POST, pathAndQuery: "/internal/v1/enforce", headers: lane.enforceHeaders(plan.requestID), body: pending.body,
            timeout: lane.configuration.upstreamTimeout
        ) { outcome in
            guard case .answered(let answer) = outcome, (200..<300).contains(Int(answer.status.code)),
                let decision = GatewayFastLane.decision(answer.body)
            else {
                // Authz away, slow or odd: the router asks again and acts on STREAMHUB_AUTHZ_ENFORCE.
                lane.upstream.release(upstream)
                self.state = .idle
                self.handOver(head, context: context)
                self.resume(context: context)
                return
            }
            if let refusal = lane.authorization.act(on: decision, key: pending.key, policy: pending.policy) {
                lane.upstream.release(upstream)
                lane.commit(plan)
                self.state = .idle
                self.write(lane.errorAnswer(refusal, plan, date: self.now()), plan: plan, start: start, context: context)
                self.resume(context: context)
                return
            }
            self.call(upstream, plan: plan, head: head, start: start, context: context)
        }
    }

    func call(
        _ upstream: OnLoopUpstream.Reservation, plan: GatewayFastLane.Plan, head: HTTPRequestHead, start: ContinuousClock.Instant,
        context: ChannelHandlerContext
    ) {
        let lane = self.lane
        let service = plan.route.service
        lane.upstream.send(
            upstream, method: .GET, pathAndQuery: plan.pathAndQuery, headers: plan.headers, timeout: lane.configuration.upstreamTimeout
        ) {
            outcome in
            let answer: GatewayFastLane.Response
            switch outcome {
            case .answered(let upstream):
                answer = lane.answer(plan, upstream: upstream, date: self.now())
            case .timedOut:
                let error = lane.timedOut(plan)
                lane.logger.warning(
                    "upstream failed",
                    metadata: ["service": "\(service.rawValue)", "error": "\(error)", RequestIDs.logKey: .string(plan.requestID)])
                answer = lane.errorAnswer(error, plan, date: self.now())
            case .failed:
                // A kept connection found dead: a GET, so the router may send it again.
                self.state = .idle
                self.handOver(head, context: context)
                self.resume(context: context)
                return
            }
            lane.commit(plan)
            self.state = .idle
            // A client that hung up meanwhile gets nothing; the request is still counted and logged.
            self.write(answer, plan: plan, start: start, context: context)
            self.resume(context: context)
        }
    }

    /// Gives the request to Hummingbird, as if this handler had never looked at it.
    func handOver(_ head: HTTPRequestHead, context: ChannelHandlerContext, then part: HTTPServerRequestPart? = nil) {
        // The client hung up while its request waited: nobody to answer.
        guard context.channel.isActive else { return }
        self.owed += 1
        context.fireChannelRead(self.wrapInboundOut(.head(head)))
        if let part {
            self.state = .passing
            self.process(part, context: context)
        } else {
            self.state = .idle
            context.fireChannelRead(self.wrapInboundOut(.end(nil)))
        }
        context.fireChannelReadComplete()
    }

    /// The `Date` header's value now (formatted once a second).
    func now() -> String {
        let second = time(nil)
        if self.date.second != second { self.date = (second, HTTPDate.format(second)) }
        return self.date.value
    }

    /// Writes the answer's bytes to the socket, past NIO's response encoder (only when the router
    /// owes no answer on this connection, so nothing interleaves), unless the client hung up
    /// meanwhile; then counts and logs it as the router would.
    func write(_ answer: GatewayFastLane.Response, plan: GatewayFastLane.Plan, start: ContinuousClock.Instant, context: ChannelHandlerContext) {
        if context.channel.isActive, let socket = self.socket {
            socket.writeAndFlush(NIOAny(IOData.byteBuffer(answer.bytes)), promise: nil)
        }
        let duration = ContinuousClock.now - start
        let code = answer.status
        let key = plan.route.path + " \(code)"
        if let instruments = self.instruments[key] {
            instruments.record(duration)
        } else {
            let instruments = self.lane.metrics.requestInstruments(route: plan.route.path, method: "GET", status: code)
            self.instruments[key] = instruments
            instruments.record(duration)
        }
        if self.lane.logger.logLevel <= .info {
            let (seconds, attoseconds) = duration.components
            self.lane.logger.info(
                "request",
                metadata: [
                    RequestIDs.logKey: .string(plan.requestID), "method": "GET", "route": .string(plan.route.path),
                    "status": .stringConvertible(code), "duration_ms": .stringConvertible(Double(seconds) * 1000 + Double(attoseconds) / 1e15),
                ])
        }
    }

    /// After an answer or a hand-over: the parts that waited are taken in order, then reading resumes.
    func resume(context: ChannelHandlerContext) {
        guard context.channel.isActive else {
            self.held.removeAll()
            self.heldError = nil
            return
        }
        while !self.held.isEmpty {
            if case .waiting = self.state { return }
            self.process(self.held.removeFirst(), context: context)
        }
        if case .waiting = self.state { return }
        if let error = self.heldError {
            self.heldError = nil
            context.fireErrorCaught(error)
        }
        context.fireChannelReadComplete()
        if self.readPending && context.channel.isWritable && self.mayRead {
            self.readPending = false
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A parser error behind a request still waiting on its upstream is answered after it.
        if case .waiting = self.state {
            self.heldError = error
            return
        }
        context.fireErrorCaught(error)
    }

    /// Parts held while waiting on an upstream before reading stops. Reading is not stopped at
    /// once: that costs two `epoll_ctl` calls per request (measured), and a client that does not
    /// pipeline sends nothing meanwhile anyway.
    static let maxHeldParts = 64

    /// Back-pressure: reading stops while the answers' socket is full (a client that does not read
    /// them) or while too many parts wait behind an upstream call.
    var mayRead: Bool { self.held.count < Self.maxHeldParts }

    func read(context: ChannelHandlerContext) {
        if self.mayRead && context.channel.isWritable {
            context.read()
        } else {
            self.readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && self.readPending && self.mayRead {
            self.readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.owed = max(0, self.owed - 1) }
        context.write(data, promise: promise)
    }
}
