import AsyncHTTPClient
import Crypto
import Foundation
import Shared
import TestSupport
import Testing

extension RealExecutables {
    /// Two replicas each of identity, authz and media on one PostgreSQL behind one gateway whose
    /// `IDENTITY_URL`, `AUTHZ_URL` and `MEDIA_URL` list both: what correctness depends on lives in
    /// the database, the gateway spreads calls and rides over a killed replica. Runs when
    /// `STREAMHUB_TEST_DATABASE_URL` is set.
    @Suite("Scale out on PostgreSQL", .serialized)
    struct ScaleOutEndToEndTests {
        static let json = ("Content-Type", "application/json")
        static let metricsToken = "scale-out-metrics-token-0123456789"
        static let upstreams = ["identity", "authz", "media"]

        /// A LiveKit webhook signature: a bare HS256 JWT by the API key whose `sha256` claim covers the body.
        static func signature(_ body: String) -> String {
            func base64url(_ data: Data) -> String {
                data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: "")
            }
            let now = Int(Date().timeIntervalSince1970)
            let digest = Data(SHA256.hash(data: Data(body.utf8))).base64EncodedString()
            let header = base64url(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
            let claims = base64url(Data(#"{"iss":"\#(Stack.livekitKey)","sha256":"\#(digest)","nbf":\#(now - 10),"exp":\#(now + 300)}"#.utf8))
            let mac = HMAC<SHA256>.authenticationCode(for: Data("\(header).\(claims)".utf8), using: SymmetricKey(data: Data(Stack.livekitSecret.utf8)))
            return "\(header).\(claims).\(base64url(Data(mac)))"
        }

        static func data(_ result: HTTPResult) throws -> [String: Any] {
            try #require(try result.json()["data"] as? [String: Any], "\(result.status) \(result.body)")
        }

        /// Runs `count` copies of `call` at once; their statuses.
        static func parallel(_ count: Int, _ call: @escaping @Sendable (Int) async throws -> Int) async throws -> [Int] {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<count { group.addTask { try await call(index) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }

        /// Polls `status` until it is `expected` (at most `within`); the time it took.
        static func until(_ expected: Int, within: Duration, _ status: () async throws -> Int) async throws -> Duration {
            let start = ContinuousClock.now
            while true {
                if try await status() == expected { return ContinuousClock.now - start }
                if ContinuousClock.now - start > within { throw HarnessError("no \(expected) within \(within)") }
                try await Task.sleep(for: .milliseconds(25))
            }
        }

        @Test(
            "2 × identity, authz, media behind one gateway: limiter, policy, revocation, webhooks, heartbeats and quotas agree; kill -9 under load costs no GET",
            .enabled(if: TestDatabases.postgresEnabled))
        func replicasBehindOneGateway() async throws {
            try await Stack.with(
                extra: ["STREAMHUB_AUTHZ_ENFORCE": "on", "METRICS_TOKEN": Self.metricsToken, "GATEWAY_BREAKER_THRESHOLD": "2"],
                services: Self.upstreams
            ) { stack, client in
                var lists: [String: String] = [:]
                for service in Self.upstreams {
                    let replica = try await stack.startReplica(of: service, client: client)
                    lists[service] = "http://127.0.0.1:\(stack.ports[service]!),http://127.0.0.1:\(replica.port)"
                }
                try await stack.launch(
                    "gateway", as: "gateway", port: stack.ports["gateway"]!, client: client,
                    extra: ["IDENTITY_URL": lists["identity"]!, "AUTHZ_URL": lists["authz"]!, "MEDIA_URL": lists["media"]!])
                let base = stack.gatewayURL + "/api/v1"
                let root = ("Authorization", "Bearer " + (try await stack.seedToken(name: "root").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
                let signup = try Self.data(
                    try await client.call(
                        base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"owner@example.com","password":"correct horse battery"}"#))
                let owner = ("Authorization", "Bearer " + (try #require(signup["token"] as? String)))
                let tenant = try #require(signup["tenantId"] as? String)
                let ownerID = try #require((signup["user"] as? [String: Any])?["id"] as? String)

                // The magic-link cooldown, with requests spread over both identities: exactly one mail.
                let links = try await Self.parallel(20) { _ in
                    try await client.call(base + "/auth/magic-link", method: "POST", headers: [Self.json], body: #"{"email":"owner@example.com"}"#).status
                }
                #expect(links.filter { $0 == 200 }.count == 1 && links.filter { $0 == 429 }.count == 19, "\(links.sorted())")

                // A policy change through one authz replica is in force through the gateway within 1 s.
                let app = try #require(
                    try Self.data(try await client.call(base + "/apps", method: "POST", headers: [owner, Self.json], body: #"{"name":"Scale"}"#))["id"] as? String)
                #expect(try await client.call(base + "/apps/\(app)", headers: [owner]).status == 200)
                let revoke = try await client.call(
                    base + "/authz/roles?tenant=\(tenant)&user=user:\(ownerID)&role=owner", method: "DELETE", headers: [root])
                #expect(revoke.status == 200, "\(revoke.body)")
                let denied = try await Self.until(403, within: .seconds(1)) { try await client.call(base + "/apps/\(app)", headers: [owner]).status }
                for _ in 0..<4 { #expect(try await client.call(base + "/apps/\(app)", headers: [owner]).status == 403) }
                let grant = try await client.call(
                    base + "/authz/roles?tenant=\(tenant)", method: "POST", headers: [root, Self.json], body: #"{"user":"user:\#(ownerID)","role":"owner"}"#)
                #expect(grant.status == 201, "\(grant.body)")
                let allowed = try await Self.until(200, within: .seconds(1)) { try await client.call(base + "/apps/\(app)", headers: [owner]).status }
                for _ in 0..<4 { #expect(try await client.call(base + "/apps/\(app)", headers: [owner]).status == 200) }
                print("scale-out: role removal in force after \(denied), grant after \(allowed)")

                // A revoked sk_ token and a logged-out session stop working within 5 s, whichever identity answers.
                let minted = try Self.data(
                    try await client.call(base + "/tokens", method: "POST", headers: [root, Self.json], body: #"{"name":"short","scope":"global"}"#))
                let token = ("Authorization", "Bearer " + (try #require(minted["token"] as? String)))
                #expect(try await client.call(base + "/apps", headers: [token]).status == 200)
                #expect(try await client.call(base + "/tokens/\(try #require(minted["id"] as? String))", method: "DELETE", headers: [root]).status == 200)
                let revoked = try await Self.until(401, within: .seconds(5)) { try await client.call(base + "/apps", headers: [token]).status }
                for _ in 0..<4 { #expect(try await client.call(base + "/apps", headers: [token]).status == 401) }
                let other = try Self.data(
                    try await client.call(
                        base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"leaver@example.com","password":"correct horse battery"}"#))
                let leaver = ("Authorization", "Bearer " + (try #require(other["token"] as? String)))
                #expect(try await client.call(base + "/auth/me", headers: [leaver]).status == 200)
                // A session issued in the same second as the logout would still be valid: let a second pass.
                try await Task.sleep(for: .milliseconds(1100))
                #expect(try await client.call(base + "/auth/logout", method: "POST", headers: [leaver]).status == 200)
                let loggedOut = try await Self.until(401, within: .seconds(5)) { try await client.call(base + "/auth/me", headers: [leaver]).status }
                for _ in 0..<4 { #expect(try await client.call(base + "/auth/me", headers: [leaver]).status == 401) }
                print("scale-out: revoked token refused after \(revoked), logged-out session after \(loggedOut)")

                // Webhooks to either media replica give one stream state; a duplicate changes nothing.
                let opened = try await client.call(base + "/apps/\(app)/streams", method: "POST", headers: [owner, Self.json], body: #"{"room":"hall"}"#)
                #expect(opened.status == 201, "\(opened.body)")
                let joined = #"{"event":"participant_joined","id":"EV_join_1","createdAt":"\#(Int(Date().timeIntervalSince1970))","room":{"name":"hall"},"participant":{"sid":"PA_1","identity":"viewer-1","permission":{"canPublish":false}}}"#
                for _ in 0..<4 {
                    let delivered = try await client.call(
                        base + "/webhooks/livekit", method: "POST", headers: [("Content-Type", "application/webhook+json"), ("Authorization", Self.signature(joined))],
                        body: joined)
                    #expect(delivered.status == 200, "\(delivered.body)")
                }
                for _ in 0..<4 {
                    let streams = try #require(try await client.call(base + "/apps/\(app)/streams", headers: [owner]).json()["data"] as? [[String: Any]])
                    #expect(streams.count == 1 && streams.first?["viewers"] as? Int == 1, "\(streams)")
                }
                // Heartbeats to either replica keep a node alive.
                let cluster = ("X-Cluster-Token", Stack.clusterToken)
                let lease = try await client.call(
                    base + "/cluster/join", method: "POST", headers: [cluster, Self.json], body: #"{"name":"edge-1","url":"ws://10.0.0.1:7880"}"#)
                let node = try #require(((try lease.json())["data"] as? [String: Any]).flatMap { ($0["node"] as? [String: Any])?["id"] as? String })
                for rooms in 1...4 {
                    let beat = try await client.call(
                        base + "/cluster/heartbeat", method: "POST", headers: [cluster, Self.json], body: #"{"id":"\#(node)","rooms":\#(rooms)}"#)
                    #expect(beat.status == 200, "\(beat.body)")
                }
                let nodes = try #require(try await client.call(base + "/cluster/nodes", headers: [root]).json()["data"] as? [[String: Any]])
                #expect(nodes.count == 1 && nodes.first?["alive"] as? Bool == true && nodes.first?["rooms"] as? Int == 4, "\(nodes)")

                // Quotas hold with concurrent requests spread over both media replicas.
                let quotas = try await client.call(
                    base + "/tenants/\(tenant)", method: "PATCH", headers: [root, Self.json], body: #"{"quotas":{"maxApps":3,"maxConcurrentStreams":2}}"#)
                #expect(quotas.status == 200, "\(quotas.body)")
                let apps = try await Self.parallel(20) { index in
                    try await client.call(base + "/apps", method: "POST", headers: [owner, Self.json], body: #"{"name":"A\#(index)"}"#).status
                }
                #expect(apps.filter { $0 == 201 }.count == 2 && apps.filter { $0 == 403 }.count == 18, "\(apps.sorted())")
                let streams = try await Self.parallel(20) { index in
                    try await client.call(base + "/apps/\(app)/streams", method: "POST", headers: [owner, Self.json], body: #"{"room":"r\#(index)"}"#).status
                }
                #expect(streams.filter { $0 == 201 }.count == 1 && streams.filter { $0 == 403 }.count == 19, "\(streams.sorted())")

                // kill -9 of one replica of each service under a steady load of GETs: none fails.
                let paths: [(String, (String, String))] = [
                    ("/apps/\(app)", owner), ("/auth/me", owner), ("/authz/policies?tenant=\(tenant)", root), ("/apps/\(app)/streams", owner),
                ]
                let load = Task { () -> [Int] in
                    try await withThrowingTaskGroup(of: [Int].self) { group in
                        for worker in 0..<4 {
                            group.addTask {
                                var statuses: [Int] = []
                                let end = ContinuousClock.now + .seconds(5)
                                var index = worker
                                while ContinuousClock.now < end {
                                    let (path, credential) = paths[index % paths.count]
                                    statuses.append(try await client.call(base + path, headers: [credential]).status)
                                    index += 1
                                }
                                return statuses
                            }
                        }
                        return try await group.reduce(into: []) { $0 += $1 }
                    }
                }
                try await Task.sleep(for: .seconds(1))
                for service in Self.upstreams { try await stack.kill9("\(service)#2") }
                let statuses = try await load.value
                #expect(statuses.count > 40 && statuses.allSatisfy { $0 == 200 }, "\(statuses.count) GETs, not 200: \(statuses.filter { $0 != 200 })")
                print("scale-out: \(statuses.count) GETs during kill -9 of a replica of each service, \(statuses.filter { $0 != 200 }.count) failed")
                // The killed replicas were taken out of rotation: by their breaker (a request failed on them) or by the
                // readiness probe (every second), whichever noticed first.
                let gatewayLog = stack.log("gateway")
                for service in Self.upstreams {
                    let port = try #require(stack.port(of: "\(service)#2"))
                    let opened = gatewayLog.split(separator: "\n").contains {
                        ($0.contains("circuit open") || $0.contains("not ready, out of rotation")) && $0.contains("127.0.0.1:\(port)")
                    }
                    #expect(opened, "\(service)#2 never left rotation: \(gatewayLog.suffix(2000))")
                }

                // Restarted, each replica is back in rotation and gets its share.
                for service in Self.upstreams { try await stack.restart("\(service)#2", client: client) }
                for service in Self.upstreams {
                    let port = try #require(stack.port(of: "\(service)#2"))
                    let route = service == "identity" ? "/api/v1/auth/" : service == "authz" ? "/api/v1/authz/" : "/api/v1/apps/"
                    var last = ""
                    do {
                        try await Stack.waitFor(deadline: .seconds(10), "\(service)#2 to get requests again") {
                            for (path, credential) in paths { _ = try await client.call(base + path, headers: [credential]) }
                            last = try await client.call("http://127.0.0.1:\(port)/metrics", headers: [("Authorization", "Bearer \(Self.metricsToken)")]).body
                            // Any GET of the service's routes counts: round robin may send one route always to the same replica.
                            return last.split(separator: "\n").contains {
                                $0.hasPrefix("streamhub_http_requests_total") && $0.contains(#"route="\#(route)"#) && $0.contains(#"method="GET",status="200""#)
                            }
                        }
                    } catch {
                        Issue.record("\(error)\ngateway: \(stack.log("gateway").suffix(3000))\n\(service)#2 metrics: \(last.prefix(3000))")
                    }
                }
            }
        }
    }
}
