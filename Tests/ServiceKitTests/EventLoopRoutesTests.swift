import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOEmbedded
import Shared
import TestSupport
import Testing

@testable import ServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// Routes answered on the event loop must behave like the same routes behind Hummingbird's
/// router: same status codes and bodies, request ids, metrics, and responses in request order on
/// a pipelined connection even when Hummingbird is still answering an earlier request.
@Suite("Event-loop routes")
struct EventLoopRoutesTests {
    static let token = String(repeating: "k", count: 40)
    struct Failure: Error {}

    func makeApp(metrics: ServiceMetrics) -> some ApplicationProtocol {
        let router = Router(context: ServiceRequestContext.self)
        router.addServiceMiddleware(metrics: metrics)
        let internalRoutes = router.group("/internal").add(middleware: InternalTokenMiddleware(token: Self.token))
        internalRoutes.post("slow") { request, _ -> String in
            var request = request
            let body = try await request.collectBody(upTo: 1024)
            try await Task.sleep(for: .milliseconds(150))
            return "slow:" + String(buffer: body)
        }
        let routes = EventLoopRoutes(
            routes: [
                EventLoopRoute(path: "/internal/echo", bodyLimit: 64) { request in
                    ByteBuffer(string: #"{"echo":""# + String(buffer: request.body) + #""}"#)
                },
                EventLoopRoute(path: "/internal/reject", bodyLimit: 64) { _ in throw ServiceError.badRequest("subject is required") },
                EventLoopRoute(path: "/internal/crash", bodyLimit: 64) { _ in throw Failure() },
            ],
            internalToken: Self.token, metrics: metrics, serverName: "streamhub-test", logger: Logger(label: "test"))
        routes.addRoutes(to: router)
        return Application(
            router: router, server: routes.server, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "streamhub-test"))
    }

    func exchange(port: Int, _ text: String) async throws -> (responses: [RawHTTP.Response], closed: Bool) {
        try await RawHTTP.exchange(port: port, text)
    }

    func request(_ path: String, body: String, token: String? = Self.token, extra: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n"
            + (token.map { "X-StreamHub-Internal-Token: \($0)\r\n" } ?? "") + extra + "\r\n" + body
    }

    @Test("pipelined requests are answered in order, across Hummingbird's routes and the event loop's")
    func pipelinedOrder() async throws {
        let app = self.makeApp(metrics: ServiceMetrics(service: "test"))
        try await app.test(.live) { (client: any TestClientProtocol) async throws in
            let port = try #require(client.port)
            let text =
                self.request("/internal/slow", body: "a") + self.request("/internal/echo", body: "b")
                + "POST /internal/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-StreamHub-Internal-Token: \(Self.token)\r\n\r\n"
                + "2\r\nc1\r\n2\r\nc2\r\n0\r\n\r\n"
                + self.request("/internal/slow", body: "d") + self.request("/internal/echo?x=1", body: "e", extra: "Connection: close\r\n")
            let (responses, closed) = try await self.exchange(port: port, text)
            #expect(responses.map(\.status) == [200, 200, 200, 200, 200])
            #expect(responses.map(\.body) == ["slow:a", #"{"echo":"b"}"#, #"{"echo":"c1c2"}"#, "slow:d", #"{"echo":"e"}"#])
            #expect(responses[1].headers["content-type"] == "application/json; charset=utf-8")
            #expect(responses[1].headers["server"] == "streamhub-test")
            #expect(responses[1].headers["date"]?.hasSuffix(" GMT") == true)
            // The last request waited behind a router request, so the router answered and closed.
            #expect(closed)
        }
    }

