import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive HTTP/1.1 connections to plain-`http` upstreams, straight on NIO channels.
///
/// A call borrows an idle connection to its upstream (or opens one), writes the request, collects
/// the whole answer (at most `maxAnswerBytes`) on the connection's event loop and puts the
/// connection back. What the services send each other is small JSON, so collecting costs nothing
/// and saves AsyncHTTPClient's per-call machinery (its request state machines, URL parsing,
/// tracing, streamed body): about a third of the gateway's CPU under load. Answers that must stream
/// (media files through the gateway, ``UpstreamRequest/streamsAnswer``) still go through
/// AsyncHTTPClient (``HTTPUpstreamClient``).
final class PooledHTTP1Client: Sendable {
    /// Where a base URL points: `http://host[:port][/prefix]`.
    struct Target: Hashable, Sendable {
        var host: String
        var port: Int
        /// `host[:port]` as written, for the `Host` header.
        var authority: String
        /// A path the base URL carries, without a trailing `/`; prefixed to every request's path.
        var pathPrefix: String
    }

    /// Why an exchange on a connection failed.
    enum ExchangeFailure: Error {
        /// The connection was closed or failed before the request was written: never sent.
        case notSent(String)
        /// The connection closed after the request was written and before any byte of an answer.
        case closedBeforeAnswer
        /// The connection closed or broke during the answer.
        case broken(String)
        case timedOut
        case tooLarge(Int)
    }

    let group: any EventLoopGroup
    let connectTimeout: TimeAmount
    let maxAnswerBytes: Int
    let maxIdlePerTarget: Int
    private let targets = NIOLockedValueBox<[String: Target?]>([:])
    private let idle = NIOLockedValueBox<(closed: Bool, channels: [Target: [any Channel]])>((false, [:]))

    init(group: any EventLoopGroup, connectTimeout: TimeAmount, maxAnswerBytes: Int = 16 << 20, maxIdlePerTarget: Int = 64) {
        self.group = group
        self.connectTimeout = connectTimeout
        self.maxAnswerBytes = maxAnswerBytes
        self.maxIdlePerTarget = maxIdlePerTarget
    }

    /// The parsed base URL (remembered: a process talks to a handful), nil when this client cannot
    /// reach it (not plain `http`, credentials in the URL, a bad port).
    func target(_ baseURL: String) -> Target? {
        if let known = self.targets.withLockedValue({ $0[baseURL] }) { return known }
        let parsed = Self.parse(baseURL)
        self.targets.withLockedValue { if $0.count < 1024 { $0[baseURL] = parsed } }
        return parsed
    }

