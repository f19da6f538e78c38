import AsyncHTTPClient
import Foundation
import ServiceKit
import Shared
import TestSupport
import Testing

extension RealExecutables {
    /// API reads by a caller whose principal and decision the gateway has cached are answered on
    /// the connection's event loop (``GatewayFastLane``); what the client gets must not differ from
    /// the router's answer to the same request.
    @Suite("Gateway event-loop answers", .serialized)
    struct GatewayFastPathEndToEndTests {
        static let metricsToken = "metrics-token-for-e2e-0123456789"

        /// A metric's value summed over its series that carry every one of `labels`.
        static func sum(_ metrics: String, _ name: String, _ labels: [String] = []) -> Double {
            metrics.split(separator: "\n").filter { line in
                (line.hasPrefix(name + "{") || line.hasPrefix(name + " ")) && labels.allSatisfy { line.contains($0) }
            }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
        }

        /// Headers as a client compares them: names lower-cased, `Date` left out (it ticks).
        static func comparable(_ result: HTTPResult) -> [String] {
            result.headers.filter { $0.0.lowercased() != "date" }.map { "\($0.0.lowercased()): \($0.1)" }.sorted()
        }

        @Test("a cached caller's reads: the router's status, headers and body, counted in the same metrics; pipelined answers keep their order")
        func sameAnswers() async throws {
            let extra = [
                "STREAMHUB_AUTHZ_ENFORCE": "on", "METRICS_TOKEN": Self.metricsToken, "STREAMHUB_CORS_ORIGINS": "https://dash.example", "LOG_LEVEL": "info",
            ]
            try await Stack.with(extra: extra) { stack, client in
                let base = stack.gatewayURL
                let t9 = try await stack.newTenant(client)
                let token = try await stack.seedToken(name: "e2e").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let admin = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]
                #expect(
                    try await client.call(
                        base + "/api/v1/authz/roles?tenant=\(t9)", method: "POST", headers: admin, body: #"{"user":"user:fast","role":"viewer"}"#
                    ).status == 201)
                let session = "Bearer " + Stack.session(sub: "fast", tenantId: t9)
                try await Stack.waitFor(deadline: .seconds(2), "the grant to be in force") {
                    try await client.call(base + "/api/v1/apps", headers: [("Authorization", session)]).status == 200
                }
                func metrics() async throws -> String {
                    try await client.call(base + "/metrics", headers: [("Authorization", "Bearer \(Self.metricsToken)")]).body
                }
                let before = try await metrics()

