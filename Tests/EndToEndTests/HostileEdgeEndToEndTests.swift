import AsyncHTTPClient
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Plain sockets held open by a test (connections that never finish their request).
enum HeldSockets {
    static func open(port: Int, sending text: String) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw HarnessError("connect failed")
        }
        if !text.isEmpty { _ = text.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, text.utf8.count, 0) } }
        return fd
    }

    /// Whether the server has closed `fd` by now (a read sees the end of stream or a reset), without
    /// waiting.
    static func closedByServer(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }
}

extension RealExecutables {
    /// Raw-socket HTTP/1 an attacker sends the gateway (issue 21's probe, kept as the repo's own):
    /// broken chunked bodies, missing or repeated `Host`, requests pipelined behind an answer that
    /// closes. Each is a 4xx in the NestJS body, never a 5xx, and nothing is read after a close.
    @Suite("Hostile HTTP/1 at the edge", .serialized)
    struct HostileEdgeEndToEndTests {
        static let metricsToken = "metrics-token-for-e2e-0123456789"

        func serverErrors(_ client: HTTPClient, _ stack: Stack) async throws -> [String] {
            let metrics = try await client.call(stack.gatewayURL + "/metrics", headers: [("Authorization", "Bearer \(Self.metricsToken)")])
            return metrics.body.split(separator: "\n").filter { $0.hasPrefix("streamhub_http_requests_total{") && $0.contains(#"status="5"#) }
                .map(String.init)
        }

        @Test("broken chunked bodies and bodies cut short are 400 (Connection: close), never a 5xx in the metrics")
        func brokenChunkedBodies() async throws {
            try await Stack.with(extra: ["METRICS_TOKEN": Self.metricsToken]) { stack, client in
                let port = stack.ports["gateway"]!
                let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: edge.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                let bodies = [
                    "overflowing size": "ffffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
                    "invalid size": "zz\r\n{}\r\n0\r\n\r\n",
                    "space-led size": " 2\r\n{}\r\n0\r\n\r\n",
                    "bare LF in a chunk extension": "2;ext=1\n{}\r\n0\r\n\r\n",
                ]
                for (name, body) in bodies.sorted(by: { $0.key < $1.key }) {
                    let (responses, closed) = try await RawHTTP.exchange(port: port, [head, body])
                    #expect(responses.count == 1, "\(name): \(responses.map(\.status))")
                    #expect(responses.first?.status == 400, "\(name): \(responses.first?.body ?? "no answer")")
                    #expect(closed, "\(name)")
                }
                // Cut short: the client hangs up mid-body (chunked and with a length).
                try RawHTTP.sendAndHangUp(port: port, head + "10\r\n{\"a\":")
                try RawHTTP.sendAndHangUp(
                    port: port, "POST /api/v1/auth/login HTTP/1.1\r\nHost: edge.test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
                try await Task.sleep(for: .milliseconds(500))
                #expect(try await self.serverErrors(client, stack) == [])
                #expect(try await client.call(stack.gatewayURL + "/api/v1/health").status == 200)
            }
        }

        @Test("HEAD on an API GET route is that GET without its body: status, headers and Content-Length; refusals too")
        func headOnAPIRoutes() async throws {
            try await Stack.with { stack, client in
                let token = try await stack.seedToken(name: "head").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let auth = ("Authorization", "Bearer \(token)")
                for (path, headers) in [("/api/v1/health", [(String, String)]()), ("/api/v1/apps", [auth]), ("/api/v1/auth/me", [auth])] {
                    let get = try await client.call(stack.gatewayURL + path, headers: headers)
                    let head = try await client.call(stack.gatewayURL + path, method: "HEAD", headers: headers)
                    #expect(head.status == get.status, "\(path)")
                    #expect(head.body.isEmpty, "\(path)")
                    #expect(head.header("content-length") == String(get.body.utf8.count), "\(path)")
                    #expect(head.header("content-type") == get.header("content-type"), "\(path)")
                }
                let refused = try await client.call(stack.gatewayURL + "/api/v1/apps", method: "HEAD")
                #expect(refused.status == 401 && refused.body.isEmpty)
                // Not a GET route: HEAD stays a 404 (POST-only) or 405 as the GET would be.
                #expect(try await client.call(stack.gatewayURL + "/api/v1/auth/login", method: "HEAD").status == 405)
                // The connection is still in step: raw HEAD then GET pipelined on one socket.
                let port = stack.ports["gateway"]!
                let raw = try await RawHTTP.exchange(
                    port: port, "HEAD /api/v1/health HTTP/1.1\r\nHost: a.test\r\n\r\nGET /api/v1/health HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
                    headAnswers: [0])
                #expect(raw.responses.map(\.status) == [200, 200])
                #expect(raw.responses.first?.body == "")
                #expect(raw.responses.last?.body.contains(#""status":"ok""#) == true)
            }
        }

        @Test("an HTTP/1.1 request without Host, or with two, is a 400 (RFC 9112 §3.2); with one it is served")
        func hostHeader() async throws {
            try await Stack.with { stack, _ in
                let port = stack.ports["gateway"]!
                let missing = try await RawHTTP.exchange(port: port, "GET /api/v1/health HTTP/1.1\r\n\r\n")
                #expect(missing.responses.first?.status == 400)
                #expect(missing.responses.first?.body.contains("exactly one Host header") == true)
                let twice = try await RawHTTP.exchange(port: port, "GET /api/v1/health HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n")
                #expect(twice.responses.first?.status == 400)
                #expect(twice.closed)
                // An authenticated read the event-loop lane would take is refused the same way.
                let token = try await stack.seedToken(name: "edge").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let warm = try await RawHTTP.exchange(
                    port: port, "GET /api/v1/apps HTTP/1.1\r\nHost: a.test\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n")
                #expect(warm.responses.first?.status == 200)
                let laneTwice = try await RawHTTP.exchange(
                    port: port, "GET /api/v1/apps HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nAuthorization: Bearer \(token)\r\n\r\n")
                #expect(laneTwice.responses.first?.status == 400)
                let one = try await RawHTTP.exchange(port: port, "GET /api/v1/health HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                #expect(one.responses.first?.status == 200)
            }
        }

        @Test("connections holding an unfinished request head are closed after GATEWAY_IDLE_TIMEOUT_S; past GATEWAY_MAX_CONNECTIONS new ones are closed at once; the gateway serves on")
        func connectionBounds() async throws {
            try await Stack.with(extra: ["GATEWAY_IDLE_TIMEOUT_S": "2", "GATEWAY_MAX_CONNECTIONS": "40"]) { stack, client in
                let port = stack.ports["gateway"]!
                // 30 slow clients: a head that never ends.
                let held = try (0..<30).map { _ in try HeldSockets.open(port: port, sending: "GET /api/v1/health HTTP/1.1\r\nHost: a.test\r\nX-Slow: ") }
                defer { held.forEach { close($0) } }
                #expect(try await client.call(stack.gatewayURL + "/api/v1/health").status == 200)
                #expect(held.filter(HeldSockets.closedByServer).isEmpty, "closed before the timeout")
                // Closed between one and one and a half timeouts after the last byte.
                try await Task.sleep(for: .milliseconds(3800))
                #expect(held.filter(HeldSockets.closedByServer).count == 30)

                // 60 connections that send nothing: at most 40 are kept; the rest are closed at once.
                let crowd = try (0..<60).map { _ in try HeldSockets.open(port: port, sending: "") }
                defer { crowd.forEach { close($0) } }
                try await Task.sleep(for: .milliseconds(500))
                let refused = crowd.filter(HeldSockets.closedByServer).count
                // 40 kept (one place may still be held by the test's own client connection).
                #expect((20...21).contains(refused), "\(refused) of 60 closed at once")
                crowd.forEach { shutdown($0, Int32(SHUT_RDWR)) }
                try await Stack.waitFor(deadline: .seconds(5), "the gateway to serve again") {
                    (try? await client.call(stack.gatewayURL + "/api/v1/health").status) == 200
                }
                #expect(stack.processes["gateway"]?.isRunning == true)
            }
        }

        @Test("a head trickled in byte by byte is closed GATEWAY_HEADER_TIMEOUT_S after its first byte; a keep-alive wait between requests is not head time")
        func trickledHead() async throws {
            try await Stack.with(extra: ["GATEWAY_HEADER_TIMEOUT_S": "2", "GATEWAY_IDLE_TIMEOUT_S": "30"]) { stack, client in
                let port = stack.ports["gateway"]!
                let trickle = try HeldSockets.open(port: port, sending: "GET /api/v1/health HTTP/1.1\r\nHost: a.test\r\nX-Slow: ")
                defer { close(trickle) }
                let kept = try HeldSockets.open(port: port, sending: "GET /api/v1/health HTTP/1.1\r\nHost: a.test\r\n\r\n")
                defer { close(kept) }
                let started = ContinuousClock.now
                var closedAfter: Duration?
                while ContinuousClock.now - started < .seconds(6) {
                    try await Task.sleep(for: .milliseconds(250))
                    // A byte every 250 ms: never idle, never a complete head.
                    _ = "x".utf8CString.withUnsafeBufferPointer { send(trickle, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }
                    if HeldSockets.closedByServer(trickle) {
                        closedAfter = ContinuousClock.now - started
                        break
                    }
                }
                let after = try #require(closedAfter, "a trickled head was still open after 6 s")
                // Ticks every second: closed 2 to 3 s after the first byte (a loaded machine gets slack).
                #expect(after >= .milliseconds(1900) && after < .milliseconds(4500), "closed after \(after)")
                // The other connection answered its request and waited as long, idle: still open, and served.
                #expect(!HeldSockets.closedByServer(kept))
                _ = "GET /api/v1/health HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n".utf8CString.withUnsafeBufferPointer {
                    send(kept, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL))
                }
                var answer = ""
                try await Stack.waitFor(deadline: .seconds(5), "the second answer on the kept connection") {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let count = buffer.withUnsafeMutableBytes { recv(kept, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if count > 0 { answer += String(decoding: buffer[0..<count], as: UTF8.self) }
                    return answer.contains("HTTP/1.1 200")
                }
                #expect(try await client.call(stack.gatewayURL + "/api/v1/health").status == 200)
            }
        }

        @Test("after an answer that says Connection: close (a 413), nothing more is read or answered")
        func nothingAfterClose() async throws {
            try await Stack.with(extra: ["GATEWAY_MAX_BODY_BYTES": "1024"]) { stack, _ in
                let port = stack.ports["gateway"]!
                let big = String(repeating: "x", count: 2048)
                let oversized = "POST /api/v1/auth/login HTTP/1.1\r\nHost: edge.test\r\nContent-Type: application/json\r\nContent-Length: 2048\r\n\r\n\(big)"
                let next = "GET /api/v1/health HTTP/1.1\r\nHost: edge.test\r\n\r\n"
                let (responses, closed) = try await RawHTTP.exchange(port: port, [oversized + next])
                #expect(responses.map(\.status) == [413])
                #expect(responses.first?.headers["connection"] == "close")
                #expect(closed)
            }
        }
    }
}
