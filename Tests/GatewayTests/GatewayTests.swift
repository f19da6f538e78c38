import Foundation
import GatewayApp
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServiceKit
import Shared
import Testing

/// A clock the test moves by hand.
final class MovableTimeSource: TimeSource, @unchecked Sendable {
    let lock = NSLock()
    var current = Date(timeIntervalSince1970: 1_800_000_000)
    func now() -> Date { self.lock.withLock { self.current } }
    func advance(by seconds: Double) { self.lock.withLock { self.current.addTimeInterval(seconds) } }
}

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
            // Every check reaches the scripted authz here; the cache has tests of its own.
            "GATEWAY_DECISION_CACHE_SIZE": "0",
        ]
        values.merge(extra) { _, new in new }
        return try await buildGateway(reader: .values(values), dependencies: GatewayDependencies(upstream: upstream))
    }

    func upstreamWithGlobalToken() throws -> FakeUpstream {
        let upstream = FakeUpstream()
        let resolved = String(decoding: try JSONEncoder().encode(TokenResolveResponse(principal: Self.globalPrincipal, tokenId: "g1")), as: UTF8.self)
        upstream.set(Self.identity + "/internal/v1/tokens/resolve", .answer(200, resolved))
        upstream.set(Self.media + "/api/v1/apps", .answer(200, "[]"))
        upstream.set(Self.identity + "/internal/v1/sessions/state", .answer(200, #"{"exists":false,"disabled":false,"notBefore":0}"#))
        return upstream
    }

    func errorBody(_ response: TestResponse) throws -> ErrorBody {
        try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: response.body))
    }

    @Test("one URL for all three upstreams (one ingress): the gateway builds and routes each service's calls there; metrics name them together")
    func oneIngressForAllUpstreams() async throws {
        let ingress = "http://ingress.test"
        let upstream = FakeUpstream()
        let resolved = String(decoding: try JSONEncoder().encode(TokenResolveResponse(principal: Self.globalPrincipal, tokenId: "g1")), as: UTF8.self)
        upstream.set(ingress + "/internal/v1/tokens/resolve", .answer(200, resolved))
        upstream.set(ingress + "/api/v1/apps", .answer(200, "[]"))
        upstream.set(ingress + "/api/v1/auth/me", .answer(200, #"{"id":"u1"}"#))
        let metrics = ServiceMetrics(service: "gateway")
        let app = try await buildGateway(
            reader: .values([
                "STREAMHUB_INTERNAL_TOKEN": Self.internalToken, "STREAMHUB_JWT_SECRET": Self.jwtSecret, "IDENTITY_URL": ingress,
                "MEDIA_URL": ingress, "AUTHZ_URL": ingress, "GATEWAY_DECISION_CACHE_SIZE": "0",
            ]), dependencies: GatewayDependencies(upstream: upstream, metrics: metrics))
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_good"]) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"data":[],"error":null}"#)
            }
        }
        #expect(upstream.requests.allSatisfy { $0.baseURL == ingress })
        #expect(upstream.requests.map(\.pathAndQuery).contains("/api/v1/apps"))
        #expect(String(buffer: metrics.render()).contains(#"upstream="identity+authz+media""#))
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

    static let issuer = "http://127.0.0.1:8080"

    static func session(sub: String = "u1", tenantId: String? = "t1") -> String {
        let tokens = SessionTokens(secret: Self.jwtSecret, issuer: Self.issuer)
        return tokens.sign(tokens.claims(userId: sub, tenantId: tenantId, superadmin: false, now: Date()))
    }

    @Test("dashboard JWTs: HS256, our iss and aud, a future exp only")
    func sessionTokens() async throws {
        let upstream = try self.upstreamWithGlobalToken()
        let verifier = SessionTokens(secret: Self.jwtSecret, issuer: Self.issuer)
        let now = Int64(Date().timeIntervalSince1970)
        func claims(iss: String? = Self.issuer, aud: String? = SessionClaims.audience, iat: Int64 = now, exp: Int64 = now + 3600) -> SessionClaims {
            SessionClaims(sub: "u1", tenantId: "t1", iss: iss, aud: aud, jti: UUID().uuidString, iat: iat, exp: exp)
        }
        let valid = verifier.sign(claims())
        let expired = verifier.sign(claims(iat: now - 7200, exp: now - 3600))
        let otherKey = SessionTokens(secret: String(repeating: "x", count: 40), issuer: Self.issuer).sign(claims())
        let wrongIssuer = verifier.sign(claims(iss: "https://evil.example"))
        let noIssuer = verifier.sign(claims(iss: nil))
        let wrongAudience = verifier.sign(claims(aud: "other-app"))
        let payload = valid.split(separator: ".")[1]
        let algNone = Base64URL.encode(Data(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + payload + "."
        let hs512 = Base64URL.encode(Data(#"{"alg":"HS512","typ":"JWT"}"#.utf8)) + "." + payload + "." + valid.split(separator: ".")[2]
        try await self.makeApp(upstream, extra: ["STREAMHUB_AUTHZ_ENFORCE": "off"]).test(.router) { client in
            try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer \(valid)"]) {
                (response: TestResponse) async throws in
                #expect(response.status == .ok)
            }
            for token in [expired, otherKey, algNone, hs512, wrongIssuer, noIssuer, wrongAudience] {
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

    @Test("a session ended by logout or disabling is refused once identity says so; identity's word is trusted 3 s")
    func sessionRevocation() async throws {
        let clock = MovableTimeSource()
        clock.current = Date()
        let upstream = try self.upstreamWithGlobalToken()
        let session = "Bearer " + Self.session()
        let iat = Int64(clock.now().timeIntervalSince1970)
        let app = try await buildGateway(
            reader: .values([
                "STREAMHUB_INTERNAL_TOKEN": Self.internalToken, "STREAMHUB_JWT_SECRET": Self.jwtSecret, "IDENTITY_URL": Self.identity,
                "MEDIA_URL": Self.media, "AUTHZ_URL": Self.authz, "STREAMHUB_AUTHZ_ENFORCE": "off", "GATEWAY_DECISION_CACHE_SIZE": "0",
            ]), dependencies: GatewayDependencies(upstream: upstream, timeSource: clock))
        try await app.test(.router) { client in
            let apps: @Sendable () async throws -> HTTPResponse.Status = {
                try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: session]).status
            }
            upstream.set(Self.identity + "/internal/v1/sessions/state", .answer(200, #"{"exists":true,"disabled":false,"notBefore":0}"#))
            let before = try await apps()
            #expect(before == .ok)
            // Logged out: sessions issued before notBefore end — after the cached answer expires.
            upstream.set(Self.identity + "/internal/v1/sessions/state", .answer(200, #"{"exists":true,"disabled":false,"notBefore":\#(iat + 1)}"#))
            let cached = try await apps()
            #expect(cached == .ok)
            clock.advance(by: 3.1)
            let ended = try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: session])
            #expect(ended.status == .unauthorized)
            #expect(try self.errorBody(ended).message == "Session has ended; sign in again")
            upstream.set(Self.identity + "/internal/v1/sessions/state", .answer(200, #"{"exists":true,"disabled":true,"notBefore":0}"#))
            clock.advance(by: 3.1)
            let disabled = try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: session])
            #expect(disabled.status == .unauthorized)
            #expect(try self.errorBody(disabled).message == "This account is disabled")
            // identity down: a session cannot be vouched for, so it is refused with 503, not let through.
            upstream.set(Self.identity + "/internal/v1/sessions/state", .down)
            clock.advance(by: 3.1)
            let down = try await apps()
            #expect(down == .serviceUnavailable)
        }
    }

    /// Serves `/api/v1/apps` to a JWT user under `gatewayMode` with authz answering `authz`
    /// (nil: authz down); returns the status and the gateway's metrics text.
    func appsAsUser(gatewayMode: String, authz: EnforceDecision?) async throws -> (status: HTTPResponse.Status, metrics: String, asked: [EnforceRequest]) {
        let session = "Bearer " + Self.session()
        let upstream = try self.upstreamWithGlobalToken()
        if let authz {
            upstream.set(Self.authz + "/internal/v1/enforce", .answer(200, String(decoding: try JSONEncoder().encode(authz), as: UTF8.self)))
        }
        let metricsToken = String(repeating: "m", count: 32)
        let (status, metrics) = try await self.makeApp(upstream, extra: ["STREAMHUB_AUTHZ_ENFORCE": gatewayMode, "METRICS_TOKEN": metricsToken])
            .test(.router) { client -> (HTTPResponse.Status, String) in
                let response = try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: session])
                if response.status == .forbidden {
                    #expect(try self.errorBody(response) == ErrorBody(statusCode: 403, message: "Forbidden resource", permission: "app:read"))
                }
                let metrics = try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(metricsToken)"])
                return (response.status, String(buffer: metrics.body))
            }
        let asked = try upstream.requests.filter { $0.baseURL == Self.authz }.map {
            try JSONDecoder().decode(EnforceRequest.self, from: Data(buffer: try #require($0.body)))
        }
        return (status, metrics, asked)
    }

    @Test("authz owns the enforcement mode: the gateway acts on allowed/enforced; its own mode only covers an unreachable authz")
    func enforcementOwner() async throws {
        let deniedOn = EnforceDecision(allowed: false, mode: "on", enforced: true)
        let deniedLog = EnforceDecision(allowed: false, mode: "log", enforced: false)
        let allowedOff = EnforceDecision(allowed: true, mode: "off", enforced: false)
        // authz enforces: 403 whatever the gateway's own setting.
        for mode in ["on", "log", "off"] {
            let result = try await self.appsAsUser(gatewayMode: mode, authz: deniedOn)
            #expect(result.status == .forbidden, "gateway \(mode), authz on")
            #expect(result.asked == [EnforceRequest(subject: "user:u1", tenant: "t1", resource: "app", action: "read")])
            // The denial is authz's to count; the gateway counts none.
            #expect(!result.metrics.contains("streamhub_authz_denials_total{"))
        }
        // authz only logs, or is off: the request goes on even with the gateway on.
        #expect(try await self.appsAsUser(gatewayMode: "on", authz: deniedLog).status == .ok)
        #expect(try await self.appsAsUser(gatewayMode: "on", authz: allowedOff).status == .ok)
        // authz cannot answer: the gateway's setting decides, and the outage is counted.
        let down = try await self.appsAsUser(gatewayMode: "on", authz: nil)
        #expect(down.status == .serviceUnavailable)
        #expect(down.metrics.contains(#"streamhub_authz_unavailable_total{service="gateway"} 1"#))
        #expect(try await self.appsAsUser(gatewayMode: "log", authz: nil).status == .ok)
        #expect(try await self.appsAsUser(gatewayMode: "off", authz: nil).status == .ok)
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
                #expect(response.headers[.allow] == "GET, HEAD, POST")
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

    @Test("a resolved token is trusted for 3 s, then asked again; an invalid one is cached as invalid for as long")
    func tokenCache() async throws {
        let clock = MovableTimeSource()
        let upstream = try self.upstreamWithGlobalToken()
        upstream.set(Self.identity + "/internal/v1/tokens/resolve", .answer(200, String(decoding: try JSONEncoder().encode(
            TokenResolveResponse(principal: Self.globalPrincipal, tokenId: "g1")), as: UTF8.self)))
        var values = [
            "STREAMHUB_INTERNAL_TOKEN": Self.internalToken, "STREAMHUB_JWT_SECRET": Self.jwtSecret, "IDENTITY_URL": Self.identity,
            "MEDIA_URL": Self.media, "AUTHZ_URL": Self.authz, "GATEWAY_DECISION_CACHE_SIZE": "0",
        ]
        values["GATEWAY_MAX_BODY_BYTES"] = "2048"
        let app = try await buildGateway(reader: .values(values), dependencies: GatewayDependencies(upstream: upstream, timeSource: clock))
        let identityCalls: @Sendable () -> Int = { upstream.requests.filter { $0.baseURL == Self.identity }.count }
        try await app.test(.router) { client in
            let apps: @Sendable (String) async throws -> HTTPResponse.Status = { token in
                try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer \(token)"]).status
            }
            for _ in 0..<3 {
                let status = try await apps("sk_good")
                #expect(status == .ok)
            }
            #expect(identityCalls() == 1)
            clock.advance(by: 2.9)
            let stillCached = try await apps("sk_good")
            #expect(stillCached == .ok)
            #expect(identityCalls() == 1)
            // Past 3 s identity is asked again: a token revoked meanwhile now fails (within 5 s).
            clock.advance(by: 0.2)
            upstream.set(
                Self.identity + "/internal/v1/tokens/resolve",
                .answer(401, #"{"statusCode":401,"message":"Invalid or revoked API token","error":"Unauthorized"}"#))
            let revoked = try await apps("sk_good")
            #expect(revoked == .unauthorized)
            #expect(identityCalls() == 2)
            // The rejection is cached too: a flood of the same bad token reaches identity once per 3 s.
            for _ in 0..<5 {
                let status = try await apps("sk_good")
                #expect(status == .unauthorized)
            }
            #expect(identityCalls() == 2)
            clock.advance(by: 3.1)
            let askedAgain = try await apps("sk_good")
            #expect(askedAgain == .unauthorized)
            #expect(identityCalls() == 3)
        }
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
        let token = "metrics-secret-token-0123456789abcdef"
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

@Suite("Gateway edge")
struct GatewayEdgeTests {
    let base = GatewayTests()

    @Test("every 401 says WWW-Authenticate: Bearer; two Authorization headers are a 401; nosniff and no-store everywhere they belong")
    func headers() async throws {
        let upstream = try self.base.upstreamWithGlobalToken()
        try await self.base.makeApp(upstream).test(.router) { client in
            let anonymous = try await client.execute(uri: "/api/v1/apps", method: .get)
            #expect(anonymous.status == .unauthorized && anonymous.headers[.wwwAuthenticate] == "Bearer")
            let bad = try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Token x"])
            #expect(bad.status == .unauthorized && bad.headers[.wwwAuthenticate] == "Bearer")
            var two = HTTPFields()
            two.append(HTTPField(name: .authorization, value: "Bearer sk_good"))
            two.append(HTTPField(name: .authorization, value: "Bearer sk_other"))
            let doubled = try await client.execute(uri: "/api/v1/apps", method: .get, headers: two)
            #expect(doubled.status == .unauthorized)
            #expect(try self.base.errorBody(doubled).message == "Send one Authorization header, not 2")
            let ok = try await client.execute(
                uri: "/api/v1/apps", method: .get,
                headers: [.authorization: "Bearer sk_good", HTTPField.Name("X-Forwarded-For")!: "6.6.6.6", HTTPField.Name("X-Forwarded-Host")!: "evil"])
            #expect(ok.status == .ok && ok.headers[.cacheControl] == "no-store" && ok.headers[.xContentTypeOptions] == "nosniff")
            for uri in ["/api/v1/health", "/api/v1/nope", "/hls/x.m3u8"] {
                #expect(try await client.execute(uri: uri, method: .get).headers[.xContentTypeOptions] == "nosniff", "\(uri)")
            }
        }
        // Client-sent forwarding claims never reach a service.
        let forwarded = try #require(upstream.requests.last { $0.baseURL == GatewayTests.media })
        #expect(!forwarded.headers.contains { $0.name.canonicalName.hasPrefix("x-forwarded") })
    }

    @Test("an app-scoped token may list its app but gets 403 on tenant-wide routes and on creating apps")
    func appTokens() async throws {
        let upstream = try self.base.upstreamWithGlobalToken()
        let app = Principal(kind: .apiToken, scope: .app, subject: "token:a1", tenantId: "t1", appId: "app1")
        upstream.set(
            GatewayTests.identity + "/internal/v1/tokens/resolve",
            .answer(200, String(decoding: try JSONEncoder().encode(TokenResolveResponse(principal: app, tokenId: "a1")), as: UTF8.self)))
        upstream.set(GatewayTests.authz + "/internal/v1/enforce", .answer(200, #"{"allowed":true,"mode":"on","enforced":true}"#))
        upstream.set(GatewayTests.authz + "/api/v1/authz/policies", .answer(200, "{}"))
        try await self.base.makeApp(upstream).test(.router) { client in
            let apps = try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.authorization: "Bearer sk_app"])
            #expect(apps.status == .ok)
            for uri in ["/api/v1/authz/policies", "/api/v1/tokens", "/api/v1/tenants"] {
                let response = try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer sk_app"])
                #expect(response.status == .forbidden, "\(uri)")
                #expect(try self.base.errorBody(response).message == "This API token is bound to an app")
            }
            // An app token acts on its app only: it cannot create another (media was never asked).
            upstream.set(GatewayTests.media + "/api/v1/apps", .answer(201, #"{"id":"new"}"#))
            let create = try await client.execute(
                uri: "/api/v1/apps", method: .post, headers: [.authorization: "Bearer sk_app", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"name":"Sneaky"}"#))
            #expect(create.status == .forbidden)
            #expect(try self.base.errorBody(create).message == "This API token is bound to an app")
            #expect(!upstream.requests.contains { $0.method == .post && $0.pathAndQuery == "/api/v1/apps" })
        }
    }

    @Test("CORS: allowlisted origins get preflights answered before any credential, credentials only for listed origins, never with *")
    func cors() async throws {
        let upstream = try self.base.upstreamWithGlobalToken()
        let preflight: HTTPFields = [.origin: "https://dash.example.com", .accessControlRequestMethod: "GET"]
        try await self.base.makeApp(upstream, extra: ["STREAMHUB_CORS_ORIGINS": "https://dash.example.com"]).test(.router) { client in
            let answer = try await client.execute(uri: "/api/v1/apps", method: .options, headers: preflight)
            #expect(answer.status == .noContent)
            #expect(answer.headers[.accessControlAllowOrigin] == "https://dash.example.com")
            #expect(answer.headers[.accessControlAllowCredentials] == "true")
            #expect(answer.headers[.accessControlAllowMethods] == "GET, HEAD, POST, OPTIONS")
            #expect(answer.headers[.accessControlAllowHeaders]?.contains("Authorization") == true)
            #expect(answer.headers[.vary] == "Origin")
            let foreign = try await client.execute(
                uri: "/api/v1/apps", method: .options, headers: [.origin: "https://evil.example", .accessControlRequestMethod: "GET"])
            #expect(foreign.status == .forbidden && foreign.headers[.accessControlAllowOrigin] == nil)
            let get = try await client.execute(
                uri: "/api/v1/apps", method: .get, headers: [.origin: "https://dash.example.com", .authorization: "Bearer sk_good"])
            #expect(get.status == .ok && get.headers[.accessControlAllowOrigin] == "https://dash.example.com")
            let other = try await client.execute(uri: "/api/v1/apps", method: .get, headers: [.origin: "https://evil.example", .authorization: "Bearer sk_good"])
            #expect(other.headers[.accessControlAllowOrigin] == nil)
        }
        // The preflight never asked identity anything.
        #expect(upstream.requests.filter { $0.baseURL == GatewayTests.identity }.count == 1)
        try await self.base.makeApp(upstream, extra: ["STREAMHUB_CORS_ORIGINS": "*"]).test(.router) { client in
            let answer = try await client.execute(uri: "/api/v1/apps", method: .options, headers: preflight)
            #expect(answer.headers[.accessControlAllowOrigin] == "*")
            #expect(answer.headers[.accessControlAllowCredentials] == nil)
        }
        await #expect(throws: ConfigurationError.self) {
            _ = try await self.base.makeApp(upstream, extra: ["STREAMHUB_CORS_ORIGINS": "dash.example.com/path"])
        }
    }

    @Test("X-Forwarded-For is believed only from trusted proxies, right-most untrusted hop first")
    func trustedProxies() throws {
        let proxies = try TrustedProxies(cidrs: ["10.0.0.0/8", "::1/128"])
        #expect(proxies.clientIP(peer: "203.0.113.9", forwardedFor: ["1.2.3.4"]) == "203.0.113.9")
        #expect(proxies.clientIP(peer: "10.1.2.3", forwardedFor: ["1.2.3.4"]) == "1.2.3.4")
        #expect(proxies.clientIP(peer: "10.1.2.3", forwardedFor: ["6.6.6.6, 1.2.3.4, 10.9.9.9"]) == "1.2.3.4")
        #expect(proxies.clientIP(peer: "::1", forwardedFor: ["2001:db8::7"]) == "2001:db8::7")
        #expect(proxies.clientIP(peer: "10.1.2.3", forwardedFor: ["not-an-ip"]) == "10.1.2.3")
        #expect(proxies.clientIP(peer: "10.1.2.3", forwardedFor: []) == "10.1.2.3")
        #expect(TrustedProxies.none.clientIP(peer: "127.0.0.1", forwardedFor: ["1.2.3.4"]) == "127.0.0.1")
        #expect(throws: ConfigurationError.self) { try TrustedProxies(cidrs: ["10.0.0.0/33"]) }
        #expect(throws: ConfigurationError.self) { try TrustedProxies(cidrs: ["nope"]) }
    }
}

@Suite("Decision cache")
struct DecisionCacheTests {
    let key = DecisionCache.Key(subject: "user:a", tenant: "t", resource: "app", action: "read")

    @Test("kept for the policy version it was decided under and at most its lifetime; a new version empties it; a stale store is dropped")
    func versions() {
        let cache = DecisionCache(capacity: 10, lifetime: .seconds(1))
        let v1 = PolicyVersion(version: 1, mode: "on")
        let now = ContinuousClock.now
        cache.store(self.key, under: nil, now: now)
        #expect(!cache.allowed(self.key, now: now), "kept before any version was known")
        cache.observe(v1)
        cache.store(self.key, under: v1, now: now)
        #expect(cache.allowed(self.key, now: now + .milliseconds(900)))
        #expect(!cache.allowed(self.key, now: now + .milliseconds(1001)), "kept past its lifetime")
        cache.store(self.key, under: v1, now: now)
        cache.observe(PolicyVersion(version: 2, mode: "on"))
        #expect(!cache.allowed(self.key, now: now), "kept across a policy change")
        cache.store(self.key, under: v1, now: now)
        #expect(!cache.allowed(self.key, now: now), "a decision made under the old version was kept")
        cache.observe(PolicyVersion(version: 2, mode: "log"))
        #expect(cache.count == 0)
        cache.observe(nil)
        cache.store(self.key, under: nil, now: now)
        #expect(cache.count == 0, "kept while authz does not answer")
    }

    @Test("bounded: a full cache drops expired entries, then everything")
    func bounded() {
        let cache = DecisionCache(capacity: 3, lifetime: .seconds(1))
        let v = PolicyVersion(version: 7, mode: "on")
        cache.observe(v)
        let now = ContinuousClock.now
        for index in 0..<10 {
            cache.store(DecisionCache.Key(subject: "user:\(index)", tenant: "t", resource: "app", action: "read"), under: v, now: now)
            #expect(cache.count <= 3)
        }
        #expect(DecisionCache(capacity: 0).isEnabled == false)
    }
}
