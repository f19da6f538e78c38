import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MediaApp
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
            #expect(try await repository.list(.all).isEmpty)
            try await repository.insert(AppRecord(id: "a1", tenantId: "t1", name: "One", publicPlayback: true, createdAt: 1))
            try await repository.insert(AppRecord(id: "a2", tenantId: "t2", name: "Two", publicPlayback: false, createdAt: 2))
            try await repository.insert(AppRecord(id: "a3", tenantId: "t1", name: "Three", publicPlayback: true, createdAt: 3))
            #expect(try await repository.list(.all).map(\.id) == ["a1", "a2", "a3"])
            #expect(try await repository.list(.tenant("t1")).map(\.id) == ["a1", "a3"])
            #expect(try await repository.list(.app("a2")).map(\.publicPlayback) == [false])
            #expect(try await repository.list(.nothing).isEmpty)
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
}
