import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MediaApp
import NIOCore
import ServiceKit
import ServiceStorage
import Shared
import TestSupport
import Testing

/// Identity as media sees it: tenant t1 with the given quotas, anything else 404.
final class QuotaIdentity: UpstreamClient, @unchecked Sendable {
    let quotas: TenantQuotas
    init(quotas: TenantQuotas) { self.quotas = quotas }

    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        let (status, body): (Int, String)
        if request.pathAndQuery == "/internal/v1/tenants/t1" {
            let summary = TenantSummary(id: "t1", name: "t1", ownerId: "u", quotas: self.quotas, createdAt: "2026-01-01T00:00:00.000Z")
            (status, body) = (200, String(decoding: try JSONEncoder().encode(summary), as: UTF8.self))
        } else {
            (status, body) = (404, #"{"statusCode":404,"message":"No such tenant","error":"Not Found"}"#)
        }
        let buffer = ByteBuffer(string: body)
        return UpstreamResponse(status: .init(code: status), headers: [:], body: .init(byteBuffer: buffer), collect: { _ in buffer })
    }
}

@Suite("Media quotas")
struct MediaQuotaTests {
    static let token = String(repeating: "i", count: 40)
    static let member = Principal(kind: .user, scope: .tenant, subject: "user:m", tenantId: "t1")

    @Test("maxApps and maxConcurrentStreams hold exactly under 100 concurrent requests", arguments: TestDatabases.backends)
    func quotas(backend: String) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "media")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await MediaMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            let repository = SQLAppRepository(database: database)
            let controller = AppsController<ServiceRequestContext>(
                apps: repository,
                identity: InternalClient(
                    transport: QuotaIdentity(quotas: TenantQuotas(maxApps: 2, maxConcurrentStreams: 3, maxMembers: 5, maxTokens: 5)),
                    internalToken: Self.token, timeout: .seconds(5)),
                identityURL: "http://identity.test",
                livekit: LiveKitTokens(settings: LiveKitSettings(url: "ws://lk.test", apiKey: "APIk", apiSecret: String(repeating: "s", count: 32))))
            let router = Router(context: ServiceRequestContext.self)
            router.addServiceMiddleware(metrics: ServiceMetrics(service: "media"))
            controller.addRoutes(to: router.forwardedGroup(internalToken: Self.token))
            try await Application(router: router).test(.router) { client in
                func post(_ path: String, _ body: String) async throws -> TestResponse {
                    try await client.execute(
                        uri: path, method: .post,
                        headers: [.streamHubInternalToken: Self.token, .streamHubPrincipal: PrincipalHeader.encode(Self.member), .contentType: "application/json"],
                        body: ByteBuffer(string: body))
                }
                let apps = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for index in 0..<100 { group.addTask { try await post("/api/v1/apps", #"{"name":"a\#(index)"}"#).status } }
                    return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
                }
                #expect(apps.filter { $0 == .created }.count == 2 && apps.filter { $0 == .forbidden }.count == 98)
                let app = try #require(try await repository.list(.tenant("t1"), page: nil).first)
                let streams = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for index in 0..<100 { group.addTask { try await post("/api/v1/apps/\(app.id)/streams", #"{"room":"r\#(index)"}"#).status } }
                    return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
                }
                #expect(streams.filter { $0 == .created }.count == 3 && streams.filter { $0 == .forbidden }.count == 97)
                let over = try await post("/api/v1/apps/\(app.id)/streams", #"{"room":"late"}"#)
                #expect(String(buffer: over.body).contains("Quota maxConcurrentStreams (3) reached"))
                #expect(try await repository.liveStreams(appId: app.id).count == 3)
                let bad = try await post("/api/v1/apps/\(app.id)/streams", #"{"room":"../x"}"#)
                #expect(bad.status == .badRequest)
            }
        }
    }
}
