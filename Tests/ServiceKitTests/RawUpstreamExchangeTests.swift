import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import ServiceKit

/// The event-loop lane's calls upstream: written and read as bytes on a pooled connection, in
/// front of its HTTP/1 codec. What it reads must be exactly an answer; what it cannot read fails
/// the call (the caller takes the codec's path) and never leaves the connection half-read.
@Suite("Raw upstream exchange")
struct RawUpstreamExchangeTests {
    static let answer =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id:  r1 \r\ncontent-length: 11\r\nCache-Control: no-store\r\n\r\n{\"data\":[]}"

    static func parse(_ text: String, maxBody: Int = 1 << 20) -> RawUpstreamExchange.Parsed {
        RawUpstreamExchange.parse(ByteBuffer(string: text), maxBody: maxBody)
    }

    @Test("an answer is read only once whole: status, headers in any case, body, its length; every shorter prefix waits")
    func whole() throws {
        let text = Self.answer + "HTTP/1.1 200 OK"  // the start of a next answer nobody asked for
        let length = Self.answer.utf8.count
        for cut in 0..<length {
            guard case .incomplete = Self.parse(String(decoding: Array(Self.answer.utf8.prefix(cut)), as: UTF8.self)) else {
                Issue.record("a prefix of \(cut) bytes is not incomplete")
                return
            }
        }
        guard case .answer(let answer, let parsedLength) = Self.parse(text) else {
            Issue.record("not read")
            return
        }
        #expect(parsedLength == length)
        #expect(answer.status == 200 && String(buffer: answer.body) == #"{"data":[]}"# && answer.keepAlive)
        #expect(answer.header("cache-control") == "no-store" && answer.header("X-REQUEST-ID") == "r1" && answer.header("vary") == nil)
        #expect(
            answer.headers.map { "\($0.name)=\($0.value)" } == [
                "Content-Type=application/json", "X-Request-Id=r1", "content-length=11", "Cache-Control=no-store",
            ])
    }

    @Test("Connection: close ends the connection; 204 and 304 have no body")
    func framing() throws {
        guard case .answer(let closing, _) = Self.parse("HTTP/1.1 404 Not Found\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n{}")
        else {
            Issue.record("not read")
            return
        }
        #expect(closing.status == 404 && !closing.keepAlive)
        let noContent = "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"
        guard case .answer(let empty, let length) = Self.parse(noContent + "HTTP/1.1") else {
            Issue.record("204 not read")
            return
        }
        #expect(empty.status == 204 && empty.body.readableBytes == 0 && length == noContent.utf8.count)
    }

    @Test(
        "what this reader does not take is unreadable, never guessed at",
        arguments: [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",  // chunked: the codec reads it
            "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody until close",  // no length
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",  // repeated length
            "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n{}",  // over the limit (1000 here)
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",  // informational
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            "HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",  // bare LF
            "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\nX: a\u{0}b\r\nContent-Length: 2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\n folded: 1\r\nContent-Length: 2\r\n\r\n{}",
            "SSH-2.0-OpenSSH\r\n",
        ])
    func unreadable(text: String) {
        guard case .unreadable = Self.parse(text, maxBody: 1000) else {
            Issue.record("read: \(text.debugDescription)")
            return
        }
    }

    @Test("a head that never ends is refused once it passes the limit")
    func endlessHead() {
        let head = "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: RawUpstreamExchange.maxHead + 1)
        guard case .unreadable = Self.parse(head) else {
            Issue.record("an endless head is still waited on")
            return
        }
    }

    struct NoIdleConnection: Error {}

