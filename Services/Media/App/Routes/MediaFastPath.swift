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

    /// Where the connection is between requests.
    enum State {
        case idle
        /// A request was handed to the router: its body and end follow it there.
        case passing
        /// A request was answered here at its head: its body and end are dropped.
        case draining
    }

    let files: MediaMountController<ServiceRequestContext>
    var book: FastPathBook
    var state = State.idle
    /// Requests handed to the router whose answer has not ended yet.
    var owed = 0

    init(files: MediaMountController<ServiceRequestContext>, metrics: ServiceMetrics, logger: Logger) {
        self.files = files
        self.book = FastPathBook(metrics: metrics, logger: logger)
    }

    /// The path of a request target (without its query).
    static func path(of target: String) -> Substring {
        target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? target[...]
    }

    /// The index in ``mounts`` of the mount a fast-path request is under, or nil.
    static func mount(of head: HTTPRequestHead) -> Int? {
        guard head.method == .GET || head.method == .HEAD else { return nil }
        return Self.mountIndex(of: Self.path(of: head.uri))
    }

    /// The index in ``mounts`` of the mount `path` is under (`/hls/…`), or nil.
    static func mountIndex(of path: Substring) -> Int? {
        Self.mounts.firstIndex { path.hasPrefix($0) && path.dropFirst($0.utf8.count).first == "/" }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        switch (self.state, part) {
        case (.idle, .head(let head)):
            // Answered at its head (a GET's body means nothing here), unless the router still owes
            // an answer on this connection: pipelined answers keep their order.
            if self.owed == 0, let mount = Self.mount(of: head), let answer = self.plan(head) {
                self.state = .draining
                self.answer(context: context, head: head, answer: answer, mount: mount, start: .now)
            } else {
                self.pass(context: context, data)
            }
        case (.draining, .end):
            self.state = .idle
        case (.draining, _):
            break
        case (.passing, .end):
            self.state = .idle
            context.fireChannelRead(data)
        default:
            context.fireChannelRead(data)
        }
    }

    /// The planned answer, or nil to let the router answer (with its error body).
    func plan(_ head: HTTPRequestHead) -> MediaMountController<ServiceRequestContext>.FileAnswer? {
        let conditions = MediaMountController<ServiceRequestContext>.Conditions(
            ifNoneMatch: head.headers.first(name: "If-None-Match"), ifModifiedSince: head.headers.first(name: "If-Modified-Since"),
            range: head.headers.first(name: "Range"), ifRange: head.headers.first(name: "If-Range"))
        return try? self.files.plan(path: String(Self.path(of: head.uri)), conditions: conditions)
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

    /// The writability the handlers behind this one (Hummingbird's async channel) last heard of.
    var forwardedWritable = true

    /// A segment larger than the channel's high-water mark makes it unwritable on every answer; the
    /// async channel's writer behind this handler only needs to hear of that while the router owes
    /// an answer, so the flips in between stay here (its state is brought up to date before a
    /// request is passed on).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && self.readPending {
            self.readPending = false
            context.read()
        }
        if self.owed > 0 { self.syncWritability(context: context) }
    }

    func syncWritability(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        guard writable != self.forwardedWritable else { return }
        self.forwardedWritable = writable
        context.fireChannelWritabilityChanged()
    }

    /// Hands a request on to the router, which then owes its answer.
    func pass(context: ChannelHandlerContext, _ parts: NIOAny...) {
        self.owed += 1
        self.state = .passing
        self.syncWritability(context: context)
        for part in parts { context.fireChannelRead(part) }
    }

    func answer(
        context: ChannelHandlerContext, head: HTTPRequestHead, answer: MediaMountController<ServiceRequestContext>.FileAnswer, mount: Int,
        start: ContinuousClock.Instant
    ) {
        var headers: HTTPHeaders
        let status: HTTPResponse.Status
        var body: IOData?
        var file: NIOFileHandle?
        switch answer {
        case .fixed(let fixedStatus, let fields, let payload):
            status = fixedStatus
            headers = HTTPHeaders()
            for field in fields { headers.add(name: field.name.rawName, value: field.value) }
            if let payload, head.method != .HEAD { body = .byteBuffer(payload) }
        case .file(let path, let fileStatus, let range, let contentRange, let described):
            status = fileStatus
            headers = described.nioHeaders
            headers.add(name: "Content-Length", value: described.contentLength(range: range))
            if let contentRange { headers.add(name: "Content-Range", value: contentRange) }
            if head.method != .HEAD, let range {
                do {
                    let handle = try NIOFileHandle(_deprecatedPath: path)
                    file = handle
                    body = .fileRegion(FileRegion(fileHandle: handle, readerIndex: range.lowerBound, endIndex: range.upperBound + 1))
                } catch {
                    // Gone between the plan and now: the router answers what it finds.
                    self.pass(context: context, self.wrapInboundOut(.head(head)))
                    return
                }
            }
        }
        headers.replaceOrAdd(name: "X-Request-Id", value: RequestIDs.resolve(head.headers.first(name: "X-Request-Id")))
        headers.add(name: "Date", value: self.book.now())
        headers.add(name: "Server", value: "streamhub-media")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: status.code, reasonPhrase: status.reasonPhrase), headers: headers))),
            promise: nil)
        if let body { context.write(self.wrapOutboundOut(.body(body)), promise: nil) }
        if file != nil || !keepAlive {
            let done = context.eventLoop.makePromise(of: Void.self)
            done.futureResult.whenComplete { [channel = context.channel, file] _ in
                try? file?.close()
                if !keepAlive { channel.close(promise: nil) }
            }
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: done)
        } else {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
        self.book.record(mount: mount, status: status.code, head: head.method == .HEAD, since: start)
    }
}