                // The same requests, again and again: the first of each may take the router (nothing
                // cached, no idle upstream connection on that event loop yet), later ones the event
                // loop. Every answer must be the same but for Date.
                let requests: [(path: String, headers: [(String, String)])] = [
                    ("/api/v1/apps", [("Authorization", session), ("X-Request-Id", "fast-1")]),
                    ("/api/v1/apps?limit=5", [("Authorization", session), ("X-Request-Id", "fast-2")]),
                    ("/api/v1/apps/nope", [("Authorization", session), ("X-Request-Id", "fast-3")]),  // media's 404, passed through
                    ("/api/v1/apps", [("Authorization", "Bearer \(token)"), ("X-Request-Id", "fast-4")]),  // a global token
                ]
                let rounds = 15
                for request in requests {
                    var first: HTTPResult?
                    for _ in 0..<rounds {
                        let result = try await client.call(base + request.path, headers: request.headers)
                        guard let first else {
                            first = result
                            continue
                        }
                        #expect(result.status == first.status && result.body == first.body, "\(request.path)")
                        #expect(Self.comparable(result) == Self.comparable(first), "\(request.path)")
                    }
                    let seen = try #require(first)
                    #expect(seen.header("X-Request-Id") == request.headers[1].1)
                    #expect(seen.header("X-Content-Type-Options") == "nosniff" && seen.header("Vary") == "Origin")
                    #expect(seen.header("Server") == "streamhub-gateway")
                    if request.path.hasSuffix("nope") {
                        #expect(seen.status == 404 && seen.body.contains(#""statusCode":404"#), "\(seen.body)")
                    } else {
                        #expect(seen.status == 200 && seen.body == #"{"data":[],"error":null}"#, "\(seen.body)")
                        #expect(seen.header("Cache-Control") == "no-store")
                    }
                }
                let after = try await metrics()
                let onLoop = Self.sum(after, "streamhub_gateway_event_loop_answers_total") - Self.sum(before, "streamhub_gateway_event_loop_answers_total")
                print("gateway event loop: \(Int(onLoop)) of \(requests.count * rounds) reads answered on the event loop")
                #expect(onLoop >= Double(requests.count * (rounds - 5)), "most repeated reads are answered on the event loop")
                // Counted as the router counts: per route pattern and status, credential kinds, cached decisions.
                func delta(_ name: String, _ labels: [String]) -> Double { Self.sum(after, name, labels) - Self.sum(before, name, labels) }
                #expect(delta("streamhub_http_requests_total", [#"route="/api/v1/apps""#, #"method="GET""#, #"status="200""#]) == Double(3 * rounds))
                #expect(delta("streamhub_http_requests_total", [#"route="/api/v1/apps/:app""#, #"status="404""#]) == Double(rounds))
                #expect(delta("streamhub_gateway_credentials_total", [#"kind="jwt""#]) == Double(3 * rounds))
                let hits = "streamhub_authz_decision_cache_hits_total"
                #expect(delta(hits, []) >= Double(3 * (rounds - 5)))
                // The access log names every request, whichever path answered it.
                let lines = stack.log("gateway").split(separator: "\n").filter { $0.contains(#""msg":"request""#) }
                for (index, id) in ["fast-1", "fast-2", "fast-3", "fast-4"].enumerated() {
                    let logged = lines.filter { $0.contains(#""request_id":"\#(id)""#) }
                    #expect(logged.count == rounds, "\(id)")
                    let status = index == 2 ? "404" : "200"
                    #expect(logged.allSatisfy { $0.contains(#""status":"\#(status)""#) && $0.contains(#""method":"GET""#) && $0.contains("duration_ms") })
                }

                // Pipelined on one connection: event-loop answers, the router's, a refusal, in order.
                let port = try #require(stack.ports["gateway"])
                func get(_ path: String, _ credential: String?) -> String {
                    "GET \(path) HTTP/1.1\r\nHost: gw\r\n" + (credential.map { "Authorization: \($0)\r\n" } ?? "") + "\r\n"
                }
                let pipelined = [
                    get("/api/v1/apps", session), get("/api/v1/health", nil), get("/api/v1/apps", session), get("/api/v1/apps", nil),
                    get("/api/v1/apps/nope", session), get("/api/v1/apps", session),
                ].joined()
                let (responses, _) = try await RawHTTP.exchange(port: port, [pipelined], silence: 5)
                #expect(responses.map(\.status) == [200, 200, 200, 401, 404, 200])
                #expect(responses.count == 6 && responses[1].body.contains(#""status":"ok""#))
                #expect(responses.count == 6 && responses[5].body == #"{"data":[],"error":null}"#)
                // A flood in one write: more requests wait behind an upstream call than are held
                // before reading pauses; every one is answered, in order.
                let flood = (0..<150).map { index in
                    "GET /api/v1/apps HTTP/1.1\r\nHost: gw\r\nAuthorization: \(session)\r\nX-Request-Id: flood-\(index)\r\n\r\n"
                }.joined()
                let (flooded, _) = try await RawHTTP.exchange(port: port, [flood], silence: 3)
                #expect(flooded.count == 150 && flooded.allSatisfy { $0.status == 200 })
                #expect(flooded.map { $0.headers["x-request-id"] ?? "" } == (0..<150).map { "flood-\($0)" })

                // Clients that hang up while their reads wait on upstreams (some pipelined behind
                // others): nothing is answered to them, nothing breaks for the next client.
                for index in 0..<20 {
                    try RawHTTP.sendAndHangUp(port: port, String(repeating: get("/api/v1/apps", session), count: 1 + index % 4))
                }
                let afterHangUps = try await client.call(base + "/api/v1/apps", headers: [("Authorization", session)])
                #expect(afterHangUps.status == 200 && afterHangUps.body == #"{"data":[],"error":null}"#)

                // Media killed and back on its port: the gateway's kept connections to it are dead.
                // Reads made while it is down (the hung-up clients' may still be running) can open
                // the breaker; it closes by itself within 2 s of media being back. Then every read
                // succeeds — a dead kept connection is dropped with the others, or the read goes to
                // the router, which connects anew — and the event loop takes over again.
                try await stack.kill9("media")
                try await stack.restart("media", client: client)
                try await Stack.waitFor(deadline: .seconds(2), "reads to succeed again once media is back") {
                    try await client.call(base + "/api/v1/apps", headers: [("Authorization", session)]).status == 200
                }
                let beforeReads = Self.sum(try await metrics(), "streamhub_gateway_event_loop_answers_total")
                for _ in 0..<5 {
                    let result = try await client.call(base + "/api/v1/apps", headers: [("Authorization", session)])
                    #expect(result.status == 200 && result.body == #"{"data":[],"error":null}"#, "\(result.status) \(result.body)")
                }
                #expect(Self.sum(try await metrics(), "streamhub_gateway_event_loop_answers_total") - beforeReads >= 3)

                // A revoked role is in force within 1 s on the event loop too (the cache empties).
                #expect(
                    try await client.call(
                        base + "/api/v1/authz/roles?tenant=\(t9)&user=user:fast&role=viewer", method: "DELETE", headers: admin
                    ).status == 200)
                try await Stack.waitFor(deadline: .seconds(1), "the revocation to be in force within 1 s") {
                    try await client.call(base + "/api/v1/apps", headers: [("Authorization", session)]).status == 403
                }
            }
        }

        @Test("without the decision cache: authz is asked on the event loop, once per request; a denial is the router's 403")
        func decisionsOnTheEventLoop() async throws {
            let extra = ["STREAMHUB_AUTHZ_ENFORCE": "on", "METRICS_TOKEN": Self.metricsToken, "GATEWAY_DECISION_CACHE_SIZE": "0"]
            try await Stack.with(extra: extra) { stack, client in
                let base = stack.gatewayURL
                let t9 = try await stack.newTenant(client)
                let token = try await stack.seedToken(name: "e2e").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let admin = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]
                let session = "Bearer " + Stack.session(sub: "asked", tenantId: t9)
                // Before any grant: denied, first by the router (nothing cached), then on the event loop.
                var denials: [HTTPResult] = []
                for _ in 0..<8 { denials.append(try await client.call(base + "/api/v1/apps", headers: [("Authorization", session)])) }
                #expect(denials.allSatisfy { $0.status == 403 && $0.body == denials[0].body })
                #expect(Set(denials.map(Self.comparable).map { $0.filter { !$0.hasPrefix("x-request-id") } }).count == 1)
                #expect(denials[0].body == #"{"statusCode":403,"message":"Forbidden resource","error":"Forbidden","permission":"app:read"}"#)

                #expect(
                    try await client.call(
                        base + "/api/v1/authz/roles?tenant=\(t9)", method: "POST", headers: admin, body: #"{"user":"user:asked","role":"viewer"}"#
                    ).status == 201)
                func metrics(_ port: Int) async throws -> String {
                    try await client.call("http://127.0.0.1:\(port)/metrics", headers: [("Authorization", "Bearer \(Self.metricsToken)")]).body
                }
                let gatewayPort = try #require(stack.ports["gateway"])
                let authzPort = try #require(stack.ports["authz"])
                let (gatewayBefore, authzBefore) = (try await metrics(gatewayPort), try await metrics(authzPort))
                let rounds = 20
                var answers: [HTTPResult] = []
                for _ in 0..<rounds { answers.append(try await client.call(base + "/api/v1/apps", headers: [("Authorization", session)])) }
                #expect(answers.allSatisfy { $0.status == 200 && $0.body == #"{"data":[],"error":null}"# })
                #expect(Set(answers.map(Self.comparable).map { $0.filter { !$0.hasPrefix("x-request-id") } }).count == 1)
                let (gatewayAfter, authzAfter) = (try await metrics(gatewayPort), try await metrics(authzPort))
                let onLoop = Self.sum(gatewayAfter, "streamhub_gateway_event_loop_answers_total") - Self.sum(gatewayBefore, "streamhub_gateway_event_loop_answers_total")
                print("gateway event loop, no decision cache: \(Int(onLoop)) of \(rounds) reads answered on the event loop")
                #expect(onLoop >= Double(rounds - 5))
                // Each request asked authz exactly once, whichever path answered it; all counted as allowed.
                let asked = Self.sum(authzAfter, "streamhub_authz_decisions_total") - Self.sum(authzBefore, "streamhub_authz_decisions_total")
                #expect(asked == Double(rounds), "authz decided \(asked) times for \(rounds) requests")
                let allowed =
                    Self.sum(gatewayAfter, "streamhub_gateway_authz_outcomes_total", [#"outcome="allowed""#])
                    - Self.sum(gatewayBefore, "streamhub_gateway_authz_outcomes_total", [#"outcome="allowed""#])
                #expect(allowed == Double(rounds))
                #expect(Self.sum(gatewayAfter, "streamhub_authz_decision_cache_hits_total") == 0)

                // Revoked: the very next request is refused (nothing is cached).
                #expect(
                    try await client.call(
                        base + "/api/v1/authz/roles?tenant=\(t9)&user=user:asked&role=viewer", method: "DELETE", headers: admin
                    ).status == 200)
                try await Stack.waitFor(deadline: .seconds(1), "the revocation to be in force") {
                    try await client.call(base + "/api/v1/apps", headers: [("Authorization", session)]).status == 403
                }
            }
        }
    }
}
