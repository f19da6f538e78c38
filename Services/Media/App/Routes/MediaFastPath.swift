import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceKit
import Shared

/// `GET`/`HEAD` of files under `/hls/` and `/samples/` answered on the connection's event loop,
/// the body handed to the kernel (`sendfile`, NIO's `FileRegion`) — how nginx serves segments.
///
/// The answer is decided by ``MediaMountController/plan(path:conditions:)``, the router's own rules
/// (containment, hidden files, ETag/Last-Modified, 304, ranges, 416, caching headers), so both
/// paths answer alike. Anything else — another mount, an error (the router writes the NestJS
/// body), a request while the router still owes an answer on this connection (pipelining keeps
/// its order) — passes through to Hummingbird unchanged. Counted in the service's metrics under
/// the mount's route; logged at debug.
final class MediaFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    static let mounts = ["/hls", "/samples"]

    enum State {
        case idle
        case passing
        case answering(head: HTTPRequestHead, answer: MediaMountController<ServiceRequestContext>.FileAnswer, mount: String, start: ContinuousClock.Instant)
    }

    let files: MediaMountController<ServiceRequestContext>
    let metrics: ServiceMetrics
    let logger: Logger
    var state = State.idle
    /// Requests handed to the router whose answer has not ended yet.
    var owed = 0
    var date: (second: Int, value: String) = (-1, "")
    var instruments: [String: ServiceMetrics.RequestInstruments] = [:]

    init(files: MediaMountController<ServiceRequestContext>, metrics: ServiceMetrics, logger: Logger) {
        self.files = files
        self.metrics = metrics
        self.logger = logger
    }

    /// The mount a fast-path request is under, or nil.
    static func mount(of head: HTTPRequestHead) -> String? {
        guard head.method == .GET || head.method == .HEAD else { return nil }
        let target = head.uri
        let path = target.utf8.firstIndex(of: UInt8(ascii: "?")).map { String(target[..<$0]) } ?? target
        return Self.mounts.first { path.hasPrefix($0 + "/") }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        switch (self.state, part) {
        case (.idle, .head(let head)):
            if self.owed == 0, let mount = Self.mount(of: head), let answer = self.plan(head) {
                self.state = .answering(head: head, answer: answer, mount: mount, start: .now)
            } else {
                self.owed += 1
                self.state = .passing
                context.fireChannelRead(data)
            }
        case (.answering(let head, let answer, let mount, let start), .end):
            self.state = .idle
            self.answer(context: context, head: head, answer: answer, mount: mount, start: start)
        case (.answering, .body):
            break  // a GET body means nothing here
        case (.passing, .end):
            self.state = .idle
            context.fireChannelRead(data)
        default:
            context.fireChannelRead(data)
        }
    }

    /// The planned answer, or nil to let the router answer (with its error body).
    func plan(_ head: HTTPRequestHead) -> MediaMountController<ServiceRequestContext>.FileAnswer? {
        let target = head.uri
        let path = target.utf8.firstIndex(of: UInt8(ascii: "?")).map { String(target[..<$0]) } ?? target
        let conditions = MediaMountController<ServiceRequestContext>.Conditions(
            ifNoneMatch: head.headers.first(name: "If-None-Match"), ifModifiedSince: head.headers.first(name: "If-Modified-Since"),
            range: head.headers.first(name: "Range"), ifRange: head.headers.first(name: "If-Range"))
        return try? self.files.plan(path: path, conditions: conditions)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.owed = max(0, self.owed - 1) }
        context.write(data, promise: promise)
    }

    /// Back-pressure: while the socket's send buffer is full no more requests are read.
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

    func answer(
        context: ChannelHandlerContext, head: HTTPRequestHead, answer: MediaMountController<ServiceRequestContext>.FileAnswer, mount: String,
        start: ContinuousClock.Instant
    ) {
        var headers = HTTPHeaders()
        let status: HTTPResponse.Status
        var body: IOData?
        var file: NIOFileHandle?
        switch answer {
        case .fixed(let fixedStatus, let fields, let payload):
            status = fixedStatus
            for field in fields { headers.add(name: field.name.rawName, value: field.value) }
            if let payload, head.method != .HEAD { body = .byteBuffer(payload) }
        case .file(let path, let fileStatus, let fields, let range, let described):
            status = fileStatus
            headers = described.nioHeaders
            headers.add(name: "Content-Length", value: fields[.contentLength] ?? "0")
            if let contentRange = fields[.contentRange] { headers.add(name: "Content-Range", value: contentRange) }
            if head.method != .HEAD, let range {
                do {
                    let handle = try NIOFileHandle(_deprecatedPath: path)
                    file = handle
                    body = .fileRegion(FileRegion(fileHandle: handle, readerIndex: range.lowerBound, endIndex: range.upperBound + 1))
                } catch {
                    // Gone between the plan and now: the router answers what it finds.
                    self.owed += 1
                    self.state = .passing
                    context.fireChannelRead(self.wrapInboundOut(.head(head)))
                    context.fireChannelRead(self.wrapInboundOut(.end(nil)))
                    return
                }
            }
        }
        headers.replaceOrAdd(name: "X-Request-Id", value: RequestIDs.resolve(head.headers.first(name: "X-Request-Id")))
        let second = time(nil)
        if self.date.second != second { self.date = (second, ServiceKit.HTTPDate.format(second)) }
        headers.add(name: "Date", value: self.date.value)
        headers.add(name: "Server", value: "streamhub-media")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: status.code, reasonPhrase: status.reasonPhrase), headers: headers))),
            promise: nil)
        if let body { context.write(self.wrapOutboundOut(.body(body)), promise: nil) }
        let done = context.eventLoop.makePromise(of: Void.self)
        done.futureResult.whenComplete { [channel = context.channel] _ in
            try? file?.close()
            if !keepAlive { channel.close(promise: nil) }
        }
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: done)
        let key = "\(mount) \(status.code) \(head.method.rawValue)"
        let instruments =
            self.instruments[key]
            ?? {
                let made = self.metrics.requestInstruments(route: mount, method: head.method.rawValue, status: status.code)
                self.instruments[key] = made
                return made
            }()
        instruments.record(.now - start)
        if self.logger.logLevel <= .debug {
            self.logger.debug(
                "request", metadata: ["method": .string(head.method.rawValue), "route": .string(mount), "status": .stringConvertible(status.code)])
        }
    }
}
