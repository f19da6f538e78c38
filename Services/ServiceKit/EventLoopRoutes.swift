import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Shared

/// A route answered on the connection's event loop, before Hummingbird's router.
///
/// For internal hot paths whose work is short and synchronous (an authz decision): no task per
/// request, no hop to the concurrency pool, no streamed body, no conversion of the request head
/// to HTTP types. The route behaves as the same route behind ``addServiceMiddleware(metrics:)``
/// and ``InternalTokenMiddleware`` would: the internal token is checked in constant time, the
/// request id is echoed (or made), the request is counted in the service's metrics, and errors
/// are NestJS bodies.
public struct EventLoopRoute: Sendable {
    public struct Request {
        public let body: ByteBuffer
        public let requestID: String
        let baseLogger: Logger

        /// The service logger with this request's id.
        public var logger: Logger {
            var logger = self.baseLogger
            logger[metadataKey: RequestIDs.logKey] = .string(self.requestID)
            return logger
        }
    }

    public let method: HTTPMethod
    public let path: String
    public let bodyLimit: Int
    /// Answers with a JSON body (status 200) or throws a ``ServiceError``.
    public let respond: @Sendable (Request) throws -> ByteBuffer

    /// The 413 for a body over ``bodyLimit``.
    var tooLarge: ServiceError { ServiceError(.contentTooLarge, message: "Request body is larger than \(self.bodyLimit) bytes") }

    public init(method: HTTPMethod = .POST, path: String, bodyLimit: Int, respond: @escaping @Sendable (Request) throws -> ByteBuffer) {
        self.method = method
        self.path = path
        self.bodyLimit = bodyLimit
        self.respond = respond
    }
}

/// The settings shared by every connection's ``EventLoopRouteHandler``.
public struct EventLoopRoutes: Sendable {
    let routes: [EventLoopRoute]
    let internalToken: [UInt8]
    let metrics: ServiceMetrics
    let serverName: String
    let logger: Logger

    public init(routes: [EventLoopRoute], internalToken: String, metrics: ServiceMetrics, serverName: String, logger: Logger) {
        self.routes = routes
        self.internalToken = Array(internalToken.utf8)
        self.metrics = metrics
        self.serverName = serverName
        self.logger = logger
    }

    func route(for head: HTTPRequestHead) -> EventLoopRoute? {
        let target = head.uri
        let path = target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? target[...]
        return self.routes.first { $0.method == head.method && $0.path == path }
    }

    /// Registers the same routes on Hummingbird's router (after ``addServiceMiddleware(metrics:)``),
    /// which answers them when a pipelined request waits behind one of the router's own: one
    /// definition, one behaviour on both paths.
    public func addRoutes<Context: ServiceRequestContextProtocol>(to router: Router<Context>) {
        for route in self.routes {
            guard let method = HTTPRequest.Method(route.method.rawValue) else { continue }
            router.on(RouterPath(route.path), method: method) { request, context -> Response in
                try InternalToken.check(request.headers[.streamHubInternalToken], expected: self.internalToken)
                var request = request
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: route.bodyLimit)
                } catch {
                    throw route.tooLarge
                }
                let payload = try route.respond(.init(body: body, requestID: context.requestID, baseLogger: context.logger))
                return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: payload))
            }
        }
    }

    /// A Hummingbird HTTP/1 server whose connections answer these routes on the event loop.
    public var server: HTTPServerBuilder {
        FastPathHTTP1Channel.server { EventLoopRouteHandler(routes: self) }
    }
}

