import Foundation
import NIOCore
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

    @Test("authz's decisions: its own form read from the bytes, any other valid JSON decoded, anything else nil")
    func decisions() throws {
        for allowed in [true, false] {
            for (mode, enforced) in [("on", true), ("log", false), ("off", false)] {
                let text = #"{"allowed":\#(allowed),"mode":"\#(mode)","enforced":\#(enforced)}"#
                #expect(GatewayFastLane.decision(ByteBuffer(string: text)) == EnforceDecision(allowed: allowed, mode: mode, enforced: enforced))
                let plain = Array(text.utf8).withUnsafeBytes { GatewayFastLane.plainDecision($0) }
                #expect(plain == EnforceDecision(allowed: allowed, mode: mode, enforced: enforced), "\(text)")
            }
        }
        // Other key orders, spacing and explanations go through JSONDecoder.
        let reordered = #"{ "mode": "on", "enforced": true, "allowed": false, "explain": ["no policy"] }"#
        #expect(Array(reordered.utf8).withUnsafeBytes { GatewayFastLane.plainDecision($0) } == nil)
        #expect(
            GatewayFastLane.decision(ByteBuffer(string: reordered))
                == EnforceDecision(allowed: false, mode: "on", enforced: true, explain: ["no policy"]))
        for broken in ["", "{", #"{"allowed":true,"mode":"on","enforced":true}x"#, #"{"allowed":maybe,"mode":"on","enforced":true}"#, "null"] {
            #expect(GatewayFastLane.decision(ByteBuffer(string: broken)) == nil, "\(broken)")
        }
    }

    @Test("the enforce body is EnforceRequest's JSON, escaped")
    func enforceBody() throws {
        let key = DecisionCache.Key(subject: #"user:"quoted"\x"#, tenant: "t\u{e9}", resource: "app", action: "read")
        let body = GatewayFastLane.enforceBody(key)
        let decoded = try JSONDecoder().decode(EnforceRequest.self, from: Data(buffer: body))
        #expect(decoded == EnforceRequest(subject: key.subject, tenant: key.tenant, resource: "app", action: "read"))
    }
}
