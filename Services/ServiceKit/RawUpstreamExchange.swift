import NIOCore
import NIOHTTP1

/// The first handler of every pooled upstream connection (``PooledHTTP1Client``), in front of its
/// HTTP/1 codec. Idle, it passes bytes both ways untouched: calls made through the codec
/// (``UpstreamExchangeHandler``) do not see it. During an exchange of the event-loop lane
/// (``PooledHTTP1Client/exchangeOnLoop(on:method:pathAndQuery:headers:body:to:deadline:)``) it
/// writes the request as bytes and reads the answer from the socket's bytes itself — the codec
/// never sees either, so its state is untouched for the next call — which saves NIO's encoder,
/// llhttp's callbacks and building `HTTPHeaders` for every answer (about a sixth of the gateway's
/// CPU per request, measured).
///
/// It reads only answers it understands completely: `HTTP/1.1`, a final status (2xx–5xx), strict
/// `CRLF` lines, exactly one `Content-Length` (or none on 204/304), no `Transfer-Encoding`. Anything
/// else fails the exchange as ``PooledHTTP1Client/ExchangeFailure/broken(_:)`` and closes the
/// connection; the lane's caller then hands the request to the router, whose codec path reads
/// every form HTTP/1.1 allows.
final class RawUpstreamExchange: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// An answer as read: status, its header lines (parsed on demand), body.
    struct Answer: Sendable {
        var status: Int
        /// The header lines, each ending in `CRLF`, without the status line and the blank line.
        var head: ByteBuffer
        var body: ByteBuffer
        var keepAlive: Bool

        /// The first value of the header `name` (ASCII, any case).
        func header(_ name: String) -> String? {
            var found: String?
            Self.fields(self.head) { fieldName, value in
                guard fieldName.count == name.utf8.count, zip(fieldName, name.utf8).allSatisfy({ $0 | 0x20 == $1 | 0x20 }) else { return true }
                found = String(decoding: value, as: UTF8.self)
                return false
            }
            return found
        }

        /// Every header, in order.
        var headers: HTTPHeaders {
            var headers = HTTPHeaders()
            Self.fields(self.head) { name, value in
                headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
                return true
            }
            return headers
        }

        /// Calls `body` with each field's name and value (trimmed) until it returns false. The
        /// lines were checked when the answer was read.
        static func fields(_ head: ByteBuffer, _ body: (UnsafeRawBufferPointer.SubSequence, UnsafeRawBufferPointer.SubSequence) -> Bool) {
            head.withUnsafeReadableBytes { bytes in
                var index = 0
                while index < bytes.count {
                    guard let colon = bytes[index...].firstIndex(of: UInt8(ascii: ":")),
                        let lineEnd = bytes[colon...].firstIndex(of: UInt8(ascii: "\r"))
                    else { return }
                    var start = colon + 1
                    while start < lineEnd, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
                    var end = lineEnd
                    while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
                    guard body(bytes[index..<colon], bytes[start..<end]) else { return }
                    index = lineEnd + 2
                }
            }
        }
    }

    /// What ``parse(_:maxBody:)`` makes of the bytes received so far.
    enum Parsed {
        case incomplete
        /// A form this reader does not take (see the type's comment), or a broken answer.
        case unreadable(String)
        /// A whole answer, `length` bytes long.
        case answer(Answer, length: Int)
    }

    /// An answer head longer than this is not read here.
    static let maxHead = 64 * 1024

    /// How an exchange ends: called once, on the connection's event loop (a callback, not a
    /// future: futures' allocations and callback lists were a twentieth of the gateway's CPU).
    typealias Completion = (Result<Answer, PooledHTTP1Client.ExchangeFailure>) -> Void

    let maxAnswerBytes: Int
    private var context: ChannelHandlerContext?
    private var pending: Completion?
    private var received: ByteBuffer?
    private var timer: Scheduled<Void>?

    init(maxAnswerBytes: Int) {
        self.maxAnswerBytes = maxAnswerBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes `request` (a whole request, as bytes) and calls `completion` with its answer, or
    /// with an ``PooledHTTP1Client/ExchangeFailure`` (at once when nothing could be written). Call
    /// on the connection's event loop, on a connection no other call uses.
    func exchange(_ request: ByteBuffer, deadline: NIODeadline, completion: @escaping Completion) {
        guard let context = self.context, context.channel.isActive, self.pending == nil else {
            completion(.failure(.notSent("the connection is closed or busy")))
            return
        }
        self.pending = completion
        self.received = nil
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.fail(.timedOut)
            context.close(promise: nil)
        }
        // A write that fails closes the channel: channelInactive fails the exchange.
        context.writeAndFlush(self.wrapOutboundOut(.byteBuffer(request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.pending != nil else {
            context.fireChannelRead(data)
            return
        }
        var bytes = self.unwrapInboundIn(data)
        if self.received == nil {
            self.received = bytes
        } else {
            self.received!.writeBuffer(&bytes)
        }
        switch Self.parse(self.received!, maxBody: self.maxAnswerBytes) {
        case .incomplete:
            return
        case .unreadable(let reason):
            self.fail(.broken(reason))
            context.close(promise: nil)
        case .answer(var answer, let length):
            // Bytes after the answer were never asked for: the connection cannot be trusted again.
            if length != self.received!.readableBytes { answer.keepAlive = false }
            self.timer?.cancel()
            self.timer = nil
            self.received = nil
            let completion = self.pending
            self.pending = nil
            completion?(.success(answer))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(self.received == nil ? .closedBeforeAnswer : .broken("connection closed during the answer"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard self.pending != nil else {
            context.fireErrorCaught(error)
            return
        }
        // A reset before any byte of the answer is the keep-alive race, as on the codec's path.
        self.fail(self.received == nil ? .closedBeforeAnswer : .broken(String(describing: error)))
        context.close(promise: nil)
    }

    private func fail(_ failure: PooledHTTP1Client.ExchangeFailure) {
        self.timer?.cancel()
        self.timer = nil
        self.received = nil
        guard let completion = self.pending else { return }
        self.pending = nil
        completion(.failure(failure))
    }

    /// Reads an answer from the start of `buffer`.
    static func parse(_ buffer: ByteBuffer, maxBody: Int) -> Parsed {
        buffer.withUnsafeReadableBytes { bytes -> Parsed in
            let count = bytes.count
            // "HTTP/1.1 NNN reason\r\n"
            let version = "HTTP/1.1 ".utf8
            let compared = min(count, version.count)
            guard version.prefix(compared).elementsEqual(bytes.prefix(compared)) else { return .unreadable("not HTTP/1.1") }
            guard count >= version.count + 4 else { return .incomplete }
            var status = 0
            for index in version.count..<(version.count + 3) {
                let digit = bytes[index]
                guard digit >= 0x30, digit <= 0x39 else { return .unreadable("bad status") }
                status = status * 10 + Int(digit - 0x30)
            }
            guard (200...599).contains(status), bytes[version.count + 3] == 0x20 || bytes[version.count + 3] == 0x0D else {
                return .unreadable("status \(status)")
            }
            var index = version.count + 3
            while index < count, bytes[index] != 0x0D {
                let byte = bytes[index]
                guard byte == 0x09 || (byte >= 0x20 && byte != 0x7F) else { return .unreadable("bad reason phrase") }
                index += 1
            }
            guard index + 1 < count else { return count > Self.maxHead ? .unreadable("head too long") : .incomplete }
            guard bytes[index + 1] == 0x0A else { return .unreadable("bad line end") }
            index += 2
            let headStart = index
            var contentLength: Int?
            var keepAlive = true
            while true {
                guard index + 1 < count else { return count > Self.maxHead ? .unreadable("head too long") : .incomplete }
                if bytes[index] == 0x0D {
                    guard bytes[index + 1] == 0x0A else { return .unreadable("bad line end") }
                    break
                }
                let nameStart = index
                while index < count, RawRequestBytes.tchar[Int(bytes[index])] { index += 1 }
                guard index < count else { return count > Self.maxHead ? .unreadable("head too long") : .incomplete }
                guard index > nameStart, bytes[index] == UInt8(ascii: ":") else { return .unreadable("bad header name") }
                let name = bytes[nameStart..<index]
                index += 1
                while index < count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 }
                let valueStart = index
                var valueEnd = index
                while index < count, bytes[index] != 0x0D {
                    let byte = bytes[index]
                    guard byte == 0x09 || (byte >= 0x20 && byte != 0x7F) else { return .unreadable("bad header value") }
                    index += 1
                    if byte != 0x20 && byte != 0x09 { valueEnd = index }
                }
                guard index + 1 < count else { return count > Self.maxHead ? .unreadable("head too long") : .incomplete }
                guard bytes[index + 1] == 0x0A else { return .unreadable("bad line end") }
                index += 2
                let value = bytes[valueStart..<valueEnd]
                if RawRequestBytes.named(name, "content-length") {
                    guard contentLength == nil, !value.isEmpty, value.count <= 12, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                        return .unreadable("bad or repeated Content-Length")
                    }
                    contentLength = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                } else if RawRequestBytes.named(name, "transfer-encoding") {
                    return .unreadable("Transfer-Encoding")
                } else if RawRequestBytes.named(name, "connection") {
                    for token in value.split(separator: UInt8(ascii: ",")) {
                        let trimmed = token.drop(while: { $0 == 0x20 || $0 == 0x09 })
                        if RawRequestBytes.named(trimmed.prefix(while: { $0 != 0x20 && $0 != 0x09 }), "close") { keepAlive = false }
                    }
                }
            }
            let headEnd = index
            let bodyStart = index + 2
            let length: Int
            if status == 204 || status == 304 {
                length = 0
            } else {
                guard let contentLength else { return .unreadable("no Content-Length") }
                guard contentLength <= maxBody else { return .unreadable("answer larger than \(maxBody) bytes") }
                length = contentLength
            }
            guard count - bodyStart >= length else { return .incomplete }
            let answer = Answer(
                status: status, head: buffer.getSlice(at: buffer.readerIndex + headStart, length: headEnd - headStart) ?? ByteBuffer(),
                body: buffer.getSlice(at: buffer.readerIndex + bodyStart, length: length) ?? ByteBuffer(), keepAlive: keepAlive)
            return .answer(answer, length: bodyStart + length)
        }
    }
}

/// Byte-level helpers shared by the readers of raw HTTP/1 heads.
enum RawRequestBytes {
    /// Token characters of a header name (RFC 9110 §5.6.2).
    static let tchar: [Bool] = (0..<256).map { byte in
        let c = UInt8(byte)
        return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "!#$&'*+-.^_`|~".utf8.contains(c)
    }

    /// Whether `name` is `lowercase` in any case (`lowercase` is lower-case ASCII).
    static func named(_ name: some Collection<UInt8>, _ lowercase: StaticString) -> Bool {
        guard name.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        return zip(name, expected).allSatisfy { ($0 | 0x20) == $1 }
    }
}
