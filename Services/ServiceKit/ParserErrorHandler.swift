import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Shared

/// Answers a request the HTTP parser refused with a status that says why, in the NestJS body,
/// then closes the connection: headers past the decoder's limits (too many, or too large — a
/// request line past them included) → 431, anything else malformed → 400. Hummingbird alone sends
/// a bare 400. A parser error while an answer is still being written is left to Hummingbird.
///
/// It also keeps an answer's `Connection: close` (a 413, a 408, a malformed body): Hummingbird
/// closes only when the *request* said so, and would read and answer the next pipelined request.
/// Once such an answer has ended, nothing more is read or answered: the output is closed (so
/// the client reads the answer and a clean end of stream) and the connection goes 2 s later.
public final class ParserErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// Requests read whose answers have not ended yet.
    var inFlight = 0
    /// Whether this handler answered a refused request (the connection is closing).
    var answered = false

    /// Whether the answer being written says `Connection: close`.
    var answerCloses = false
    /// Whether such an answer has ended: what arrives after it is dropped.
    var closing = false

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.closing { return }
        if case .head = self.unwrapInboundIn(data) { self.inFlight += 1 }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(let head):
            if head.headerFields[.connection]?.lowercased() == "close" { self.answerCloses = true }
        case .body:
            break
        case .end:
            self.inFlight = max(0, self.inFlight - 1)
            if self.answerCloses && !self.closing && !self.answered {
                self.closing = true
                let written = promise ?? context.eventLoop.makePromise()
                context.writeAndFlush(data, promise: written)
                written.futureResult.whenComplete { _ in
                    context.close(mode: .output, promise: nil)
                    context.eventLoop.scheduleTask(in: .seconds(2)) { context.close(promise: nil) }
                }
                return
            }
        }
        context.write(data, promise: promise)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // What the decoder says about bytes after the one it refused is noise once answered.
        if self.answered { return }
        guard let parserError = error as? HTTPParserError, self.inFlight == 0 else {
            context.fireErrorCaught(error)
            return
        }
        let body: ErrorBody
        switch parserError {
        case .headerOverflow:
            body = ErrorBody(statusCode: 431, message: "Request header fields are too large or too many", error: "Request Header Fields Too Large")
        default:
            body = ErrorBody(statusCode: 400, message: "Malformed HTTP request")
        }
        let payload = OrderedJSON.encode(body)
        let head = HTTPResponse(
            status: .init(code: body.statusCode, reasonPhrase: body.error),
            headerFields: [
                .contentType: "application/json; charset=utf-8", .contentLength: String(payload.readableBytes), .connection: "close",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ])
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(payload)), promise: nil)
        self.answered = true
        // Half-close first, so the client reads the answer and a clean end of stream even while the
        // rest of its request is still arriving; the connection goes a moment later.
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            context.close(mode: .output, promise: nil)
            context.eventLoop.scheduleTask(in: .seconds(2)) { context.close(promise: nil) }
        }
    }
}
