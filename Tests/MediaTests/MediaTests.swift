import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import MediaApp
import ServiceKit
import ServiceStorage
import Shared
import TestSupport
import Testing

@Suite("App repository")
struct AppRepositoryTests {
    static let backends = ["memory"] + TestDatabases.backends

    func withRepository(_ backend: String, _ body: @escaping @Sendable (any AppRepository) async throws -> Void) async throws {
        if backend == "memory" {
            try await body(InMemoryAppRepository())
            return
        }
        let location = try await TestDatabases.freshLocation(backend, name: "media")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await MediaMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            try await body(SQLAppRepository(database: database))
        }
    }

    @Test("apps are listed by visibility, in creation order", arguments: backends)
    func visibility(backend: String) async throws {
        try await self.withRepository(backend) { repository in
            #expect(try await repository.list(.all, page: nil).isEmpty)
            try await repository.insert(AppRecord(id: "a1", tenantId: "t1", name: "One", publicPlayback: true, createdAt: 1))
            try await repository.insert(AppRecord(id: "a2", tenantId: "t2", name: "Two", publicPlayback: false, createdAt: 2))
            try await repository.insert(AppRecord(id: "a3", tenantId: "t1", name: "Three", publicPlayback: true, createdAt: 3))
            #expect(try await repository.list(.all, page: nil).map(\.id) == ["a1", "a2", "a3"])
            #expect(try await repository.list(.tenant("t1"), page: nil).map(\.id) == ["a1", "a3"])
            #expect(try await repository.list(.app("a2"), page: nil).map(\.publicPlayback) == [false])
            #expect(try await repository.list(.nothing, page: nil).isEmpty)
            // Pages: `after` is the last id seen, in creation order, within the visibility.
            #expect(try await repository.list(.all, page: ListPage(limit: 2)).map(\.id) == ["a1", "a2"])
            #expect(try await repository.list(.all, page: ListPage(limit: 2, after: "a2")).map(\.id) == ["a3"])
            #expect(try await repository.list(.tenant("t1"), page: ListPage(limit: 1, after: "a1")).map(\.id) == ["a3"])
            #expect(try await repository.list(.all, page: ListPage(limit: 5, after: "a3")).isEmpty)
        }
    }
}

@Suite("Media routes")
struct MediaRouteTests {
    static let internalToken = String(repeating: "i", count: 40)

    func makeApp(apps: any AppRepository, mediaRoot: String = "/nonexistent") async throws -> some ApplicationProtocol {
        try await buildMedia(
            reader: .values([
                "STREAMHUB_INTERNAL_TOKEN": Self.internalToken, "STREAMHUB_CLUSTER_TOKEN": String(repeating: "c", count: 40),
                "LIVEKIT_API_KEY": "APIkey", "LIVEKIT_API_SECRET": String(repeating: "l", count: 40),
                "STREAMHUB_MEDIA_ROOT": mediaRoot,
            ]),
            dependencies: MediaDependencies(apps: apps)
        )
    }

    func headers(_ principal: Principal?) -> HTTPFields {
        var headers: HTTPFields = [.streamHubInternalToken: Self.internalToken]
        if let principal { headers[.streamHubPrincipal] = PrincipalHeader.encode(principal) }
        return headers
    }