    static func parse(_ baseURL: String) -> Target? {
        guard baseURL.hasPrefix("http://") else { return nil }
        let rest = baseURL.dropFirst("http://".count)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = String(rest[..<slash])
        var prefix = String(rest[slash...])
        guard !prefix.contains("?"), !prefix.contains("#") else { return nil }
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        let host: Substring
        let portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { return nil }
            portText = after.isEmpty ? nil : after.dropFirst()
        } else if let colon = authority.firstIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority[...]
            portText = nil
        }
        var port = 80
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { return nil }
            port = value
        }
        guard !host.isEmpty else { return nil }
        return Target(host: String(host), port: port, authority: authority, pathPrefix: prefix)
    }

    func send(_ request: UpstreamRequest, to target: Target, timeout: Duration) async throws -> UpstreamResponse {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        var head = HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method.rawValue),
            uri: Self.requestTarget(target.pathPrefix + request.pathAndQuery))
        head.headers.reserveCapacity(request.headers.count + 2)
        head.headers.add(name: "Host", value: target.authority)
        for field in request.headers {
            head.headers.add(name: field.name.rawName, value: field.value)
        }
        if let body = request.body {
            head.headers.add(name: "Content-Length", value: String(body.readableBytes))
        } else if ![.get, .head, .options, .delete, .trace].contains(request.method) {
            head.headers.add(name: "Content-Length", value: "0")
        }
        var retried = false
        while true {
            // A second attempt always opens a new connection: the kept one that failed was probably
            // not the only one the upstream had dropped.
            let (channel, reused) = try await self.connection(to: target, deadline: deadline, reuse: !retried)
            let answer: Answer
            do {
                answer = try await Self.exchange(on: channel, head: head, body: request.body, deadline: deadline)
            } catch let failure as ExchangeFailure {
                channel.close(promise: nil)
                if reused && failure.meansStale { self.dropIdle(target) }
                switch failure {
                case .notSent:
                    // A kept-alive connection the upstream had closed: nothing left, so any call may go again.
                    if reused && !retried {
                        retried = true
                        continue
                    }
                case .closedBeforeAnswer:
                    // The classic keep-alive race: the upstream closed an idle connection as the request
                    // went out. Only a call that may run twice goes again.
                    if reused && !retried && request.idempotent {
                        retried = true
                        continue
                    }
                default:
                    break
                }
                throw failure.upstreamError
            }
            if answer.keepAlive {
                self.checkin(channel, target)
            } else {
                channel.close(promise: nil)
            }
            var fields = HTTPFields()
            fields.reserveCapacity(answer.head.headers.count)
            for (name, value) in answer.head.headers {
                if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
            }
            let body = answer.body
            return UpstreamResponse(
                status: HTTPResponse.Status(code: Int(answer.head.status.code)), headers: fields, body: ResponseBody(byteBuffer: body),
                collect: { limit in
                    guard body.readableBytes <= limit else { throw NIOTooManyBytesError(maxBytes: limit) }
                    return body
                })
        }
    }

    /// `pathAndQuery` as a valid request-target: identifiers may hold any printable character
    /// (`Ø`, a space), which an HTTP/1 parser refuses raw — the upstream would close the connection
    /// and the call look like an outage. Such bytes are percent-encoded (UTF-8); everything else,
    /// `%` `/` `?` included, is kept as the caller wrote it.
    static func requestTarget(_ pathAndQuery: String) -> String {
        func raw(_ byte: UInt8) -> Bool { Self.rawTargetByte[Int(byte)] }
        guard !pathAndQuery.utf8.allSatisfy(raw) else { return pathAndQuery }
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pathAndQuery.utf8.count * 3)
        for byte in pathAndQuery.utf8 {
            if raw(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The bytes a request-target keeps as written (``requestTarget(_:)``).
    static let rawTargetByte: [Bool] = (0..<256).map { byte in
        (0x21...0x7E).contains(byte) && !"\"<>\\^`{|}".utf8.contains(UInt8(byte))
    }

    /// Stops pooling and closes every idle connection (at shutdown).
    func shutdown() {
        let channels = self.idle.withLockedValue { idle -> [any Channel] in
            idle.closed = true
            defer { idle.channels = [:] }
            return idle.channels.values.flatMap { $0 }
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// An idle connection to `target`, on the calling thread's event loop when there is one (a
    /// caller on an event loop — ``EventLoopExecutor`` — is then answered without a thread hop).
    private func checkout(_ target: Target, onLoop: Bool) -> (any Channel)? {
        self.idle.withLockedValue { idle in
            guard idle.channels[target]?.isEmpty == false else { return nil }
            return Self.take(from: &idle.channels[target, default: []], onLoop: onLoop)
        }
    }

    private static func take(from channels: inout [any Channel], onLoop: Bool) -> (any Channel)? {
        channels.removeAll { !$0.isActive }
        if onLoop {
            guard let index = channels.lastIndex(where: { $0.eventLoop.inEventLoop }) else { return nil }
            return channels.remove(at: index)
        }
        return channels.popLast()
    }

    /// Closes every idle connection to `target`. Called when a kept connection turns out dead:
    /// the upstream restarted (or dropped its idle connections), and the others kept from
    /// before are most likely dead too, even while they still look open here.
    func dropIdle(_ target: Target) {
        let dropped = self.idle.withLockedValue { idle -> [any Channel] in
            defer { idle.channels[target] = nil }
            return idle.channels[target] ?? []
        }
        for channel in dropped { channel.close(promise: nil) }
    }

    func checkin(_ channel: any Channel, _ target: Target) {
        let kept = self.idle.withLockedValue { idle -> Bool in
            guard !idle.closed, channel.isActive, idle.channels[target, default: []].count < self.maxIdlePerTarget else { return false }
            idle.channels[target, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    private func connection(to target: Target, deadline: NIODeadline, reuse: Bool = true) async throws -> (any Channel, reused: Bool) {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop
        if reuse, let channel = self.checkout(target, onLoop: loop != nil) { return (channel, true) }
        let remaining = deadline - .now()
        guard remaining > .zero else { throw UpstreamFailure.timeout }
        let maxAnswerBytes = self.maxAnswerBytes
        do {
            let channel = try await ClientBootstrap(group: loop ?? self.group.next())
                .connectTimeout(min(self.connectTimeout, remaining))
                // A TCP option: `.socketOption(.tcp_nodelay)` would set SOL_SOCKET's option 1
                // (SO_DEBUG), which needs CAP_NET_ADMIN and fails every connect in a container.
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RawUpstreamExchange(maxAnswerBytes: maxAnswerBytes))
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(UpstreamExchangeHandler(maxAnswerBytes: maxAnswerBytes))
                    }
                }
                .connect(host: target.host, port: target.port).get()
            return (channel, false)
        } catch {
            // Refused, unreachable, no such name, connect timeout: the request never left.
            throw UpstreamFailure.unavailable(UpstreamFailure.notSentPrefix + String(describing: error))
        }
    }

    private static func exchange(on channel: any Channel, head: HTTPRequestHead, body: ByteBuffer?, deadline: NIODeadline) async throws -> Answer {
        try await Self.exchangeFuture(on: channel, head: head, body: body, deadline: deadline).get()
    }

    private static func exchangeFuture(on channel: any Channel, head: HTTPRequestHead, body: ByteBuffer?, deadline: NIODeadline) -> EventLoopFuture<
        Answer
    > {
        let promise = channel.eventLoop.makePromise(of: Answer.self)
        let exchange = UpstreamExchangeHandler.Exchange(head: head, body: body, promise: promise, deadline: deadline)
        // The handler takes the exchange and completes the write at once; a write that fails never
        // reached it (the connection was closed meanwhile).
        channel.writeAndFlush(exchange).whenFailure { error in
            promise.fail(ExchangeFailure.notSent(String(describing: error)))
        }
        return promise.futureResult
    }

    /// For a caller on an event loop: an idle connection to `target` on that loop, taken out of the
    /// pool; nil when none is idle there. Give it back with ``checkin(_:_:)`` if it is not used, or
    /// use it once with ``exchangeOnLoop(on:head:body:to:deadline:)``.
    func checkoutOnLoop(_ target: Target) -> (any Channel)? {
        guard MultiThreadedEventLoopGroup.currentEventLoop != nil else { return nil }
        return self.checkout(target, onLoop: true)
    }

    /// One request on a connection from ``checkoutOnLoop(_:)``, from its event loop (no task, no
    /// thread hop, no future), written and read as bytes by the connection's
    /// ``RawUpstreamExchange``; `completion` runs on that loop. The connection goes back to the
    /// pool after a kept-alive answer and is closed after any failure, as in
    /// ``send(_:to:timeout:)``; nothing is retried. `Host` and `Content-Length` are set here (any in
    /// `headers` are left out).
    func exchangeOnLoop(
        on channel: any Channel, method: HTTPMethod, pathAndQuery: String, headers: HTTPHeaders, body: ByteBuffer?, to target: Target,
        deadline: NIODeadline, completion: @escaping (Result<RawUpstreamExchange.Answer, ExchangeFailure>) -> Void
    ) {
        let finish: RawUpstreamExchange.Completion = { result in
            switch result {
            case .success(let answer):
                if answer.keepAlive {
                    self.checkin(channel, target)
                } else {
                    channel.close(promise: nil)
                }
            case .failure(let failure):
                channel.close(promise: nil)
                if failure.meansStale { self.dropIdle(target) }
            }
            completion(result)
        }
        // An answer to HEAD announces a body it does not carry: only the codec reads that.
        guard method != .HEAD, let raw = try? channel.pipeline.syncOperations.handler(type: RawUpstreamExchange.self),
            let request = Self.requestBytes(
                method: method, pathAndQuery: target.pathPrefix + pathAndQuery, authority: target.authority, headers: headers, body: body)
        else {
            finish(.failure(.notSent("the request cannot be written as it is")))
            return
        }
        raw.exchange(request, deadline: deadline, completion: finish)
    }

    /// A whole HTTP/1.1 request as bytes; nil when a header would break the message (a name that
    /// is not a token, a value with a control character), as NIO's header validation refuses.
    static func requestBytes(method: HTTPMethod, pathAndQuery: String, authority: String, headers: HTTPHeaders, body: ByteBuffer?) -> ByteBuffer? {
        func validName(_ name: String) -> Bool { !name.isEmpty && name.utf8.allSatisfy { RawRequestBytes.tchar[Int($0)] } }
        func validValue(_ value: String) -> Bool { value.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) } }
        var bytes = ByteBuffer()
        bytes.reserveCapacity(
            256 + pathAndQuery.utf8.count + (body?.readableBytes ?? 0) + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        bytes.writeString(method.rawValue)
        bytes.writeStaticString(" ")
        bytes.writeString(Self.requestTarget(pathAndQuery))
        bytes.writeStaticString(" HTTP/1.1\r\n")
        guard validValue(authority) else { return nil }
        bytes.writeHeader("Host", authority)
        for (name, value) in headers {
            // Host and Content-Length are this function's: a second one would make the message
            // ambiguous.
            if RawRequestBytes.named(name.utf8, "host") || RawRequestBytes.named(name.utf8, "content-length") { continue }
            guard validName(name), validValue(value) else { return nil }
            bytes.writeHeader(name, value)
        }
        if var body {
            bytes.writeHeader("Content-Length", String(body.readableBytes))
            bytes.writeStaticString("\r\n")
            bytes.writeBuffer(&body)
        } else {
            bytes.writeStaticString("\r\n")
        }
        return bytes
    }

    struct Answer: Sendable {
        var head: HTTPResponseHead
        var body: ByteBuffer
        var keepAlive: Bool
    }
}

extension PooledHTTP1Client.ExchangeFailure {
    /// The connection was dead before the request could get an answer (on a kept connection: the
    /// upstream had closed it).
    var meansStale: Bool {
        switch self {
        case .notSent, .closedBeforeAnswer: true
        default: false
        }
    }

    /// What callers of an ``UpstreamClient`` see: unreachable is `unavailable` (the breaker counts
    /// it), no answer in time is `timeout`, an oversized answer is the upstream's fault (502).
    var upstreamError: any Error {
        switch self {
        case .notSent(let reason): UpstreamFailure.unavailable(UpstreamFailure.notSentPrefix + reason)
        case .closedBeforeAnswer: UpstreamFailure.unavailable("connection closed before an answer")
        case .broken(let reason): UpstreamFailure.unavailable(reason)
        case .timedOut: UpstreamFailure.timeout
        case .tooLarge(let limit): ServiceError(.badGateway, message: "Upstream service sent an answer larger than \(limit) bytes")
        }
    }
}

/// One request at a time on one connection: writes it, collects the answer, completes the
/// exchange's promise; a deadline closes the connection.
final class UpstreamExchangeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    struct Exchange: Sendable {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var promise: EventLoopPromise<PooledHTTP1Client.Answer>
        var deadline: NIODeadline
    }

    let maxAnswerBytes: Int
    private var pending: EventLoopPromise<PooledHTTP1Client.Answer>?
    private var responseHead: HTTPResponseHead?
    private var body = ByteBuffer()
    private var answering = false
    private var timer: Scheduled<Void>?

    init(maxAnswerBytes: Int) {
        self.maxAnswerBytes = maxAnswerBytes
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = self.unwrapOutboundIn(data)
        promise?.succeed(())
        guard self.pending == nil else {
            exchange.promise.fail(PooledHTTP1Client.ExchangeFailure.notSent("the connection is busy"))
            return
        }
        self.pending = exchange.promise
        self.responseHead = nil
        self.body.clear()
        self.answering = false
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: exchange.deadline) {
            self.fail(.timedOut)
            context.close(promise: nil)
        }
        context.write(self.wrapOutboundOut(.head(exchange.head)), promise: nil)
        if let body = exchange.body, body.readableBytes > 0 {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.assumeIsolated().whenFailure { error in
            self.fail(.notSent(String(describing: error)))
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.pending != nil else {
            // Bytes nobody asked for on an idle connection: it cannot be trusted with the next call.
            context.close(promise: nil)
            return
        }
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.answering = true
            // 1xx heads are informational; the answer's own head follows.
            if head.status.code >= 200 { self.responseHead = head }
        case .body(var part):
            self.answering = true
            guard self.body.readableBytes + part.readableBytes <= self.maxAnswerBytes else {
                self.fail(.tooLarge(self.maxAnswerBytes))
                context.close(promise: nil)
                return
            }
            self.body.writeBuffer(&part)
        case .end:
            guard let head = self.responseHead, let promise = self.pending else { return }
            self.timer?.cancel()
            self.timer = nil
            self.pending = nil
            let body = self.body
            self.body = ByteBuffer()
            promise.succeed(PooledHTTP1Client.Answer(head: head, body: body, keepAlive: head.isKeepAlive))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(self.answering ? .broken("connection closed during the answer") : .closedBeforeAnswer)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset before any byte of the answer is the same keep-alive race as a close: an upstream
        // killed under a kept connection resets it when the request arrives.
        self.fail(self.answering ? .broken(String(describing: error)) : .closedBeforeAnswer)
        context.close(promise: nil)
    }

    private func fail(_ failure: PooledHTTP1Client.ExchangeFailure) {
        self.timer?.cancel()
        self.timer = nil
        guard let promise = self.pending else { return }
        self.pending = nil
        promise.fail(failure)
    }
}
