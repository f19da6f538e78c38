import AsyncHTTPClient
import Foundation
import ServiceKit
import Shared
import TestSupport
import Testing

extension RealExecutables {
    /// The authorization chain through the real executables: gateway → authz decisions, policy
    /// administration through the gateway, enforcement mode `on`.
    @Suite("Authorization end to end", .serialized)
    struct AuthzEndToEndTests {
        @Test("enforce on: an app token minted by the owner works at once on its app (it holds member in the tenant); revoked, its role goes too")
        func appTokenRole() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let json = ("Content-Type", "application/json")
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [json], body: #"{"email":"tok@example.com","password":"correct horse battery"}"#)
                let session = try #require(try signup.json()["data"] as? [String: Any])
                let owner = ("Authorization", "Bearer " + (try #require(session["token"] as? String)))
                let tenant = try #require(session["tenantId"] as? String)
                let app = try #require(
                    (try await client.call(base + "/apps", method: "POST", headers: [owner, json], body: #"{"name":"Tok"}"#).json()["data"]
                        as? [String: Any])?["id"] as? String)
                let minted = try await client.call(
                    base + "/tokens", method: "POST", headers: [owner, json], body: #"{"name":"ci","scope":"app","appId":"\#(app)"}"#)
                #expect(minted.status == 201, "\(minted.body)")
                let created = try #require(try minted.json()["data"] as? [String: Any])
                let token = ("Authorization", "Bearer " + (try #require(created["token"] as? String)))
                let tokenId = try #require(created["id"] as? String)
                let read = try await client.call(base + "/apps/\(app)", headers: [token])
                #expect(read.status == 200, "\(read.body)")
                let opened = try await client.call(base + "/apps/\(app)/streams", method: "POST", headers: [token, json], body: #"{"room":"ci"}"#)
                #expect(opened.status == 201, "\(opened.body)")
                func roles() async throws -> [String] {
                    let answer = try await client.call(
                        "http://127.0.0.1:\(stack.ports["authz"]!)/internal/v1/roles/of", method: "POST",
                        headers: [json, ("X-StreamHub-Internal-Token", Stack.internalToken)],
                        body: #"{"subject":"token:\#(tokenId)","tenants":["\#(tenant)"]}"#)
                    return ((try answer.json()["roles"] as? [String: Any])?[tenant] as? [String]) ?? []
                }
                #expect(try await roles() == ["member"])
                #expect(try await client.call(base + "/tokens/\(tokenId)", method: "DELETE", headers: [owner]).status == 200)
                try await Stack.waitFor(deadline: .seconds(5), "the revoked token's role to go") { try await roles().isEmpty }
            }
        }

        @Test("enforce on: a member without a role gets 403; once an admin assigns one, 200")
        func enforcementThroughGateway() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL
                let token = try await stack.seedToken(name: "e2e").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let t1 = try await stack.newTenant(client)
                let session = Stack.session(sub: "ann", tenantId: t1)

                let denied = try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer \(session)")])
                #expect(denied.status == 403)
                #expect(denied.body == #"{"statusCode":403,"message":"Forbidden resource","error":"Forbidden","permission":"app:read"}"#)

                // The platform operator's global token administers tenant t1's policy.
                let assigned = try await client.call(
                    base + "/api/v1/authz/roles?tenant=\(t1)", method: "POST",
                    headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: #"{"user":"user:ann","role":"viewer"}"#
                )
                #expect(assigned.status == 201)
                let envelope = try assigned.json()
                #expect(envelope["error"] is NSNull)
                #expect((envelope["data"] as? [String: Any])?["changed"] as? Int == 1)

                let allowed = try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer \(session)")])
                #expect(allowed.status == 200)
                #expect(allowed.body == #"{"data":[],"error":null}"#)

                // ann is a viewer: reading policy is not hers; checking explains why.
                let check = try await client.call(
                    base + "/api/v1/authz/check?tenant=\(t1)", method: "POST",
                    headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                    body: #"{"subject":"user:ann","resource":"app","action":"read"}"#
                )
                let data = try #require(try check.json()["data"] as? [String: Any])
                #expect(data["allowed"] as? Bool == true)
                #expect(data["explain"] as? [String] == ["viewer", "*", "app", "read"])
                let policyRead = try await client.call(base + "/api/v1/authz/policies", headers: [("Authorization", "Bearer \(session)")])
                #expect(policyRead.status == 403)

                let badJSON = try await client.call(
                    base + "/api/v1/authz/roles?tenant=\(t1)", method: "POST",
                    headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: #"{"user":"#
                )
                #expect(badJSON.status == 400)
            }
        }

        @Test("an admin cannot make itself owner nor remove the owner; roles are granted only up to the granter's own, in every mode",
              arguments: ["on", "log"])
        func noEscalationPastOwnRole(mode: String) async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": mode]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let json = ("Content-Type", "application/json")
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [json], body: #"{"email":"owner-esc@example.com","password":"correct horse battery"}"#)
                let data = try #require(try signup.json()["data"] as? [String: Any])
                let tenant = try #require(data["tenantId"] as? String)
                let ownerId = try #require((data["user"] as? [String: Any])?["id"] as? String)
                let owner = ("Authorization", "Bearer " + (try #require(data["token"] as? String)))
                // The owner makes bob an admin and carl a viewer of the tenant.
                for (user, role) in [("bob", "admin"), ("carl", "viewer")] {
                    let granted = try await client.call(
                        base + "/authz/roles", method: "POST", headers: [owner, json], body: #"{"user":"user:\#(user)","role":"\#(role)"}"#)
                    #expect(granted.status == 201, "\(granted.body)")
                }
                let bob = ("Authorization", "Bearer " + Stack.session(sub: "bob", tenantId: tenant))
                let carl = ("Authorization", "Bearer " + Stack.session(sub: "carl", tenantId: tenant))

                let selfOwner = try await client.call(
                    base + "/authz/roles", method: "POST", headers: [bob, json], body: #"{"user":"user:bob","role":"owner"}"#)
                #expect(selfOwner.status == 403, "\(selfOwner.body)")
                let lockOut = try await client.call(base + "/authz/roles?user=user:\(ownerId)&role=owner", method: "DELETE", headers: [bob])
                #expect(lockOut.status == 403, "\(lockOut.body)")
                #expect(try lockOut.json()["message"] as? String == "The owner role is removed only by a platform operator or an ownership transfer")
                let viaImport = try await client.call(
                    base + "/authz/import", method: "POST", headers: [bob, ("Content-Type", "text/csv")], body: "g, user:bob, owner, \(tenant)\n")
                #expect(viaImport.status == 403, "\(viaImport.body)")
                let viewerToAdmin = try await client.call(
                    base + "/authz/roles", method: "POST", headers: [carl, json], body: #"{"user":"user:carl","role":"admin"}"#)
                #expect(viewerToAdmin.status == 403, "\(viewerToAdmin.body)")
                // Up to its own rank an admin still administers.
                let member = try await client.call(
                    base + "/authz/roles", method: "POST", headers: [bob, json], body: #"{"user":"user:dan","role":"member"}"#)
                #expect(member.status == 201, "\(member.body)")
                // The owner is still owner.
                let roles = try #require(try await client.call(base + "/authz/roles", headers: [owner]).json()["data"] as? [String: Any])
                let assignments = try #require(roles["roles"] as? [[String: Any]])
                #expect(assignments.contains { $0["user"] as? String == "user:\(ownerId)" && $0["role"] as? String == "owner" })
                #expect(!assignments.contains { $0["user"] as? String == "user:bob" && $0["role"] as? String == "owner" })
            }
        }

        @Test("the gateway's decision cache answers repeated checks without authz; a role revoked or granted is in force within 1 s")
        func decisionCache() async throws {
            let metricsToken = "metrics-token-for-e2e-0123456789"
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on", "METRICS_TOKEN": metricsToken]) { stack, client in
                let t9 = try await stack.newTenant(client)
                let base = stack.gatewayURL
                let token = try await stack.seedToken(name: "e2e").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let admin = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]
                let session = ("Authorization", "Bearer " + Stack.session(sub: "cached", tenantId: t9))
                let role = #"{"user":"user:cached","role":"viewer"}"#
                #expect(try await client.call(base + "/api/v1/authz/roles?tenant=\(t9)", method: "POST", headers: admin, body: role).status == 201)
                try await Stack.waitFor(deadline: .seconds(2), "the grant to be in force") {
                    try await client.call(base + "/api/v1/apps", headers: [session]).status == 200
                }
                func decisions() async throws -> Int {
                    let text = try await client.call(
                        "http://127.0.0.1:\(stack.ports["authz"]!)/metrics", headers: [("Authorization", "Bearer \(metricsToken)")]).body
                    return text.split(separator: "\n").filter { $0.hasPrefix("streamhub_authz_decisions_total") }
                        .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0) { $0 + Int($1) }
                }
                let before = try await decisions()
                for _ in 0..<50 { #expect(try await client.call(base + "/api/v1/apps", headers: [session]).status == 200) }
                let asked = try await decisions() - before
                print("decision cache: 50 checks, \(asked) reached authz")
                #expect(asked < 25, "\(asked) of 50 checks reached authz")
                let gatewayMetrics = try await client.call(base + "/metrics", headers: [("Authorization", "Bearer \(metricsToken)")]).body
                #expect(gatewayMetrics.contains("streamhub_authz_decision_cache_hits_total"))

                // Revoked: refused within 1 s although the allow was cached.
                #expect(
                    try await client.call(base + "/api/v1/authz/roles?tenant=\(t9)&user=user:cached&role=viewer", method: "DELETE", headers: admin).status == 200)
                let revoked = ContinuousClock.now
                try await Stack.waitFor(deadline: .seconds(1), "the revocation to be in force within 1 s") {
                    try await client.call(base + "/api/v1/apps", headers: [session]).status == 403
                }
                print("decision cache: revocation in force after \(ContinuousClock.now - revoked)")
                // Denials are never cached: granted again, allowed within 1 s.
                #expect(try await client.call(base + "/api/v1/authz/roles?tenant=\(t9)", method: "POST", headers: admin, body: role).status == 201)
                try await Stack.waitFor(deadline: .seconds(1), "the new grant to be in force within 1 s") {
                    try await client.call(base + "/api/v1/apps", headers: [session]).status == 200
                }
            }
        }

        @Test("enforce log: the request goes on; authz logs the would-be denial with the gateway's request id and counts it")
        func logModeThroughGateway() async throws {
            let metricsToken = "e2e-metrics-token-0123456789abcdefgh"
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "log", "LOG_LEVEL": "notice", "METRICS_TOKEN": metricsToken]) { stack, client in
                let session = Stack.session(sub: "ann", tenantId: "t1")
                let response = try await client.call(
                    stack.gatewayURL + "/api/v1/apps", headers: [("Authorization", "Bearer \(session)"), ("X-Request-Id", "e2e-log-1")])
                #expect(response.status == 200)
                #expect(response.header("X-Request-Id") == "e2e-log-1")
                let line = try #require(stack.log("authz").split(separator: "\n").first { $0.contains(#""msg":"would deny""#) })
                let fields = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(fields["subject"] as? String == "user:ann")
                #expect(fields["tenant"] as? String == "t1")
                #expect(fields["permission"] as? String == "app:read")
                #expect(fields["request_id"] as? String == "e2e-log-1")
                let metrics = try await client.call(
                    "http://127.0.0.1:\(stack.ports["authz"]!)/metrics", headers: [("Authorization", "Bearer \(metricsToken)")])
                #expect(metrics.body.contains(#"streamhub_authz_denials_total{service="authz",mode="log"} 1"#))
            }
        }

        /// A dashboard session for a user with no role anywhere.
        static func roleless() -> String {
            return Stack.session(sub: "nobody", tenantId: "t1")
        }

        static let metricsToken = "e2e-metrics-token-0123456789abcdefgh"

        func metric(_ client: HTTPClient, _ stack: Stack, _ service: String) async throws -> String {
            try await client.call("http://127.0.0.1:\(stack.ports[service]!)/metrics", headers: [("Authorization", "Bearer \(Self.metricsToken)")]).body
        }

        @Test(
            "authz owns the mode: gateway on/authz log proceeds, gateway log/authz on is 403, gateway on/authz off proceeds; one denial logged and counted once",
            arguments: [("on", "log", 200), ("log", "on", 403), ("on", "off", 200)])
        func enforcementMismatch(gateway: String, authz: String, expected: Int) async throws {
            try await Stack.with(
                extra: ["LOG_LEVEL": "notice", "METRICS_TOKEN": Self.metricsToken],
                perService: ["gateway": ["STREAMHUB_AUTHZ_ENFORCE": gateway], "authz": ["STREAMHUB_AUTHZ_ENFORCE": authz]]
            ) { stack, client in
                let requestID = "mismatch-\(gateway)-\(authz)"
                let response = try await client.call(
                    stack.gatewayURL + "/api/v1/apps", headers: [("Authorization", "Bearer \(Self.roleless())"), ("X-Request-Id", requestID)])
                #expect(response.status == expected)
                let denialLines = stack.log("authz").split(separator: "\n").filter { $0.contains(#""msg":"would deny""#) || $0.contains(#""msg":"denied""#) }
                // (The mode line every service says at start names denials too; it is no denial.)
                let gatewayDenials = stack.log("gateway").split(separator: "\n").filter { $0.contains("deni") && !$0.contains("authorization mode:") }
                #expect(gatewayDenials.isEmpty, "the gateway logged a denial: \(gatewayDenials)")
                let gatewayMetrics = try await self.metric(client, stack, "gateway")
                #expect(!gatewayMetrics.contains("streamhub_authz_denials_total{"))
                let authzMetrics = try await self.metric(client, stack, "authz")
                if authz == "off" {
                    #expect(denialLines.isEmpty)
                    #expect(!authzMetrics.contains(#"streamhub_authz_denials_total{service="authz",mode="off"} 1"#))
                } else {
                    #expect(denialLines.count == 1)
                    let line = try #require(denialLines.first)
                    let fields = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                    #expect(fields["request_id"] as? String == requestID)
                    #expect(fields["subject"] as? String == "user:nobody")
                    #expect(authzMetrics.contains(#"streamhub_authz_denials_total{service="authz",mode="\#(authz)"} 1"#))
                }
            }
        }

        @Test("authz stopped: gateway on answers 503, gateway log lets the request on; both count the outage")
        func authzStopped() async throws {
            for (gateway, expected) in [("on", 503), ("log", 200)] {
                try await Stack.with(
                    extra: ["METRICS_TOKEN": Self.metricsToken], perService: ["gateway": ["STREAMHUB_AUTHZ_ENFORCE": gateway]]
                ) { stack, client in
                    try await stack.stop("authz")
                    let response = try await client.call(stack.gatewayURL + "/api/v1/apps", headers: [("Authorization", "Bearer \(Self.roleless())")])
                    #expect(response.status == expected, "gateway \(gateway)")
                    if expected == 503 {
                        #expect(try response.json()["message"] as? String == "Authorization service is unavailable")
                    }
                    #expect(try await self.metric(client, stack, "gateway").contains(#"streamhub_authz_unavailable_total{service="gateway"} 1"#))
                }
            }
        }

        @Test("the documented examples (docs/authz.md, Subjects and examples) do what the docs say")
        func documentedExamples() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let token = try await stack.seedToken(name: "docs").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let base = stack.gatewayURL
                let t1 = try await stack.newTenant(client)
                let auth = ("Authorization", "Bearer \(token)")
                let json = ("Content-Type", "application/json")
                let assigned = try await client.call(
                    base + "/api/v1/authz/roles?tenant=\(t1)", method: "POST", headers: [auth, json], body: #"{"user":"user:42","role":"viewer"}"#)
                let assignedData = try #require(try assigned.json()["data"] as? [String: Any])
                #expect(assignedData["tenant"] as? String == t1 && assignedData["changed"] as? Int == 1)
                let granted = try await client.call(
                    base + "/api/v1/authz/policies?tenant=\(t1)", method: "POST", headers: [auth, json],
                    body: #"{"subject":"token:7","resource":"stream","action":"write"}"#)
                #expect(granted.status == 201)
                let check = try await client.call(
                    base + "/api/v1/authz/check?tenant=\(t1)", method: "POST", headers: [auth, json],
                    body: #"{"subject":"user:42","resource":"app","action":"read"}"#)
                let checked = try #require(try check.json()["data"] as? NSDictionary)
                #expect(checked == ["tenant": t1, "allowed": true, "explain": ["viewer", "*", "app", "read"], "roles": ["viewer"]] as NSDictionary)
                // The user the JWT names is the subject the docs assign: user 42 now reads apps in t1.
                let session = Stack.session(sub: "42", tenantId: t1)
                #expect(try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer \(session)")]).status == 200)
                let removed = try await client.call(base + "/api/v1/authz/roles?tenant=\(t1)&user=user:42&role=viewer", method: "DELETE", headers: [auth])
                #expect((try removed.json()["data"] as? [String: Any])?["changed"] as? Int == 1)
                let again = try await client.call(base + "/api/v1/authz/roles?tenant=\(t1)&user=user:42&role=viewer", method: "DELETE", headers: [auth])
                #expect(again.status == 200)
                #expect((try again.json()["data"] as? [String: Any])?["changed"] as? Int == 0)
                // In force at the gateway within 1 s (its decision cache keeps an allow at most that long).
                try await Stack.waitFor(deadline: .seconds(1), "the removed role to be refused") {
                    try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer \(session)")]).status == 403
                }
            }
        }

        @Test("streamhub-authz eval answers one JSON line per request, errors included")
        func evalCommand() throws {
            let dir = try TestDatabases.temporaryDirectory()
            try """
            [request_definition]
            r = sub, dom, obj, act
            [policy_definition]
            p = sub, dom, obj, act
            [role_definition]
            g = _, _, _
            [policy_effect]
            e = some(where (p.eft == allow))
            [matchers]
            m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && keyMatch2(r.obj, p.obj) && r.act == p.act
            """.write(toFile: dir + "/model.conf", atomically: true, encoding: .utf8)
            try "p, admin, t1, /apps/:id, read\ng, alice, admin, t1\n".write(toFile: dir + "/policy.csv", atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Stack.binary("streamhub-authz"))
            process.arguments = ["eval", "--model", dir + "/model.conf", "--policy", dir + "/policy.csv", "--explain"]
            let input = Pipe()
            let output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            input.fileHandleForWriting.write(
                Data("[\"alice\",\"t1\",\"/apps/7\",\"read\"]\n[\"bob\",\"t1\",\"/apps/7\",\"read\"]\n{\"not\":\"an array\"}\n[\"alice\"]\n".utf8))
            try input.fileHandleForWriting.close()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            let lines = text.split(separator: "\n").map(String.init)
            #expect(lines.count == 4)
            #expect(lines.first == #"{"allowed":true,"explain":["admin","t1","/apps/:id","read"]}"#)
            #expect(lines.dropFirst().first == #"{"allowed":false,"explain":[]}"#)
            #expect(lines.dropFirst(2).allSatisfy { $0.hasPrefix(#"{"error":"#) })
        }
    }
}