    /// An exchange on the idle pooled connection to `target`, from its event loop.
    static func onLoop(
        _ client: PooledHTTP1Client, _ target: PooledHTTP1Client.Target, method: HTTPMethod = .GET, _ pathAndQuery: String,
        headers: HTTPHeaders = [:], body: ByteBuffer? = nil, timeout: TimeAmount = .seconds(20)
    ) async throws -> RawUpstreamExchange.Answer {
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            let exchange = try await loop.submit { () -> EventLoopFuture<RawUpstreamExchange.Answer>? in
                guard let channel = client.checkoutOnLoop(target) else { return nil }
                let promise = loop.makePromise(of: RawUpstreamExchange.Answer.self)
                client.exchangeOnLoop(
                    on: channel, method: method, pathAndQuery: pathAndQuery, headers: headers, body: body, to: target, deadline: .now() + timeout
                ) { promise.completeWith($0.mapError { $0 as any Error }) }
                return promise.futureResult
            }.get()
            if let exchange { return try await exchange.get() }
        }
        throw NoIdleConnection()
    }

    @Test("on one kept connection, calls as bytes and calls through the codec take turns: each gets its own answer")
    func takingTurns() async throws {
        try await ScriptedUpstream.with { upstream in
            let client = PooledHTTP1Client(group: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(1))
            defer { client.shutdown() }
            let target = try #require(client.target(upstream.baseURL + "/base"))
            let get = UpstreamRequest(
                method: .get, baseURL: upstream.baseURL, pathAndQuery: "/echo?via=codec", headers: [.init("X-Test")!: "c"], body: nil)
            for round in 0..<3 {
                let codec = try await client.send(get, to: target, timeout: .seconds(20))
                #expect(String(buffer: try await codec.collect(1024)) == "GET /base/echo?via=codec host=127.0.0.1:\(upstream.port) x-test=c body=")
                // A Host or Content-Length given is left out: the target's and the body's are sent.
                let raw = try await Self.onLoop(
                    client, target, "/echo?via=raw&n=\(round)", headers: ["X-Test": "r\(round)", "host": "elsewhere", "Content-Length": "9"])
                #expect(raw.status == 200 && raw.keepAlive)
                #expect(String(buffer: raw.body) == "GET /base/echo?via=raw&n=\(round) host=127.0.0.1:\(upstream.port) x-test=r\(round) body=")
                let post = try await Self.onLoop(client, target, method: .POST, "/echo", body: ByteBuffer(string: #"{"a":1}"#))
                #expect(String(buffer: post.body) == #"POST /base/echo host=127.0.0.1:\#(upstream.port) x-test= body={"a":1}"#)
            }
            #expect(upstream.connections == 1 && upstream.requests == 9)
        }
    }

    @Test("an answer it does not read (chunked), a deadline, a header that would break the request: the call fails, the connection is not reused")
    func failures() async throws {
        try await ScriptedUpstream.with { upstream in
            let client = PooledHTTP1Client(group: MultiThreadedEventLoopGroup.singleton, connectTimeout: .seconds(1))
            defer { client.shutdown() }
            let target = try #require(client.target(upstream.baseURL))
            let warm = UpstreamRequest(method: .get, baseURL: upstream.baseURL, pathAndQuery: "/echo", headers: [:], body: nil)
            _ = try await client.send(warm, to: target, timeout: .seconds(20))

            await #expect {
                _ = try await Self.onLoop(client, target, "/chunked")
            } throws: { error in
                guard case PooledHTTP1Client.ExchangeFailure.broken = error else { return false }
                return true
            }
            // That connection is gone; the codec's path opens another and reads the chunked answer.
            let chunked = try await client.send(
                UpstreamRequest(method: .get, baseURL: upstream.baseURL, pathAndQuery: "/chunked", headers: [:], body: nil), to: target,
                timeout: .seconds(20))
            #expect(String(buffer: try await chunked.collect(1024)) == "part1part2")
            #expect(upstream.connections == 2)

            await #expect {
                _ = try await Self.onLoop(client, target, "/slow", timeout: .milliseconds(100))
            } throws: { error in
                guard case PooledHTTP1Client.ExchangeFailure.timedOut = error else { return false }
                return true
            }
            _ = try await client.send(warm, to: target, timeout: .seconds(20))
            let before = upstream.requests
            await #expect {
                _ = try await Self.onLoop(client, target, "/echo", headers: ["X-Test": "a\r\nX-Injected: 1"])
            } throws: { error in
                guard case PooledHTTP1Client.ExchangeFailure.notSent = error else { return false }
                return true
            }
            #expect(upstream.requests == before)
            _ = try await client.send(warm, to: target, timeout: .seconds(20))
            await #expect {
                _ = try await Self.onLoop(client, target, method: .HEAD, "/echo")
            } throws: { error in
                guard case PooledHTTP1Client.ExchangeFailure.notSent = error else { return false }
                return true
            }
            #expect(upstream.requests == before + 1)
            // Nothing half-read stays in the pool: the next calls are answered.
            _ = try await client.send(warm, to: target, timeout: .seconds(20))
            let after = try await Self.onLoop(client, target, "/echo", headers: ["X-Test": "ok"])
            #expect(String(buffer: after.body).hasSuffix("x-test=ok body="))
        }
    }
}