/// Sits right after the HTTP/1 decoder. A request for one of its routes is answered here when
/// nothing is pending on the connection; everything else, and anything arriving while Hummingbird
/// still owes a response on this connection, passes through unchanged, so pipelined responses
/// stay in order.
final class EventLoopRouteHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum State {
        case idle
        case passing
        case answering(route: EventLoopRoute, head: HTTPRequestHead, body: ByteBuffer, tooLarge: Bool, start: ContinuousClock.Instant)
    }

    let routes: EventLoopRoutes
    var state = State.idle
    /// Requests handed to Hummingbird whose response has not ended yet.
    var owed = 0
    var needsFlush = false
    /// Per connection, so the hot path shares no lock: the `Date` value of the current second and
    /// the instruments of successful requests.
    var date: (second: Int, value: String) = (-1, "")
    var okInstruments: [String: ServiceMetrics.RequestInstruments] = [:]

    init(routes: EventLoopRoutes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        switch (self.state, part) {
        case (.idle, .head(let head)):
            if self.owed == 0, let route = self.routes.route(for: head) {
                self.state = .answering(route: route, head: head, body: ByteBuffer(), tooLarge: false, start: .now)
            } else {
                self.owed += 1
                self.state = .passing
                context.fireChannelRead(data)
            }
        case (.answering(let route, let head, var body, var tooLarge, let start), .body(var chunk)):
            self.state = .idle  // drop the enum's reference so `body` is uniquely owned while appending
            if !tooLarge {
                if body.readableBytes + chunk.readableBytes > route.bodyLimit {
                    tooLarge = true
                    body = ByteBuffer()
                } else if body.readableBytes == 0 {
                    body = chunk
                } else {
                    body.writeBuffer(&chunk)
                }
            }
            self.state = .answering(route: route, head: head, body: body, tooLarge: tooLarge, start: start)
        case (.answering(let route, let head, let body, let tooLarge, let start), .end):
            self.state = .idle
            self.answer(context: context, route: route, head: head, body: body, tooLarge: tooLarge, start: start)
        case (.passing, .end):
            self.state = .idle
            context.fireChannelRead(data)
        default:
            // `.passing` bodies, and any part out of order, are Hummingbird's to handle.
            context.fireChannelRead(data)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.needsFlush {
            self.needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// Back-pressure: a client that sends requests without reading the answers fills the socket's
    /// send buffer; then the channel turns unwritable and no more requests are read until it drains,
    /// so answers cannot pile up in memory.
    var readPending = false

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            self.readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && self.readPending {
            self.readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.owed = max(0, self.owed - 1) }
        context.write(data, promise: promise)
    }

    func answer(
        context: ChannelHandlerContext, route: EventLoopRoute, head: HTTPRequestHead, body: ByteBuffer, tooLarge: Bool,
        start: ContinuousClock.Instant
    ) {
        let requestID =
            RequestIDs.resolve(head.headers.first(name: StreamHubHeader.requestID))
        let status: HTTPResponse.Status
        var payload: ByteBuffer
        do {
            try InternalToken.check(
                head.headers.first(name: StreamHubHeader.internalToken), expected: self.routes.internalToken)
            if tooLarge { throw route.tooLarge }
            payload = try route.respond(.init(body: body, requestID: requestID, baseLogger: self.routes.logger))
            status = .ok
        } catch let error as ServiceError {
            (status, payload) = (error.status, OrderedJSON.encode(error.body))
        } catch {
            var logger = self.routes.logger
            logger[metadataKey: RequestIDs.logKey] = .string(requestID)
            logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            (status, payload) = (.internalServerError, OrderedJSON.encode(ErrorBody(statusCode: 500, message: "Internal server error")))
        }
        let keepAlive = head.isKeepAlive
        var headers = HTTPHeaders()
        headers.reserveCapacity(6)
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Content-Length", value: String(payload.readableBytes))
        headers.add(name: "X-Request-Id", value: requestID)
        let second = time(nil)
        if self.date.second != second { self.date = (second, HTTPDate.format(second)) }
        headers.add(name: "Date", value: self.date.value)
        headers.add(name: "Server", value: self.routes.serverName)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let responseHead = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase), headers: headers)
        context.write(self.wrapOutboundOut(.head(responseHead)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(payload))), promise: nil)
        if status == .ok {
            if let instruments = self.okInstruments[route.path] {
                instruments.record(.now - start)
            } else {
                let instruments = self.routes.metrics.requestInstruments(route: route.path, method: head.method.rawValue, status: 200)
                self.okInstruments[route.path] = instruments
                instruments.record(.now - start)
            }
        } else {
            self.routes.metrics.recordRequest(route: route.path, method: head.method.rawValue, status: status.code, duration: .now - start)
        }
        // The access log of the decision hot path is at debug: a line per decision at info would
        // cost more than the decision (docs/architecture.md, "Logs").
        if self.routes.logger.logLevel <= .debug {
            var logger = self.routes.logger
            logger[metadataKey: RequestIDs.logKey] = .string(requestID)
            let (seconds, attoseconds) = (ContinuousClock.now - start).components
            logger.debug(
                "request",
                metadata: [
                    "method": .string(head.method.rawValue), "route": .string(route.path), "status": .stringConvertible(status.code),
                    "duration_ms": .stringConvertible(Double(seconds) * 1000 + Double(attoseconds) / 1e15),
                ])
        }
        if keepAlive {
            context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
            self.needsFlush = true
        } else {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }
}

