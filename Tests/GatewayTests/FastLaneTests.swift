import Testing

@testable import GatewayApp
@testable import Shared

@Suite("Gateway event-loop lane: which requests it may take")
struct FastLaneTests {
    @Test("a plain API path's catalog route and :app, the same every time; remembered answers agree with the catalog")
    func routes() throws {
        let routes = GatewayFastLane.Routes()
        for _ in 0..<3 {
            let app = try #require(routes.route("/api/v1/apps/a1"))
            #expect(app.route.path == "/api/v1/apps/:app" && app.app == "a1")
            let list = try #require(routes.route("/api/v1/apps"))
            #expect(list.route.path == "/api/v1/apps" && list.app == nil)
            // The gateway's own routes, public ones, aggregated ones and unknown paths: the router's.
            #expect(routes.route("/api/v1/health") == nil)
            #expect(routes.route("/api/v1/tenants/t1/usage") == nil)
            #expect(routes.route("/api/v1/nope") == nil)
        }
        // Past its capacity the memo starts over and still answers as the catalog does; paths too
        // long to remember are matched every time.
        for index in 0...GatewayFastLane.Routes.capacity { _ = routes.route("/api/v1/apps/app-\(index)") }
        #expect(routes.route("/api/v1/apps/app-7")?.app == "app-7")
        let long = "/api/v1/apps/" + String(repeating: "x", count: GatewayFastLane.Routes.maxPathBytes)
        #expect(routes.route(long)?.app == String(repeating: "x", count: GatewayFastLane.Routes.maxPathBytes))
    }

    @Test("only plain targets under /api/v1/: no escapes, dot or empty segments, fragments")
    func plainTargets() throws {
        let split = try #require(GatewayFastLane.plainTarget("/api/v1/apps?limit=5&cursor=abc"))
        #expect(split.path == "/api/v1/apps" && split.query == "limit=5&cursor=abc")
        #expect(GatewayFastLane.plainTarget("/api/v1/apps")?.query == "")
        for target in [
            "/api/v1//apps", "/api/v1/./apps", "/api/v1/apps/../x", "/api/v1/a%20b", "/api/v1/apps#x", "/other", "/api/v1/apps?q=%41",
            "/api/v1/\u{e9}",
        ] {
            #expect(GatewayFastLane.plainTarget(target) == nil, "\(target)")
        }
    }
}
