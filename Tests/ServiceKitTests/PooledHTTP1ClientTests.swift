import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import ServiceKit

/// The connections services call each other over: kept alive and reused, a stale one retried
/// only when that is safe, answers collected within a limit and a deadline, failures told apart
/// the way the breaker and the replicas need (never sent / unavailable / timeout).
@Suite("Pooled HTTP/1.1 client")
struct PooledHTTP1ClientTests {
    /// A POST whose kept connection the upstream drops: unavailable, and not marked "never sent"
    /// (so nobody sends it again).
    static func expectPostFailsAsSent(_ client: PooledHTTP1Client, _ target: PooledHTTP1Client.Target) async {
        let post = UpstreamRequest(method: .post, baseURL: "", pathAndQuery: "/echo", headers: [:], body: ByteBuffer(string: "once"))
        await #expect {
            _ = try await client.send(post, to: target, timeout: .seconds(20))
        } throws: { error in
            guard case UpstreamFailure.unavailable(let reason) = error else { return false }
            return !reason.hasPrefix(UpstreamFailure.notSentPrefix)
        }
    }

    @Test("base URLs: host, port, IPv6 literals and path prefixes; what it cannot reach is nil (AsyncHTTPClient takes it)")
    func parsing() {
        let local = PooledHTTP1Client.parse("http://127.0.0.1:8083")
        #expect(local == .init(host: "127.0.0.1", port: 8083, authority: "127.0.0.1:8083", pathPrefix: ""))
        #expect(PooledHTTP1Client.parse("http://identity") == .init(host: "identity", port: 80, authority: "identity", pathPrefix: ""))
        #expect(PooledHTTP1Client.parse("http://[::1]:9000/base/") == .init(host: "::1", port: 9000, authority: "[::1]:9000", pathPrefix: "/base"))
        for unusable in ["https://a:1", "http://", "http://u:p@h:1", "http://h:0", "http://h:70000", "http://h:x", "http://[::1", "http://h:1/?q", "ftp://h"] {
            #expect(PooledHTTP1Client.parse(unusable) == nil, "\(unusable)")
        }
    }

    @Test("request targets: printable ASCII kept as written; what an HTTP/1 parser refuses raw (non-ASCII, space, quotes) percent-encoded")
    func requestTargets() {
        #expect(PooledHTTP1Client.requestTarget("/internal/v1/tenants/t1/usage?x=%2F&y=1") == "/internal/v1/tenants/t1/usage?x=%2F&y=1")
        #expect(PooledHTTP1Client.requestTarget("/internal/v1/tenants/Ø x/quotas") == "/internal/v1/tenants/%C3%98%20x/quotas")
        #expect(PooledHTTP1Client.requestTarget("/a\"b<c>{d}|e^f`g\\h\u{7F}") == "/a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%60g%5Ch%7F")
    }

    @Test("one connection serves call after call; method, path, Host, headers and body arrive; chunked and HEAD answers are read right")
    func keepAlive() async throws {
        try await ScriptedUpstream.with { upstream in
            let client = PooledHTTP1Client(group: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(1))
            defer { client.shutdown() }
            let target = try #require(client.target(upstream.baseURL + "/base"))
            for index in 0..<5 {
                let response = try await client.send(
                    UpstreamRequest(
                        method: .post, baseURL: upstream.baseURL, pathAndQuery: "/echo?n=\(index)", headers: [.init("X-Test")!: "v\(index)"],
                        body: ByteBuffer(string: "body\(index)")),
                    to: target, timeout: .seconds(20))
                #expect(response.status == .ok)
                let text = String(buffer: try await response.collect(1024))
                #expect(text == "POST /base/echo?n=\(index) host=127.0.0.1:\(upstream.port) x-test=v\(index) body=body\(index)")
            }
            let chunked = try await client.send(UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/chunked", headers: [:], body: nil), to: target, timeout: .seconds(20))
            #expect(String(buffer: try await chunked.collect(1024)) == "part1part2")
            let head = try await client.send(UpstreamRequest(method: .head, baseURL: "", pathAndQuery: "/echo", headers: [:], body: nil), to: target, timeout: .seconds(20))
            #expect(head.status == .ok && head.headers[.contentLength] != nil)
            #expect(try await head.collect(1024).readableBytes == 0)
            let after = try await client.send(UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/echo", headers: [:], body: nil), to: target, timeout: .seconds(20))
            #expect(String(buffer: try await after.collect(1024)) == "GET /base/echo host=127.0.0.1:\(upstream.port) x-test= body=")
            // An identifier that is not ASCII arrives percent-encoded, on the same connection.
            let encoded = try await client.send(UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/t/Ø x/echo", headers: [:], body: nil), to: target, timeout: .seconds(20))
            #expect(String(buffer: try await encoded.collect(1024)) == "GET /base/t/%C3%98%20x/echo host=127.0.0.1:\(upstream.port) x-test= body=")
            #expect(upstream.connections == 1)
            // An answer saying `Connection: close` is not pooled: the next call opens a new connection.
            _ = try await client.send(UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/close", headers: [:], body: nil), to: target, timeout: .seconds(20))
            _ = try await client.send(UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/echo", headers: [:], body: nil), to: target, timeout: .seconds(20))
            #expect(upstream.connections == 2)
        }
    }

    @Test("a kept connection the upstream drops: a GET goes again on a new one, a POST fails as unavailable and is not repeated")
    func staleConnection() async throws {
        try await ScriptedUpstream.with { upstream in
            let client = PooledHTTP1Client(group: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(1))
            defer { client.shutdown() }
            let target = try #require(client.target(upstream.baseURL))
            let get = UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/echo", headers: [:], body: nil)
            _ = try await client.send(get, to: target, timeout: .seconds(20))
            upstream.dropNextRequest()
            let retried = try await client.send(get, to: target, timeout: .seconds(20))
            #expect(retried.status == .ok)
            #expect(upstream.connections == 2 && upstream.requests == 3)

            upstream.dropNextRequest()
            await Self.expectPostFailsAsSent(client, target)
            #expect(upstream.requests == 4, "the POST reached the upstream once")
        }
    }

    @Test("an upstream restarted under kept connections: the first dead one found drops the others; the call goes again on a new one")
    func restartedUpstream() async throws {
        try await ScriptedUpstream.with { upstream in
            let client = PooledHTTP1Client(group: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(1))
            defer { client.shutdown() }
            let target = try #require(client.target(upstream.baseURL))
            // Three calls at once: three kept connections.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        _ = try await client.send(
                            UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/pause", headers: [:], body: nil), to: target, timeout: .seconds(20))
                    }
                }
                try await group.waitForAll()
            }
            #expect(upstream.connections == 3)
            upstream.makeOpenConnectionsStale()
            let get = UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/echo", headers: [:], body: nil)
            for _ in 0..<3 {
                #expect(try await client.send(get, to: target, timeout: .seconds(20)).status == .ok)
            }
            // One dead connection was tried; the other two were closed unused; one new one serves on.
            #expect(upstream.dropped == 1)
            #expect(upstream.connections == 4)

            // A reset (RST) before any byte of the answer, as a killed upstream's socket answers: a
            // GET goes again on a new connection; a POST is not repeated.
            upstream.dropByReset()
            upstream.makeOpenConnectionsStale()
            #expect(try await client.send(get, to: target, timeout: .seconds(20)).status == .ok)
            #expect(upstream.dropped == 2 && upstream.connections == 5)
            upstream.makeOpenConnectionsStale()
            await Self.expectPostFailsAsSent(client, target)
            #expect(upstream.dropped == 3, "the POST reached the upstream once")
        }
    }

    @Test("no answer by the deadline is a timeout and the connection is not reused; an answer over the limit is a 502, not a breaker failure")
    func deadlinesAndLimits() async throws {
        try await ScriptedUpstream.with { upstream in
            let client = PooledHTTP1Client(group: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(1), maxAnswerBytes: 1000)
            defer { client.shutdown() }
            let target = try #require(client.target(upstream.baseURL))
            // The slow answer comes 10 s late; the 100 ms deadline ends the call long before. (The
            // bound is loose on purpose: a loaded machine may run this task late, never 10 s late.)
            let started = ContinuousClock.now
            await #expect {
                _ = try await client.send(UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/slow", headers: [:], body: nil), to: target, timeout: .milliseconds(100))
            } throws: { error in
                guard case UpstreamFailure.timeout = error else { return false }
                return true
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .milliseconds(100) && elapsed < .seconds(8), "the deadline, not the slow answer, ended the call")
            let next = try await client.send(UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/echo", headers: [:], body: nil), to: target, timeout: .seconds(20))
            #expect(next.status == .ok)
            #expect(upstream.connections == 2)
            do {
                _ = try await client.send(UpstreamRequest(method: .get, baseURL: "", pathAndQuery: "/big", headers: [:], body: nil), to: target, timeout: .seconds(20))
                Issue.record("an answer over the limit was accepted")
            } catch let error as ServiceError {
                #expect(error.status == .badGateway)
            }
        }
    }

    @Test("nothing listening: unavailable, marked as never sent (safe to send elsewhere)")
    func refused() async throws {
        let port = try await ScriptedUpstream.with { $0.port }  // closed by now
        let client = PooledHTTP1Client(group: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(1))
        defer { client.shutdown() }
        let target = try #require(client.target("http://127.0.0.1:\(port)"))
        await #expect {
            _ = try await client.send(UpstreamRequest(method: .post, baseURL: "", pathAndQuery: "/echo", headers: [:], body: nil), to: target, timeout: .seconds(20))
        } throws: { error in
            guard case UpstreamFailure.unavailable(let reason) = error else { return false }
            return reason.hasPrefix(UpstreamFailure.notSentPrefix)
        }
    }
}

/// A loopback HTTP/1.1 server answering by path, counting connections and requests, and able to
/// drop the next request unanswered (as an upstream closing an idle keep-alive connection does).
final class ScriptedUpstream: Sendable {
    struct State {
        var connections = 0
        var requests = 0
        var dropNext = false
        /// Connections numbered below this are stale: a request on one is dropped unanswered.
        var staleBelow = 0
        var dropped = 0
        /// Drop by resetting the connection (RST), as a killed process's socket answers.
        var reset = false
    }

    let state = NIOLockedValueBox(State())
    let port: Int
    var baseURL: String { "http://127.0.0.1:\(self.port)" }
    var connections: Int { self.state.withLockedValue(\.connections) }
    var requests: Int { self.state.withLockedValue(\.requests) }
    func dropNextRequest() { self.state.withLockedValue { $0.dropNext = true } }
    /// Every connection open now drops its next request, as after a restart the client has not
    /// noticed yet (its connections still look open).
    func makeOpenConnectionsStale() { self.state.withLockedValue { $0.staleBelow = $0.connections } }
    var dropped: Int { self.state.withLockedValue(\.dropped) }
    func dropByReset() { self.state.withLockedValue { $0.reset = true } }

    private init(port: Int) {
        self.port = port
    }

    static func with<T: Sendable>(_ body: (ScriptedUpstream) async throws -> T) async throws -> T {
        let box = NIOLockedValueBox<ScriptedUpstream?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ScriptedHandler(upstream: box.withLockedValue { $0! }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let upstream = ScriptedUpstream(port: channel.localAddress!.port!)
        box.withLockedValue { $0 = upstream }
        do {
            let result = try await body(upstream)
            try await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }
}

final class ScriptedHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let upstream: ScriptedUpstream
    var head: HTTPRequestHead?
    var body = ByteBuffer()
    var number = 0

    init(upstream: ScriptedUpstream) {
        self.upstream = upstream
    }

    func channelActive(context: ChannelHandlerContext) {
        self.number = self.upstream.state.withLockedValue { state in
            defer { state.connections += 1 }
            return state.connections
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body.clear()
        case .body(var part):
            self.body.writeBuffer(&part)
        case .end:
            guard let head = self.head else { return }
            let number = self.number
            let drop = self.upstream.state.withLockedValue { state -> Bool in
                state.requests += 1
                defer { state.dropNext = false }
                let drop = state.dropNext || number < state.staleBelow
                if drop { state.dropped += 1 }
                return drop
            }
            if drop {
                if self.upstream.state.withLockedValue(\.reset), let provider = context.channel as? SocketOptionProvider {
                    provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                } else {
                    context.close(promise: nil)
                }
                return
            }
            self.answer(head, context: context)
        }
    }

    func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        switch path.split(separator: "/").last.map(String.init) ?? "" {
        case "chunked":
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok))), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "part1")))), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "part2")))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        case "big":
            self.write(String(repeating: "x", count: 5000), head: head, context: context)
        case "pause":
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(200)) {
                self.write("paused", head: head, context: context)
            }
        case "slow":
            context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) {
                self.write("slow", head: head, context: context)
            }
        case "close":
            self.write("bye", head: head, context: context, close: true)
        default:
            let text =
                "\(head.method.rawValue) \(head.uri) host=\(head.headers["host"].joined()) x-test=\(head.headers["x-test"].joined()) body=\(String(buffer: self.body))"
            self.write(text, head: head, context: context)
        }
    }

    func write(_ text: String, head: HTTPRequestHead, context: ChannelHandlerContext, close: Bool = false) {
        var response = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "\(text.utf8.count)"])
        if close { response.headers.add(name: "Connection", value: "close") }
        context.write(self.wrapOutboundOut(.head(response)), promise: nil)
        if head.method != .HEAD {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        }
        if close {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
