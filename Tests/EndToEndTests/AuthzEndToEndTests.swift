import AsyncHTTPClient
import Foundation
import GatewayApp
import Shared
import TestSupport
import Testing

/// The authorization chain through the real executables: gateway → authz decisions, policy
/// administration through the gateway, enforcement mode `on`.
@Suite("Authorization end to end", .serialized)
struct AuthzEndToEndTests {
    @Test("enforce on: a member without a role gets 403; once an admin assigns one, 200")
    func enforcementThroughGateway() async throws {
        try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
            let base = stack.gatewayURL
            let token = try stack.seedToken(name: "e2e").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let now = Int64(Date().timeIntervalSince1970)
            let session = SessionTokenVerifier(secret: Stack.jwtSecret).sign(SessionClaims(sub: "ann", tenantId: "t1", iat: now, exp: now + 600))

            let denied = try await client.call(base + "/api/v1/apps", headers: [("Authorization", "Bearer \(session)")])
            #expect(denied.status == 403)
            #expect(denied.body == #"{"statusCode":403,"message":"Forbidden resource","error":"Forbidden"}"#)

            // The platform operator's global token administers tenant t1's policy.
            let assigned = try await client.call(
                base + "/api/v1/authz/roles?tenant=t1", method: "POST",
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
                base + "/api/v1/authz/check?tenant=t1", method: "POST",
                headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                body: #"{"subject":"user:ann","resource":"app","action":"read"}"#
            )
            let data = try #require(try check.json()["data"] as? [String: Any])
            #expect(data["allowed"] as? Bool == true)
            #expect(data["explain"] as? [String] == ["viewer", "*", "app", "read"])
            let policyRead = try await client.call(base + "/api/v1/authz/policies", headers: [("Authorization", "Bearer \(session)")])
            #expect(policyRead.status == 403)

            let badJSON = try await client.call(
                base + "/api/v1/authz/roles?tenant=t1", method: "POST",
                headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: #"{"user":"#
            )
            #expect(badJSON.status == 400)
        }
    }

    @Test("enforce log: the request goes on; authz logs the would-be denial with the gateway's request id and counts it")
    func logModeThroughGateway() async throws {
        let metricsToken = "e2e-metrics-token-0123456789"
        try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "log", "LOG_LEVEL": "notice", "METRICS_TOKEN": metricsToken]) { stack, client in
            let now = Int64(Date().timeIntervalSince1970)
            let session = SessionTokenVerifier(secret: Stack.jwtSecret).sign(SessionClaims(sub: "ann", tenantId: "t1", iat: now, exp: now + 600))
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

    @Test("streamhub-authz eval answers one JSON line per request, errors included")
    func evalCommand() throws {
        let dir = try TestDatabases.temporaryDirectory()
        try """
        [request_definition]
        r = sub, obj, act
        [policy_definition]
        p = sub, obj, act
        [role_definition]
        g = _, _
        [policy_effect]
        e = some(where (p.eft == allow))
        [matchers]
        m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act
        """.write(toFile: dir + "/model.conf", atomically: true, encoding: .utf8)
        try "p, admin, /apps/:id, read\ng, alice, admin\n".write(toFile: dir + "/policy.csv", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Stack.binary("streamhub-authz"))
        process.arguments = ["eval", "--model", dir + "/model.conf", "--policy", dir + "/policy.csv", "--explain"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(
            Data("[\"alice\",\"/apps/7\",\"read\"]\n[\"bob\",\"/apps/7\",\"read\"]\n{\"not\":\"an array\"}\n[\"alice\"]\n".utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines.first == #"{"allowed":true,"explain":["admin","/apps/:id","read"]}"#)
        #expect(lines.dropFirst().first == #"{"allowed":false,"explain":[]}"#)
        #expect(lines.dropFirst(2).allSatisfy { $0.hasPrefix(#"{"error":"#) })
    }
}
