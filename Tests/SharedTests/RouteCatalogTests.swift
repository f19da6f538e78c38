import Foundation
import Testing

@testable import Shared

@Suite("Route catalog")
struct RouteCatalogTests {
    @Test("a catalog route matches its method and path")
    func matchesRoute() throws {
        guard case .route(let route, let parameters) = RouteCatalog.match(method: "GET", path: "/api/v1/apps") else {
            Issue.record("expected a route")
            return
        }
        #expect(route.service == .media)
        #expect(route.permission == Permission(resource: "app", action: "read"))
        #expect(route.enveloped)
        #expect(parameters.isEmpty)
    }

    @Test("HEAD is served by the GET route")
    func headMatchesGet() {
        if case .route(let route, _) = RouteCatalog.match(method: "HEAD", path: "/api/v1/health") {
            #expect(route.method == "GET")
        } else {
            Issue.record("HEAD /api/v1/health did not match")
        }
    }

    @Test("a known path with the wrong method is 405 with the allowed methods, HEAD included where GET is")
    func wrongMethod() {
        #expect(RouteCatalog.match(method: "DELETE", path: "/api/v1/apps") == .methodNotAllowed(allowed: ["GET", "HEAD", "POST"]))
        #expect(RouteCatalog.match(method: "POST", path: "/api/v1/auth/me") == .methodNotAllowed(allowed: ["GET", "HEAD"]))
        #expect(RouteCatalog.match(method: "PUT", path: "/api/v1/authz/check") == .methodNotAllowed(allowed: ["POST"]))
    }

    @Test("unknown paths do not match", arguments: ["/api/v1/nope", "/api/v1/apps/x/y/z", "/", "/api/v2/apps", "/internal/v1/health"])
    func unknown(path: String) {
        #expect(RouteCatalog.match(method: "GET", path: path) == .notFound)
    }

    @Test("parameters bind one segment")
    func parameters() {
        let pattern = "/api/v1/apps/:app/play-token/:room".split(separator: "/")
        #expect(RouteCatalog.matchSegments(pattern, "/api/v1/apps/a1/play-token/r9".split(separator: "/")) == ["app": "a1", "room": "r9"])
        #expect(RouteCatalog.matchSegments(pattern, "/api/v1/apps/a1/play-token".split(separator: "/")) == nil)
    }

    @Test("media mounts cover the mount and everything under it, nothing else")
    func mounts() {
        #expect(RouteCatalog.isMediaMount("/hls/live/index.m3u8"))
        #expect(RouteCatalog.isMediaMount("/play"))
        #expect(!RouteCatalog.isMediaMount("/hlsx/file"))
        #expect(!RouteCatalog.isMediaMount("/api/v1/apps"))
    }

    @Test("every catalog route is unique and every protected route declares a permission")
    func catalogIsConsistent() {
        let keys = RouteCatalog.routes.map { "\($0.method) \($0.path)" }
        #expect(Set(keys).count == keys.count)
        for route in RouteCatalog.routes where route.auth == .authenticated {
            #expect(route.permission != nil, "\(route.path) has no permission")
        }
    }
}

@Suite("Wire types")
struct WireTypeTests {
    @Test("the error body has exactly the NestJS keys")
    func errorBody() throws {
        let data = try JSONEncoder().encode(ErrorBody.invalidApiToken)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["statusCode", "message", "error"])
        #expect(object["statusCode"] as? Int == 401)
        #expect(object["message"] as? String == "Invalid or revoked API token")
        #expect(object["error"] as? String == "Unauthorized")
    }

    @Test("retryAfterSeconds is written only when set")
    func retryAfter() throws {
        let body = ErrorBody(statusCode: 429, message: "Please wait 42s before requesting another link.", retryAfterSeconds: 42)
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(body)) as? [String: Any])
        #expect(object["error"] as? String == "Too Many Requests")
        #expect(object["retryAfterSeconds"] as? Int == 42)
    }

    @Test("the envelope always carries error: null")
    func envelope() throws {
        let text = String(decoding: try JSONEncoder().encode(Envelope(data: [Int]())), as: UTF8.self)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["error"] is NSNull)
        #expect((object["data"] as? [Any])?.isEmpty == true)
    }

    @Test("permissions parse resource:action and nothing else", arguments: ["app:read", "stream:write"])
    func permissionParses(text: String) throws {
        let permission = try #require(Permission(parsing: text))
        #expect(permission.description == text)
    }

    @Test("malformed permissions are rejected", arguments: ["app", ":read", "app:", "a:b:c", ""])
    func permissionRejects(text: String) {
        #expect(Permission(parsing: text) == nil)
    }

    @Test("only global tokens and superadmins bypass authorization")
    func bypass() {
        #expect(Principal(kind: .apiToken, scope: .global, subject: "token:1").bypassesAuthorization)
        #expect(!Principal(kind: .apiToken, scope: .app, subject: "token:1", appId: "a").bypassesAuthorization)
        #expect(Principal(kind: .user, scope: .global, subject: "user:1", superadmin: true).bypassesAuthorization)
        #expect(!Principal(kind: .user, scope: .tenant, subject: "user:1", tenantId: "t").bypassesAuthorization)
        #expect(!Principal.anonymous.bypassesAuthorization)
    }
}
