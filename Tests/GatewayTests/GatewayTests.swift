import Foundation
import GatewayApp
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServiceKit
import Shared
import Testing

/// An in-memory stand-in for the upstream services: answers by URL and records what it was sent.
final class FakeUpstream: UpstreamClient, @unchecked Sendable {
    enum Behaviour { case answer(Int, String), down, slow }
    let lock = NSLock()
    var behaviours: [String: Behaviour] = [:]
    var received: [UpstreamRequest] = []

    func set(_ prefix: String, _ behaviour: Behaviour) {
        self.lock.withLock { self.behaviours[prefix] = behaviour }
    }

    var requests: [UpstreamRequest] { self.lock.withLock { self.received } }

    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        let url = request.baseURL + request.pathAndQuery
        let behaviour: Behaviour? = self.lock.withLock {
            self.received.append(request)
            // The most specific prefix wins.
            return self.behaviours.filter { url.hasPrefix($0.key) }.max { $0.key.count < $1.key.count }?.value
        }
        switch behaviour ?? .down {
        case .down: throw UpstreamFailure.unavailable("connection refused")
        case .slow: throw UpstreamFailure.timeout
        case .answer(let status, let body):
            let buffer = ByteBuffer(string: body)
            return UpstreamResponse(
                status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer), collect: { _ in buffer }
            )
        }
    }
}

@Suite("Gateway")
struct GatewayTests {
    static let internalToken = String(repeating: "i", count: 40)
    static let jwtSecret = String(repeating: "j", count: 40)
    static let identity = "http://identity.test"
    static let media = "http://media.test"
    static let authz = "http://authz.test"
    static let globalPrincipal = Principal(kind: .apiToken, scope: .global, subject: "token:g1")

    func makeApp(_ upstream: FakeUpstream, extra: [String: String] = [:]) async throws -> some ApplicationProtocol {
        var values = [
            "STREAMHUB_INTERNAL_TOKEN": Self.internalToken, "STREAMHUB_JWT_SECRET": Self.jwtSecret, "IDENTITY_URL": Self.identity,
            "MEDIA_URL": Self.media, "AUTHZ_URL": Self.authz, "GATEWAY_MAX_BODY_BYTES": "2048",
        ]
        values.merge(extra) { _, new in new }
        return try await buildGateway(reader: .values(values), dependencies: GatewayDependencies(upstream: upstream))
    }

    func upstreamWithGlobalToken() throws -> FakeUpstream {
        let upstream = FakeUpstream()
        let resolved = String(decoding: try JSONEncoder().encode(TokenResolveResponse(principal: Self.globalPrincipal, tokenId: "g1")), as: UTF8.self)
        upstream.set(Self.identity + "/internal/v1/tokens/resolve", .answer(200, resolved))
        upstream.set(Self.media + "/api/v1/apps", .answer(200, "[]"))
        return upstream
    }