/// The `Date` header value (IMF-fixdate).
public enum HTTPDate {
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func format(_ second: Int) -> String {
        var seconds = time_t(second)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(self.days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(self.months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

/// Hummingbird's HTTP/1 child channel (its defaults for the decoder limits and pipeline options)
/// with a service's own handler right after the HTTP/1 decoder, in front of the conversion to
/// HTTP types (Hummingbird's own `additionalChannelHandlers` sit after it, which was a tenth of a
/// decision's cost): requests it answers never reach the router; the others pass through
/// unchanged (``EventLoopRouteHandler`` is one such handler).
public struct FastPathHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    public typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    public let responder: HTTPChannelHandler.Responder
    let makeHandler: @Sendable () -> any ChannelHandler
    /// A handler in front of the HTTP/1 codec (it sees the socket's bytes), or nil.
    let makeFrontHandler: (@Sendable () -> any ChannelHandler)?
    /// Handlers after the conversion to HTTP types, where Hummingbird puts its
    /// `additionalChannelHandlers`.
    var makeAdditionalHandlers: @Sendable () -> [any ChannelHandler] = { [] }
    /// Whether each connection's requests run on its event loop (``EventLoopExecutor``).
    var handlesOnEventLoop = false
    /// The connection cap and idle timeout, enforced nearest the socket; nil for none.
    var limits: ConnectionLimits?

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = 80 * 1024
            limits.maxHeaderListSize = 80 * 1024
            limits.maxHeaderFieldCount = 1000
            let connectionGuard = self.limits.map { ConnectionGuard(limits: $0) }
            if let connectionGuard { try channel.pipeline.syncOperations.addHandler(connectionGuard) }
            if let makeFrontHandler = self.makeFrontHandler { try channel.pipeline.syncOperations.addHandler(makeFrontHandler()) }
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
            if let watch = connectionGuard?.headWatch() { try channel.pipeline.syncOperations.addHandler(watch) }
            try channel.pipeline.syncOperations.addHandler(self.makeHandler())
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandlers(self.makeAdditionalHandlers())
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    public func handle(value: Value, logger: Logger) async {
        if self.handlesOnEventLoop {
            await withTaskExecutorPreference(EventLoopExecutor(value.channel.eventLoop)) {
                await self.handleHTTP(asyncChannel: value, logger: logger)
            }
        } else {
            await self.handleHTTP(asyncChannel: value, logger: logger)
        }
    }

    /// A server whose connections put `makeHandler()` after the HTTP/1 decoder and
    /// `makeFrontHandler()`, if given, in front of the HTTP/1 codec; `additional` handlers after
    /// the conversion to HTTP types; with `onEventLoop`, requests the router answers run on their
    /// connection's event loop (``EventLoopHTTP1Channel``).
    public static func server(
        front makeFrontHandler: (@Sendable () -> any ChannelHandler)? = nil, additional: @escaping @Sendable () -> [any ChannelHandler] = { [] },
        onEventLoop: Bool = false, limits: ConnectionLimits? = nil, _ makeHandler: @escaping @Sendable () -> any ChannelHandler
    ) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            FastPathHTTP1Channel(
                responder: responder, makeHandler: makeHandler, makeFrontHandler: makeFrontHandler, makeAdditionalHandlers: additional,
                handlesOnEventLoop: onEventLoop, limits: limits)
        }
    }
}