    @Test("the app list follows the forwarded principal")
    func list() async throws {
        let apps = InMemoryAppRepository(apps: [
            AppRecord(id: "a1", tenantId: "t1", name: "One", publicPlayback: true, createdAt: 1),
            AppRecord(id: "a2", tenantId: "t2", name: "Two", publicPlayback: true, createdAt: 2),
        ])
        try await self.makeApp(apps: apps).test(.router) { client in
            let global = Principal(kind: .apiToken, scope: .global, subject: "token:g")
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: self.headers(global)) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let list = try JSONDecoder().decode([AppSummary].self, from: Data(buffer: response.body))
                #expect(list.map(\.id) == ["a1", "a2"])
                #expect(list[0].features.publicPlayback)
            }
            let member = Principal(kind: .user, scope: .tenant, subject: "user:u", tenantId: "t2")
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: self.headers(member)) { (response: TestResponse) async throws in
                #expect(try JSONDecoder().decode([AppSummary].self, from: Data(buffer: response.body)).map(\.id) == ["a2"])
            }
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: self.headers(nil)) { (response: TestResponse) async throws in
                #expect(response.status == .unauthorized)
            }
            // Without the internal token nothing is answered, whatever principal is claimed.
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.streamHubPrincipal: PrincipalHeader.encode(global)]) {
                (response: TestResponse) async throws in
                #expect(response.status == .unauthorized)
            }
            try await client.execute(
                uri: "/api/v1/apps", method: .get, headers: [.streamHubInternalToken: Self.internalToken, .streamHubPrincipal: "garbage!"]
            ) { (response: TestResponse) async throws in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test("mounts serve files under their root with a MIME type, and never escape it")
    func mounts() async throws {
        let root = try TestDatabases.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: root + "/hls/live", withIntermediateDirectories: true)
        try "#EXTM3U\n".write(toFile: root + "/hls/live/index.m3u8", atomically: true, encoding: .utf8)
        try "secret".write(toFile: root + "/secret.txt", atomically: true, encoding: .utf8)
        try await self.makeApp(apps: InMemoryAppRepository(), mediaRoot: root).test(.router) { client in
            try await client.execute(uri: "/hls/live/index.m3u8", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/vnd.apple.mpegurl")
                #expect(response.headers[.cacheControl] == "no-cache")
                #expect(String(buffer: response.body) == "#EXTM3U\n")
            }
            for path in ["/hls/../secret.txt", "/hls/%2e%2e/secret.txt", "/hls/live/missing.ts", "/hls/live", "/hls/.hidden"] {
                try await client.execute(uri: path, method: .get) { (response: TestResponse) async throws in
                    #expect(response.status == .notFound, "\(path)")
                    #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: response.body)).statusCode == 404)
                }
            }
        }
    }

    @Test("mounts: hostile dates in If-Modified-Since and If-Range are ignored, never a crash")
    func hostileDates() async throws {
        let root = try TestDatabases.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: root + "/hls/live", withIntermediateDirectories: true)
        try "#EXTM3U\n".write(toFile: root + "/hls/live/index.m3u8", atomically: true, encoding: .utf8)
        let hostile = [
            "Sun, 06 Nov -2147483648 08:49:37 GMT", "Sun, 06 Nov 2147483647 08:49:37 GMT", "Sun, 06 Nov 99999999999999999999 08:49:37 GMT",
            "Sun, -2147483648 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 -2147483648:49:37 GMT", "Sun, 06 Nov 1994 08:49:+37 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT", "Sun, 06 Nov 1994 08::49:37 GMT", ",  GMT",
        ]
        try await self.makeApp(apps: InMemoryAppRepository(), mediaRoot: root).test(.router) { client in
            for date in hostile {
                try await client.execute(uri: "/hls/live/index.m3u8", method: .get, headers: [.ifModifiedSince: date]) { response in
                    #expect(response.status == .ok, "\(date)")
                }
                try await client.execute(uri: "/hls/live/index.m3u8", method: .get, headers: [.ifRange: date, .range: "bytes=0-1"]) { response in
                    #expect(response.status == .ok, "\(date)")
                }
            }
        }
        // The parser itself: only IMF-fixdate with a four-digit year.
        #expect(MediaApp.HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT")?.timeIntervalSince1970 == 784_111_777)
        for date in hostile { #expect(MediaApp.HTTPDate.parse(date) == nil, "\(date)") }
        // Found by the fuzzer (fuzz/targets/edge_parsers.swift): a year below 1000 was formatted in
        // three digits, which no IMF-fixdate reader accepts; now always four, and it reads back.
        let early = try #require(MediaApp.HTTPDate.parse("Sun, 06 Nov 0533 08:49:37 GMT"))
        #expect(MediaApp.HTTPDate.format(early) == "Fri, 06 Nov 0533 08:49:37 GMT")
        #expect(MediaApp.HTTPDate.parse(MediaApp.HTTPDate.format(early)) == early)
        #expect(MediaApp.HTTPDate.format(Date(timeIntervalSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }

    @Test("mounts: byte ranges (206, 416, multi-range → 200), ETag/Last-Modified → 304, immutable segments, symlinks out of the root are 404")
    func mountsDoneRight() async throws {
        let root = try TestDatabases.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: root + "/hls/live", withIntermediateDirectories: true)
        let bytes = (0..<1000).map { UInt8($0 % 251) }
        try Data(bytes).write(to: URL(fileURLWithPath: root + "/hls/live/seg1.ts"))
        try "#EXTM3U\n".write(toFile: root + "/hls/live/index.m3u8", atomically: true, encoding: .utf8)
        try "outside".write(toFile: root + "/outside.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/hls/live/escape.ts", withDestinationPath: root + "/outside.txt")
        try FileManager.default.createSymbolicLink(atPath: root + "/hls/live/alias.ts", withDestinationPath: root + "/hls/live/seg1.ts")
        // The router itself, then a live server: its connections answer from the socket's bytes
        // (MediaRawFastPath) and, after the first request they pass on, from decoded heads (MediaFastPath).
        for setup in [TestingSetup.router, .live] {
        try await self.makeApp(apps: InMemoryAppRepository(), mediaRoot: root).test(setup) { client in
            var etag = ""
            var lastModified = ""
            try await client.execute(uri: "/hls/live/seg1.ts", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "video/mp2t")
                #expect(response.headers[.cacheControl] == "public, max-age=31536000, immutable")
                #expect(response.headers[.acceptRanges] == "bytes" && response.headers[.accessControlAllowOrigin] == "*")
                #expect(Array(response.body.readableBytesView) == bytes)
                etag = response.headers[.eTag] ?? ""
                lastModified = response.headers[.lastModified] ?? ""
            }
            #expect(etag.hasPrefix("\"") && lastModified.hasSuffix(" GMT"))
            let cases: [(String, HTTPResponse.Status, String?, ArraySlice<UInt8>?)] = [
                ("bytes=0-99", .partialContent, "bytes 0-99/1000", bytes[0...99]),
                ("bytes=990-", .partialContent, "bytes 990-999/1000", bytes[990...999]),
                ("bytes=-10", .partialContent, "bytes 990-999/1000", bytes[990...999]),
                ("bytes=900-5000", .partialContent, "bytes 900-999/1000", bytes[900...999]),
                ("bytes=1000-", .rangeNotSatisfiable, "bytes */1000", nil),
                ("bytes=0-1,5-9", .ok, nil, bytes[0...999]),
                ("items=0-5", .ok, nil, bytes[0...999]),
            ]
            for (range, status, contentRange, body) in cases {
                try await client.execute(uri: "/hls/live/seg1.ts", method: .get, headers: [.range: range]) { (response: TestResponse) async throws in
                    #expect(response.status == status, "\(range)")
                    #expect(response.headers[.contentRange] == contentRange, "\(range)")
                    if let body { #expect(Array(response.body.readableBytesView) == Array(body), "\(range)") }
                }
            }
            // An If-Range naming another version: the whole file.
            try await client.execute(uri: "/hls/live/seg1.ts", method: .get, headers: [.range: "bytes=0-9", .ifRange: "\"other\""]) { response in
                #expect(response.status == .ok && response.body.readableBytes == 1000)
            }
            for validators: HTTPFields in [[.ifNoneMatch: etag], [.ifNoneMatch: "\"x\", W/\(etag)"], [.ifModifiedSince: lastModified]] {
                try await client.execute(uri: "/hls/live/seg1.ts", method: .get, headers: validators) { response in
                    #expect(response.status == .notModified, "\(validators)")
                    #expect(response.body.readableBytes == 0 && response.headers[.eTag] == etag)
                }
            }
            try await client.execute(uri: "/hls/live/seg1.ts", method: .get, headers: [.ifNoneMatch: "\"stale\""]) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/hls/live/seg1.ts", method: .head) { response in
                #expect(response.status == .ok && response.headers[.contentLength] == "1000" && response.body.readableBytes == 0)
            }
            try await client.execute(uri: "/hls/live/index.m3u8", method: .get) { response in
                #expect(response.headers[.cacheControl] == "no-cache")
            }
            // Last-Modified is the file's time as an IMF-fixdate; If-Modified-Since compares with it.
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSince1970: 784_111_777)], ofItemAtPath: root + "/hls/live/index.m3u8")
            try await client.execute(uri: "/hls/live/index.m3u8", method: .get) { response in
                #expect(response.headers[.lastModified] == "Sun, 06 Nov 1994 08:49:37 GMT")
            }
            for (since, status) in [
                ("Sun, 06 Nov 1994 08:49:37 GMT", HTTPResponse.Status.notModified), ("Mon, 07 Nov 1994 00:00:00 GMT", .notModified),
                ("Sat, 05 Nov 1994 08:49:37 GMT", .ok), ("yesterday", .ok), ("Sun, 06 Nov 1994 25:49:37 GMT", .ok),
            ] {
                try await client.execute(uri: "/hls/live/index.m3u8", method: .get, headers: [.ifModifiedSince: since]) { response in
                    #expect(response.status == status, "\(since)")
                }
            }
            try await client.execute(uri: "/hls/live/alias.ts", method: .get) { response in
                #expect(response.status == .ok && response.body.readableBytes == 1000)
            }
            for path in ["/hls/live/escape.ts", "/hls/live%2Fseg1.ts", "/hls/live/seg1.ts%00", "/hls/live%5cseg1.ts"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .notFound, "\(path)")
                }
            }
        }
        }
    }

    @Test("over a socket: pipelined answers keep their order across both fast paths and the router; split, odd and closing requests")
    func rawConnections() async throws {
        let root = try TestDatabases.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: root + "/hls/live", withIntermediateDirectories: true)
        let small = (0..<1000).map { UInt8($0 % 251) }
        try Data(small).write(to: URL(fileURLWithPath: root + "/hls/live/seg1.ts"))
        let large = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(large).write(to: URL(fileURLWithPath: root + "/hls/live/big.ts"))
        try await self.makeApp(apps: InMemoryAppRepository(), mediaRoot: root).test(.live) { client in
            let port = try #require(client.port)
            func get(_ path: String, _ extra: String = "", method: String = "GET") -> String {
                "\(method) \(path) HTTP/1.1\r\nHost: media\r\n\(extra)\r\n"
            }
            // One write: raw answers, a miss the router answers, then decoded-head answers after it.
            let pipelined = [
                get("/hls/live/seg1.ts", "X-Request-Id: first-1\r\n"), get("/hls/live/seg1.ts", method: "HEAD"),
                get("/hls/live/seg1.ts", "Range: bytes=0-9\r\n"), get("/hls/live/missing.ts"), get("/hls/live/seg1.ts"),
                get("/hls/live/seg1.ts", "Connection: close\r\n"), get("/hls/live/seg1.ts"),
            ].joined()
            var (responses, closed) = try await RawHTTP.exchange(port: port, pipelined, headAnswers: [1])
            #expect(responses.map(\.status) == [200, 200, 206, 404, 200, 200])
            #expect(closed, "Connection: close closes after its answer; the request after it is not answered")
            #expect(responses[0].bodyBytes == small && responses[0].headers["x-request-id"] == "first-1")
            #expect(responses[0].headers["content-type"] == "video/mp2t" && responses[0].headers["server"] == "streamhub-media")
            #expect(responses[0].headers["date"]?.hasSuffix(" GMT") == true && responses[0].headers["etag"]?.hasPrefix("\"") == true)
            #expect(responses[1].headers["content-length"] == "1000" && responses[1].bodyBytes.isEmpty)
            #expect(responses[2].bodyBytes == Array(small[0...9]) && responses[2].headers["content-range"] == "bytes 0-9/1000")
            #expect(responses[3].body.contains(#""statusCode":404"#))
            #expect(responses[4].bodyBytes == small && responses[5].bodyBytes == small)

            // A request split across writes (inside the request line, inside a header, before the end).
            (responses, closed) = try await RawHTTP.exchange(
                port: port, ["GET /hls/li", "ve/seg1.ts HTTP/1.1\r\nHo", "st: media\r\nRange: bytes=10-19\r\nConnection: close\r\n", "\r\n"])
            #expect(responses.map(\.status) == [206] && closed)
            #expect(responses.first?.bodyBytes == Array(small[10...19]))

            // More than the socket buffers hold: answers wait for the client to read, in order.
            let many = Array(repeating: get("/hls/live/big.ts"), count: 12).joined() + get("/hls/live/seg1.ts", "Connection: close\r\n")
            (responses, closed) = try await RawHTTP.exchange(port: port, many)
            #expect(responses.count == 13 && closed)
            #expect(responses.dropLast().allSatisfy { $0.status == 200 && $0.bodyBytes == large })
            #expect(responses.last?.bodyBytes == small)

            // What the byte reader does not take goes to NIO's parser and the router, in order.
            let bodied = "GET /hls/live/seg1.ts HTTP/1.1\r\nHost: media\r\nContent-Length: 5\r\n\r\nhello" + get("/hls/live/seg1.ts", "Range: bytes=0-1\r\nConnection: close\r\n")
            (responses, closed) = try await RawHTTP.exchange(port: port, bodied)
            #expect(responses.map(\.status) == [200, 206] && closed)
            (responses, closed) = try await RawHTTP.exchange(
                port: port, get("/hls/live/seg1.ts", "Range: bytes=0-1\r\nRange: bytes=2-3\r\n") + get("/hls/live/seg1.ts", "Connection: close\r\n"))
            #expect(responses.count == 2 && responses.allSatisfy { $0.status < 500 } && responses.last?.bodyBytes == small && closed)
            (responses, closed) = try await RawHTTP.exchange(port: port, "GET /hls/live/seg1.ts HTTP/1.0\r\n\r\n")
            #expect(responses.map(\.status) == [200] && closed && responses.first?.bodyBytes == small)
            (responses, _) = try await RawHTTP.exchange(
                port: port, ["GET /hls/live/seg1.ts HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 7\r\n\r\n"], silence: 5)
            #expect(responses.map(\.status) == [400])
            (responses, _) = try await RawHTTP.exchange(port: port, ["GET /hls/live/seg1.ts HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"], silence: 1)
            #expect(responses.allSatisfy { $0.status < 500 })
        }
    }
}