    func errorBody(_ response: TestResponse) throws -> ErrorBody {
        try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: response.body))
    }

    @Test("health answers the overview's body, unenveloped")
    func health() async throws {
        try await self.makeApp(FakeUpstream()).test(.router) { client in
            try await client.execute(uri: "/api/v1/health", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
                #expect(Set(object.keys) == ["status", "up", "version", "ts", "uptimeSeconds"])
                #expect(object["status"] as? String == "ok")
                #expect(object["up"] as? Bool == true)
                #expect(object["version"] as? String == "0.1.0")
                let ts = try #require(object["ts"] as? String)
                #expect(ts.count == 24 && ts.hasSuffix("Z") && ts.contains("."))
                let uptime = try #require(object["uptimeSeconds"] as? Int)
                #expect(uptime >= 0 && uptime < 600)
            }
        }
    }

    @Test("a global token lists apps enveloped; the upstream gets the principal, not the credential")
    func appsWithGlobalToken() async throws {
        let upstream = try self.upstreamWithGlobalToken()
        try await self.makeApp(upstream).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_good"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"data":[],"error":null}"#)
                #expect(response.headers[.requestID] != nil)
            }
        }
        let forwarded = try #require(upstream.requests.last)
        #expect(forwarded.baseURL == Self.media)
        #expect(forwarded.headers[.streamHubInternalToken] == Self.internalToken)
        #expect(forwarded.headers[.streamHubPrincipal].flatMap(PrincipalHeader.decode) == Self.globalPrincipal)
        #expect(forwarded.headers[.authorization] == nil)
    }

    @Test("client-sent X-StreamHub-* headers never reach an upstream")
    func stripsReservedHeaders() async throws {
        let upstream = try self.upstreamWithGlobalToken()
        let forged = PrincipalHeader.encode(Principal(kind: .user, scope: .global, subject: "user:evil", superadmin: true))
        try await self.makeApp(upstream).test(.router) { client in
            let headers: HTTPFields = [
                .authorization: "Bearer sk_good", .streamHubPrincipal: forged, .streamHubInternalToken: "forged",
                HTTPField.Name("X-StreamHub-Anything")!: "1", .requestID: "trace-1",
            ]
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: headers) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(response.headers[.requestID] == "trace-1")
            }
        }
        let forwarded = try #require(upstream.requests.last)
        #expect(forwarded.headers[.streamHubPrincipal].flatMap(PrincipalHeader.decode) == Self.globalPrincipal)
        #expect(forwarded.headers[.streamHubInternalToken] == Self.internalToken)
        #expect(forwarded.headers[HTTPField.Name("X-StreamHub-Anything")!] == nil)
        #expect(forwarded.headers[.requestID] == "trace-1")
    }

    @Test("anonymous callers and bad credentials get 401 bodies")
    func unauthorized() async throws {
        let upstream = try self.upstreamWithGlobalToken()
        upstream.set(
            Self.identity + "/internal/v1/tokens/resolve",
            .answer(401, #"{"statusCode":401,"message":"Invalid or revoked API token","error":"Unauthorized"}"#))
        try await self.makeApp(upstream).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .unauthorized)
                #expect(try self.errorBody(response) == .unauthorized)
            }
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_nope"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .unauthorized)
                #expect(try self.errorBody(response) == .invalidApiToken)
            }
            for header in ["Basic abc", "Bearer", "Bearer ", "Bearer a b", "sk_nope"] {
                try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: header]) {
                    (response: TestResponse) async throws in
                    #expect(response.status == .unauthorized, "\(header)")
                    #expect(try self.errorBody(response).message.hasPrefix("Malformed Authorization header"), "\(header)")
                }
            }
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer not.a.jwt"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .unauthorized)
                #expect(try self.errorBody(response).message == "Invalid or expired session token")
            }
        }
    }

    @Test("dashboard JWTs: HS256 with a future exp only")
    func sessionTokens() async throws {
        let upstream = try self.upstreamWithGlobalToken()
        let verifier = SessionTokenVerifier(secret: Self.jwtSecret)
        let now = Int64(Date().timeIntervalSince1970)
        let valid = verifier.sign(SessionClaims(sub: "u1", tenantId: "t1", iat: now, exp: now + 3600))
        let expired = verifier.sign(SessionClaims(sub: "u1", tenantId: "t1", iat: now - 7200, exp: now - 3600))
        let otherKey = SessionTokenVerifier(secret: String(repeating: "x", count: 40)).sign(
            SessionClaims(sub: "u1", tenantId: "t1", iat: now, exp: now + 3600))
        let payload = valid.split(separator: ".")[1]
        let algNone = Base64URL.encode(Data(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + payload + "."
        let hs512 = Base64URL.encode(Data(#"{"alg":"HS512","typ":"JWT"}"#.utf8)) + "." + payload + "." + valid.split(separator: ".")[2]
        try await self.makeApp(upstream, extra: ["STREAMHUB_AUTHZ_ENFORCE": "off"]).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer \(valid)"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
            for token in [expired, otherKey, algNone, hs512] {
                try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer \(token)"]) {
                    (response: TestResponse) async throws in
                    #expect(response.status == .unauthorized)
                }
            }
        }
        let forwarded = try #require(upstream.requests.last { $0.baseURL == Self.media })
        #expect(
            forwarded.headers[.streamHubPrincipal].flatMap(PrincipalHeader.decode)
                == Principal(kind: .user, scope: .tenant, subject: "user:u1", tenantId: "t1")
        )
    }

    @Test("enforce on: a denial is 403, an unreachable authz is 503; log: both let the request on")
    func enforcement() async throws {
        let verifier = SessionTokenVerifier(secret: Self.jwtSecret)
        let now = Int64(Date().timeIntervalSince1970)
        let session = "Bearer " + verifier.sign(SessionClaims(sub: "u1", tenantId: "t1", iat: now, exp: now + 3600))
        let deny = String(decoding: try JSONEncoder().encode(EnforceDecision(allowed: false, mode: "on", enforced: true)), as: UTF8.self)

        let upstream = try self.upstreamWithGlobalToken()
        upstream.set(Self.authz + "/internal/v1/enforce", .answer(200, deny))
        try await self.makeApp(upstream, extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: session]) { (response: TestResponse) async throws in
                #expect(response.status == .forbidden)
                #expect(try self.errorBody(response).error == "Forbidden")
            }
            // Global tokens skip Casbin entirely.
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_good"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
        }
        let enforceCall = try #require(upstream.requests.first { $0.baseURL == Self.authz })
        let asked = try JSONDecoder().decode(EnforceRequest.self, from: Data(buffer: try #require(enforceCall.body)))
        #expect(asked == EnforceRequest(subject: "user:u1", tenant: "t1", resource: "app", action: "read"))

        let logUpstream = try self.upstreamWithGlobalToken()
        logUpstream.set(Self.authz + "/internal/v1/enforce", .answer(200, deny))
        try await self.makeApp(logUpstream, extra: ["STREAMHUB_AUTHZ_ENFORCE": "log"]).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: session]) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
        }

        let downUpstream = try self.upstreamWithGlobalToken()
        try await self.makeApp(downUpstream, extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: session]) { (response: TestResponse) async throws in
                #expect(response.status == .serviceUnavailable)
            }
        }
    }

    @Test("routing errors: 404 unknown, 405 wrong method with Allow, 413 too large")
    func routingErrors() async throws {
        let upstream = try self.upstreamWithGlobalToken()
        try await self.makeApp(upstream).test(.router) { client in
            try await client.execute(uri: "/api/v1/nope", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .notFound)
                #expect(try self.errorBody(response) == ErrorBody(statusCode: 404, message: "Cannot GET /api/v1/nope"))
            }
            try await client.execute(uri: "/internal/v1/tokens/resolve", method: .post) { (response: TestResponse) async throws in
                #expect(response.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/apps", method: .delete) { (response: TestResponse) async throws in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET")
                #expect(try self.errorBody(response).error == "Method Not Allowed")
            }
            try await client.execute(
                uri: "/api/v1/apps", method: .post, headers: [.authorization: "Bearer sk_good", .contentLength: "4096"],
                body: ByteBuffer(repeating: 0x41, count: 4096)
            ) { (response: TestResponse) async throws in
                #expect(response.status == .contentTooLarge)
                #expect(try self.errorBody(response) == ErrorBody(statusCode: 413, message: "Request body is larger than 2048 bytes"))
            }
        }
    }

    @Test("upstream down is 503, upstream timeout is 504, both in the error body")
    func upstreamFailures() async throws {
        let upstream = try self.upstreamWithGlobalToken()
        upstream.set(Self.media + "/api/v1/apps", .down)
        try await self.makeApp(upstream).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_good"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .serviceUnavailable)
                #expect(try self.errorBody(response) == ErrorBody(statusCode: 503, message: "The media service is unavailable"))
            }
        }
        upstream.set(Self.media + "/api/v1/apps", .slow)
        try await self.makeApp(upstream).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_good"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .gatewayTimeout)
                #expect(try self.errorBody(response).error == "Gateway Timeout")
            }
        }
        upstream.set(Self.identity + "/internal/v1/tokens/resolve", .down)
        try await self.makeApp(upstream).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_other"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .serviceUnavailable)
            }
        }
    }

    @Test("upstream errors pass through unenveloped")
    func upstreamErrorPassThrough() async throws {
        let upstream = try self.upstreamWithGlobalToken()
        upstream.set(Self.media + "/api/v1/apps", .answer(409, #"{"statusCode":409,"message":"taken","error":"Conflict"}"#))
        try await self.makeApp(upstream).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_good"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .conflict)
                #expect(try self.errorBody(response) == ErrorBody(statusCode: 409, message: "taken"))
            }
        }
    }

    @Test("media mounts are forwarded unchanged and unauthenticated")
    func mounts() async throws {
        let upstream = FakeUpstream()
        upstream.set(Self.media + "/hls/", .answer(200, "#EXTM3U"))
        try await self.makeApp(upstream).test(.router) { client in
            try await client.execute(uri: "/hls/live/index.m3u8?x=1", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "#EXTM3U")
            }
            try await client.execute(uri: "/hls/live/index.m3u8", method: .post) { (response: TestResponse) async throws in
                #expect(response.status == .methodNotAllowed)
            }
        }
        // The POST was refused at the edge; only the GET reached media, query intact.
        #expect(upstream.requests.map(\.pathAndQuery) == ["/hls/live/index.m3u8?x=1"])
    }

    @Test("a revoked token keeps working at most for the cache lifetime (3 s), an invalid one is cached as invalid")
    func tokenCache() async throws {
        let upstream = try self.upstreamWithGlobalToken()
        try await self.makeApp(upstream).test(.router) { client in
            for _ in 0..<3 {
                try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_good"]) {
                    (response: TestResponse) async throws in
                    #expect(response.status == .ok)
                }
            }
        }
        #expect(upstream.requests.filter { $0.baseURL == Self.identity }.count == 1)
        // The token itself never travels anywhere but the identity lookup body.
        #expect(upstream.requests.filter { $0.baseURL == Self.media }.allSatisfy { !$0.headers.contains { $0.value.contains("sk_good") } })
    }

    @Test("metrics: 404 without METRICS_TOKEN; with it, Bearer or ?token= required, wrong is 403")
    func metrics() async throws {
        try await self.makeApp(FakeUpstream()).test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer anything"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .notFound)
            }
        }
        let token = "metrics-secret-token"
        try await self.makeApp(FakeUpstream(), extra: ["METRICS_TOKEN": token]).test(.router) { client in
            try await client.execute(uri: "/api/v1/health", method: .get) { (_: TestResponse) async throws in }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(token)"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                #expect(String(buffer: response.body).contains("streamhub_http_requests_total"))
            }
            try await client.execute(uri: "/metrics?token=\(token)", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer wrong"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/metrics", method: .get) { (response: TestResponse) async throws in
                #expect(response.status == .forbidden)
            }
        }
    }

    @Test("a missing JWT secret or a bad enforce mode stops start-up with a clear error")
    func configurationErrors() async throws {
        await #expect(throws: ConfigurationError.self) {
            _ = try await buildGateway(reader: .values(["STREAMHUB_INTERNAL_TOKEN": Self.internalToken]))
        }
        await #expect(throws: ConfigurationError.self) {
            _ = try await buildGateway(
                reader: .values([
                    "STREAMHUB_INTERNAL_TOKEN": Self.internalToken, "STREAMHUB_JWT_SECRET": Self.jwtSecret, "STREAMHUB_AUTHZ_ENFORCE": "maybe",
                ])
            )
        }
    }
}