    @Test("errors are NestJS bodies; a connection goes on after a 4xx")
    func errors() async throws {
        let metrics = ServiceMetrics(service: "test")
        let app = self.makeApp(metrics: metrics)
        try await app.test(.live) { (client: any TestClientProtocol) async throws in
            let port = try #require(client.port)
            let text =
                self.request("/internal/echo", body: "x", token: nil) + self.request("/internal/echo", body: "x", token: Self.token + "x")
                + self.request("/internal/reject", body: "") + self.request("/internal/crash", body: "")
                + self.request("/internal/echo", body: String(repeating: "z", count: 65))
                + self.request("/internal/echo", body: "ok", extra: "Connection: close\r\n")
            let (responses, closed) = try await self.exchange(port: port, text)
            #expect(responses.map(\.status) == [401, 401, 400, 500, 413, 200])
            #expect(responses[0].body == #"{"statusCode":401,"message":"Missing or invalid internal token","error":"Unauthorized"}"#)
            #expect(responses[2].body == #"{"statusCode":400,"message":"subject is required","error":"Bad Request"}"#)
            #expect(responses[3].body == #"{"statusCode":500,"message":"Internal server error","error":"Internal Server Error"}"#)
            #expect(responses[4].body == #"{"statusCode":413,"message":"Request body is larger than 64 bytes","error":"Payload Too Large"}"#)
            #expect(responses[5].body == #"{"echo":"ok"}"#)
            #expect(closed)
            let exposition = String(buffer: metrics.render())
            for status in [200, 400, 401, 413, 500] {
                #expect(exposition.contains(#"method="POST",status="\#(status)""#) || exposition.contains(#"status="\#(status)""#))
            }
        }
    }

    @Test("a sane request id is echoed, anything else replaced; HTTP/1.0 without keep-alive is closed")
    func requestIDs() async throws {
        let app = self.makeApp(metrics: ServiceMetrics(service: "test"))
        try await app.test(.live) { (client: any TestClientProtocol) async throws in
            let port = try #require(client.port)
            let kept = try await client.execute(
                uri: "/internal/echo", method: .post, headers: [.streamHubInternalToken: Self.token, .requestID: "req-42.a:b"],
                body: ByteBuffer(string: "q"))
            #expect(kept.status == .ok)
            #expect(kept.headers[.requestID] == "req-42.a:b")
            #expect(String(buffer: kept.body) == #"{"echo":"q"}"#)
            let replaced = try await client.execute(
                uri: "/internal/echo", method: .post, headers: [.streamHubInternalToken: Self.token, .requestID: "bad id\u{7F}"],
                body: ByteBuffer(string: "q"))
            let fresh = try #require(replaced.headers[.requestID])
            // Hummingbird's ids: a random prefix (not zero-padded) and a 16-digit counter, in hex.
            #expect((17...32).contains(fresh.count) && fresh.allSatisfy(\.isHexDigit))
            let old = "POST /internal/echo HTTP/1.0\r\nContent-Length: 1\r\nX-StreamHub-Internal-Token: \(Self.token)\r\n\r\nq"
            let (responses, closed) = try await self.exchange(port: port, old)
            #expect(responses.map(\.status) == [200])
            #expect(responses.first?.headers["connection"] == "close")
            #expect(closed)
        }
    }

    @Test("Date headers are IMF-fixdate (RFC 9110's example)")
    func dates() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
    }

    /// Counts the read requests that reach the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Never
        var reads = 0
        func read(context: ChannelHandlerContext) {
            self.reads += 1
            context.read()
        }
    }

    @Test("a connection whose answers are not read stops being read until it drains")
    func backPressure() throws {
        let counter = ReadCounter()
        let routes = EventLoopRoutes(
            routes: [], internalToken: Self.token, metrics: ServiceMetrics(service: "test"), serverName: "t", logger: Logger(label: "test"))
        let channel = EmbeddedChannel(handlers: [counter, EventLoopRouteHandler(routes: routes)])
        channel.read()
        #expect(counter.reads == 1)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        channel.read()
        #expect(counter.reads == 1)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == 2)
        channel.read()
        #expect(counter.reads == 3)
        _ = try channel.finish()
    }
}
