import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import ServiceKit

/// The first handler of a media connection: while the connection has asked only for files under
/// `/hls/` and `/samples/`, requests are read and answered here from the socket's bytes (the
/// response head written as bytes, the body handed to the kernel with `sendfile`), without NIO's
/// HTTP decoder and encoder or Hummingbird — how nginx serves segments.
///
/// Only requests this reader understands completely are answered: `GET`/`HEAD` over HTTP/1.1 with
/// a target of plain characters (no `%`-escape), strict `CRLF` lines, exactly one `Host`, no body,
/// no `Transfer-Encoding`, `Upgrade` or `Expect`, no repeated validator header, and a plan from
/// ``MediaMountController/plan(path:conditions:)`` that is a file or a fixed answer (the router's
/// own rules). At the first request that is anything else, this request and every byte after it
/// go to the HTTP/1 pipeline for the rest of the connection (where ``MediaFastPath`` still
/// answers later segment requests from decoded heads), so odd input always meets NIO's strict
/// parser and the router's error bodies.
final class MediaRawFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    enum Mode {
        /// Requests are read here.
        case reading
        /// Everything goes on to the HTTP/1 pipeline.
        case passing
        /// A `Connection: close` request was answered: the rest is dropped, the channel closes.
        case closing
    }

    /// A request head longer than this without its end goes to NIO's parser (and its limits).
    static var maxHead: Int { RawRequest.maxHead }

    let files: MediaMountController<ServiceRequestContext>
    var book: FastPathBook
    var mode = Mode.reading
    /// Bytes received and not yet answered or passed on.
    var pending: ByteBuffer?
    /// A read was asked for while the socket's send buffer was full.
    var readPending = false

    init(files: MediaMountController<ServiceRequestContext>, metrics: ServiceMetrics, logger: Logger) {
        self.files = files
        self.book = FastPathBook(metrics: metrics, logger: logger)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.mode {
        case .passing:
            context.fireChannelRead(data)
        case .closing:
            break
        case .reading:
            var bytes = self.unwrapInboundIn(data)
            if self.pending == nil {
                self.pending = bytes
            } else {
                self.pending!.writeBuffer(&bytes)
            }
            self.process(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Nothing went on to the pipeline while reading here: its handlers have nothing to finish.
        if case .passing = self.mode { context.fireChannelReadComplete() }
    }

    func read(context: ChannelHandlerContext) {
        if case .reading = self.mode, !context.channel.isWritable {
            self.readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .reading = self.mode, context.channel.isWritable {
            if self.pending != nil { self.process(context: context) }
            if self.readPending, context.channel.isWritable {
                self.readPending = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Answers the complete requests in `pending` while the socket takes more; stops at an
    /// incomplete one, hands the rest on at the first one it does not answer.
    func process(context: ChannelHandlerContext) {
        var wrote = false
        defer { if wrote { context.flush() } }
        while case .reading = self.mode, var buffer = self.pending, buffer.readableBytes > 0 {
            guard context.channel.isWritable else { return }
            let parsed = buffer.withUnsafeReadableBytes { RawRequest.parse($0) }
            switch parsed {
            case .incomplete:
                if buffer.readableBytes > Self.maxHead { self.pass(context: context) }
                return
            case .other:
                self.pass(context: context)
                return
            case .request(let request, let length):
                guard let (mount, answer) = self.plan(request) else {
                    self.pass(context: context)
                    return
                }
                guard self.write(context: context, request: request, answer: answer, mount: mount) else {
                    self.pass(context: context)
                    return
                }
                wrote = true
                buffer.moveReaderIndex(forwardBy: length)
                self.pending = buffer.readableBytes > 0 ? buffer : nil
                if !request.keepAlive {
                    self.mode = .closing
                    self.pending = nil
                }
            }
        }
    }

    /// Hands `pending` and everything after it to the HTTP/1 pipeline.
    func pass(context: ChannelHandlerContext) {
        self.mode = .passing
        if let pending = self.pending {
            self.pending = nil
            context.fireChannelRead(self.wrapInboundOut(pending))
            context.fireChannelReadComplete()
        }
        if self.readPending {
            self.readPending = false
            context.read()
        }
    }

    func plan(_ request: RawRequest) -> (mount: Int, answer: MediaMountController<ServiceRequestContext>.FileAnswer)? {
        guard let mount = MediaFastPath.mountIndex(of: request.path[...]),
            let answer = try? self.files.plan(path: request.path, conditions: request.conditions)
        else { return nil }
        return (mount, answer)
    }

    /// Writes the answer (not flushed); false when the file cannot be opened (the router answers).
    func write(
        context: ChannelHandlerContext, request: RawRequest, answer: MediaMountController<ServiceRequestContext>.FileAnswer, mount: Int
    ) -> Bool {
        let start = ContinuousClock.now
        var head = context.channel.allocator.buffer(capacity: 512)
        let status: HTTPResponse.Status
        var region: FileRegion?
        switch answer {
        case .fixed(let fixedStatus, let fields, let payload):
            status = fixedStatus
            head.writeStatusLine(status)
            for field in fields { head.writeHeader(field.name.rawName, field.value) }
            self.book.writeCommonHeaders(into: &head, requestID: request.requestID, keepAlive: request.keepAlive)
            if var payload, !request.isHead { head.writeBuffer(&payload) }
        case .file(let path, let fileStatus, let range, let contentRange, let described):
            status = fileStatus
            if !request.isHead, let range {
                guard let handle = try? NIOFileHandle(_deprecatedPath: path) else { return false }
                region = FileRegion(fileHandle: handle, readerIndex: range.lowerBound, endIndex: range.upperBound + 1)
            }
            head.writeStatusLine(status)
            head.writeImmutableBuffer(described.headerBlock)
            head.writeHeader("Content-Length", described.contentLength(range: range))
            if let contentRange { head.writeHeader("Content-Range", contentRange) }
            self.book.writeCommonHeaders(into: &head, requestID: request.requestID, keepAlive: request.keepAlive)
        }
        let keepAlive = request.keepAlive
        if let region {
            context.write(self.wrapOutboundOut(.byteBuffer(head)), promise: nil)
            let done = context.eventLoop.makePromise(of: Void.self)
            done.futureResult.whenComplete { [channel = context.channel] _ in
                try? region.fileHandle.close()
                if !keepAlive { channel.close(promise: nil) }
            }
            context.write(self.wrapOutboundOut(.fileRegion(region)), promise: done)
        } else if keepAlive {
            context.write(self.wrapOutboundOut(.byteBuffer(head)), promise: nil)
        } else {
            let done = context.eventLoop.makePromise(of: Void.self)
            done.futureResult.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
            context.write(self.wrapOutboundOut(.byteBuffer(head)), promise: done)
        }
        self.book.record(mount: mount, status: status.code, head: request.isHead, since: start)
        return true
    }
}

/// What both fast paths of a connection keep: the `Date` of the current second, the metrics'
/// instruments by answer, the debug log switch.
struct FastPathBook {
    /// What an answer's metrics are kept under.
    struct InstrumentKey: Hashable {
        var mount: Int
        var status: Int
        var head: Bool
    }

    let metrics: ServiceMetrics
    let logger: Logger
    let debugLogging: Bool
    var date: (second: Int, value: String) = (-1, "")
    var instruments: [InstrumentKey: ServiceMetrics.RequestInstruments] = [:]

    init(metrics: ServiceMetrics, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
        self.debugLogging = logger.logLevel <= .debug
    }

    /// The `Date` header's value now (formatted once a second).
    mutating func now() -> String {
        let second = time(nil)
        if self.date.second != second { self.date = (second, ServiceKit.HTTPDate.format(second)) }
        return self.date.value
    }

    /// `X-Request-Id`, `Date`, `Server`, `Connection: close` when closing, and the blank line.
    mutating func writeCommonHeaders(into head: inout ByteBuffer, requestID: String?, keepAlive: Bool) {
        head.writeHeader("X-Request-Id", RequestIDs.resolve(requestID))
        head.writeHeader("Date", self.now())
        head.writeStaticString("Server: streamhub-media\r\n")
        if !keepAlive { head.writeStaticString("Connection: close\r\n") }
        head.writeStaticString("\r\n")
    }

    /// Counts the answer under its mount's route and logs it at debug.
    mutating func record(mount: Int, status: Int, head: Bool, since start: ContinuousClock.Instant) {
        let key = InstrumentKey(mount: mount, status: status, head: head)
        let route = MediaFastPath.mounts[mount]
        let instruments =
            self.instruments[key]
            ?? {
                let made = self.metrics.requestInstruments(route: route, method: head ? "HEAD" : "GET", status: status)
                self.instruments[key] = made
                return made
            }()
        instruments.record(.now - start)
        if self.debugLogging {
            self.logger.debug(
                "request", metadata: ["method": .string(head ? "HEAD" : "GET"), "route": .string(route), "status": .stringConvertible(status)])
        }
    }
}
