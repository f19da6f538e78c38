import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Shared
import Synchronization

/// A route answered on the connection's event loop, before Hummingbird's router.
///
/// For internal hot paths whose work is short and synchronous (an authz decision): no task per
/// request, no hop to the concurrency pool, no streamed body. The route behaves as the same route
/// behind ``addServiceMiddleware(metrics:)`` and ``InternalTokenMiddleware`` would: the internal
/// token is checked in constant time, the request id is echoed (or made), the request is counted
/// in the service's metrics, and errors are NestJS bodies.
public struct EventLoopRoute: Sendable {
    public struct Request {
        public let headers: HTTPFields
        public let body: ByteBuffer
        public let requestID: String
        let baseLogger: Logger

        /// The service logger with this request's id.
        public var logger: Logger {
            var logger = self.baseLogger
            logger[metadataKey: "request_id"] = .string(self.requestID)
            return logger
        }
    }

    public let method: HTTPRequest.Method
    public let path: String
    public let bodyLimit: Int
    /// Answers with a JSON body (status 200) or throws a ``ServiceError``.
    public let respond: @Sendable (Request) throws -> ByteBuffer

    public init(method: HTTPRequest.Method = .post, path: String, bodyLimit: Int, respond: @escaping @Sendable (Request) throws -> ByteBuffer) {
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

    func route(for head: HTTPRequest) -> EventLoopRoute? {
        guard let target = head.path else { return nil }
        let path = target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? target[...]
        return self.routes.first { $0.method == head.method && $0.path == path }
    }

    /// A Hummingbird HTTP/1 server whose connections answer these routes on the event loop.
    public var server: HTTPServerBuilder {
        .http1(configuration: .init(additionalChannelHandlers: [EventLoopRouteHandler(routes: self)]))
    }
}

/// Sits after the HTTP/1 codec. A request for one of its routes is answered here when nothing is
/// pending on the connection; everything else, and anything arriving while Hummingbird still owes
/// a response on this connection, passes through unchanged, so pipelined responses stay in order.
final class EventLoopRouteHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    enum State {
        case idle
        case passing
        case answering(route: EventLoopRoute, head: HTTPRequest, body: ByteBuffer, tooLarge: Bool, start: ContinuousClock.Instant)
    }

    let routes: EventLoopRoutes
    var state = State.idle
    /// Requests handed to Hummingbird whose response has not ended yet.
    var owed = 0
    var needsFlush = false

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
            self.state = .idle  // drop the reference so `body` is uniquely owned while appending
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

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.owed = max(0, self.owed - 1) }
        context.write(data, promise: promise)
    }

    func answer(context: ChannelHandlerContext, route: EventLoopRoute, head: HTTPRequest, body: ByteBuffer, tooLarge: Bool, start: ContinuousClock.Instant) {
        let requestID = RequestIDMiddleware<BasicRequestContext>.acceptableID(head.headerFields[.requestID]) ?? RequestID().description
        let status: HTTPResponse.Status
        var payload: ByteBuffer
        if let presented = head.headerFields[.streamHubInternalToken], ConstantTime.equals(Array(presented.utf8), self.routes.internalToken) {
            if tooLarge {
                (status, payload) = Self.error(ServiceError(.contentTooLarge, message: "Request body is larger than \(route.bodyLimit) bytes"))
            } else {
                do {
                    payload = try route.respond(.init(headers: head.headerFields, body: body, requestID: requestID, baseLogger: self.routes.logger))
                    status = .ok
                } catch let error as ServiceError {
                    (status, payload) = Self.error(error)
                } catch {
                    var logger = self.routes.logger
                    logger[metadataKey: "request_id"] = .string(requestID)
                    logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
                    (status, payload) = Self.error(ServiceError(.internalServerError, message: "Internal server error"))
                }
            }
        } else {
            (status, payload) = Self.error(ServiceError(.unauthorized, message: "Missing or invalid internal token"))
        }
        let close = head.headerFields[.connection]?.lowercased() == "close"
        var fields = HTTPFields()
        fields.reserveCapacity(6)
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.contentLength] = String(payload.readableBytes)
        fields[.requestID] = requestID
        fields[.date] = HTTPDate.now()
        fields[.server] = self.routes.serverName
        if close { fields[.connection] = "close" }
        context.write(self.wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(self.wrapOutboundOut(.body(payload)), promise: nil)
        self.routes.metrics.recordRequest(method: head.method.rawValue, status: status.code, duration: .now - start)
        if close {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        } else {
            context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
            self.needsFlush = true
        }
    }

    static func error(_ error: ServiceError) -> (HTTPResponse.Status, ByteBuffer) {
        (error.status, OrderedJSON.encode(error.body))
    }
}

/// The `Date` header value (IMF-fixdate), formatted at most once per second.
public enum HTTPDate {
    static let cache = Mutex<(second: Int, value: String)>((-1, ""))
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func now() -> String {
        let second = time(nil)
        return self.cache.withLock { cache in
            if cache.second != second {
                cache = (second, self.format(second))
            }
            return cache.value
        }
    }

    public static func format(_ second: Int) -> String {
        var seconds = time_t(second)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(self.days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(self.months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
