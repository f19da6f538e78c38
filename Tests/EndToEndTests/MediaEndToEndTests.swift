import AsyncHTTPClient
import Foundation
import ServiceKit
import Shared
import TestSupport
import Testing

extension RealExecutables {
    /// Apps, streams and play tokens through the gateway on the real executables.
    @Suite("Media end to end", .serialized)
    struct MediaEndToEndTests {
        static let json = ("Content-Type", "application/json")
        static let livekitPython = ProcessInfo.processInfo.environment["STREAMHUB_LIVEKIT_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

        func data(_ result: HTTPResult) throws -> [String: Any] {
            try #require(try result.json()["data"] as? [String: Any])
        }

        func claims(_ token: String) throws -> [String: Any] {
            let payload = try #require(Base64URL.decode(token.split(separator: ".")[1]))
            return try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
        }

        /// livekit-api's verdict on a token, when `STREAMHUB_LIVEKIT_PYTHON` is set.
        func livekitAgrees(_ token: String, kind: String) async throws {
            guard let python = Self.livekitPython else { return }
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("interop/livekit_check.py").path
            let result = try await Stack.run(python, [script, Stack.livekitKey, Stack.livekitSecret, kind, token], environment: ProcessInfo.processInfo.environment)
            print("livekit-api \(kind): \(result.stdout)")
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        }

        @Test("an owner creates an app and opens a stream; anyone gets a subscribe-only play token for that room only; playback off is 403; a deleted app mints nothing")
        func appsStreamsPlayTokens() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"media@example.com","password":"correct horse battery"}"#)
                let owner = ("Authorization", "Bearer " + (try #require(try self.data(signup)["token"] as? String)))
                let tenantId = try #require(try self.data(signup)["tenantId"] as? String)
                let created = try await client.call(base + "/apps", method: "POST", headers: [owner, Self.json], body: #"{"name":"Live"}"#)
                #expect(created.status == 201, "\(created.body)")
                let app = try self.data(created)
                let appId = try #require(app["id"] as? String)
                #expect(app["tenantId"] as? String == tenantId && (app["features"] as? [String: Any])?["publicPlayback"] as? Bool == true)

                // No stream yet: the room is not the app's, so no token (LiveKit would create any room on join).
                #expect(try await client.call(base + "/apps/\(appId)/play-token/main").status == 404)
                let opened = try await client.call(base + "/apps/\(appId)/streams", method: "POST", headers: [owner, Self.json], body: #"{"room":"main"}"#)
                #expect(opened.status == 201)
                let publisher = try #require((try self.data(opened)["publisher"] as? [String: Any])?["token"] as? String)
                let publisherGrant = try #require(try self.claims(publisher)["video"] as? [String: Any])
                // LiveKit's room is named after the app: no two apps' rooms are ever the same room.
                #expect(publisherGrant["canPublish"] as? Bool == true && publisherGrant["room"] as? String == "\(appId).main")
                try await self.livekitAgrees(publisher, kind: "publisher")

                // Public: no Authorization needed, and a stale one is not even looked at.
                let play = try await client.call(base + "/apps/\(appId)/play-token/main", headers: [("Authorization", "Bearer sk_stale")])
                #expect(play.status == 200, "\(play.body)")
                #expect(play.header("Cache-Control") == "no-store")
                let grant = try self.data(play)
                let token = try #require(grant["token"] as? String)
                #expect(grant["url"] as? String == "ws://127.0.0.1:7880" && grant["room"] as? String == "main")
                let claims = try self.claims(token)
                #expect(claims["iss"] as? String == Stack.livekitKey)
                #expect((claims["exp"] as? Int ?? 0) - (claims["nbf"] as? Int ?? 0) == 3600)
                let video = try #require(claims["video"] as? [String: Any])
                #expect(video["roomJoin"] as? Bool == true && video["canSubscribe"] as? Bool == true && video["room"] as? String == "\(appId).main")
                #expect(video["canPublish"] as? Bool == false && video["canPublishData"] as? Bool == false)
                try await self.livekitAgrees(token, kind: "viewer")
                let second = try self.data(try await client.call(base + "/apps/\(appId)/play-token/main"))
                #expect(second["identity"] as? String != grant["identity"] as? String)
                for room in ["other", "bad%20room", String(repeating: "r", count: 129)] {
                    #expect(try await client.call(base + "/apps/\(appId)/play-token/\(room)").status == 404, "\(room)")
                }
                #expect(try await client.call(base + "/apps/nope/play-token/main").status == 404)

                let streams = try #require(try await client.call(base + "/apps/\(appId)/streams", headers: [owner]).json()["data"] as? [[String: Any]])
                #expect(streams.count == 1 && streams.first?["state"] as? String == "live")
                let usage = try self.data(try await client.call(base + "/tenants/\(tenantId)/usage", headers: [owner]))
                #expect((usage["usage"] as? [String: Int])?["liveStreams"] == 1 && (usage["usage"] as? [String: Int])?["apps"] == 1)

                _ = try await client.call(
                    base + "/apps/\(appId)", method: "PATCH", headers: [owner, Self.json], body: #"{"features":{"publicPlayback":false}}"#)
                let off = try await client.call(base + "/apps/\(appId)/play-token/main")
                #expect(off.status == 403)
                #expect(try off.json()["message"] as? String == "Public playback is off for this app")
                #expect(try await client.call(base + "/apps/\(appId)", method: "DELETE", headers: [owner]).status == 200)
                #expect(try await client.call(base + "/apps/\(appId)/play-token/main").status == 404)
                #expect(try await client.call(base + "/apps/\(appId)", headers: [owner]).status == 404)
            }
        }

        @Test("LiveKit webhooks signed by livekit-api keep stream state and viewer counts; duplicates and bad signatures change nothing", .enabled(if: livekitPython != nil))
        func webhooks() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"hooks@example.com","password":"correct horse battery"}"#)
                let jwt = try #require(try self.data(signup)["token"] as? String)
                let tenantId = try #require(try self.data(signup)["tenantId"] as? String)
                let owner = ("Authorization", "Bearer " + jwt)
                let appId = try #require(
                    try self.data(try await client.call(base + "/apps", method: "POST", headers: [owner, Self.json], body: #"{"name":"Hooks"}"#))["id"] as? String)
                let opened = try await client.call(base + "/apps/\(appId)/streams", method: "POST", headers: [owner, Self.json], body: #"{"room":"stage"}"#)
                #expect(opened.status == 201)
                // Rooms are each app's own: another app (another tenant's too) opens its own "stage" —
                // no 409 that would tell it the name is in use — and LiveKit's events for the first
                // app's room leave it alone.
                let other = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"hooks2@example.com","password":"correct horse battery"}"#)
                let otherOwner = ("Authorization", "Bearer " + (try #require(try self.data(other)["token"] as? String)))
                let otherApp = try #require(
                    try self.data(try await client.call(base + "/apps", method: "POST", headers: [otherOwner, Self.json], body: #"{"name":"Other"}"#))["id"]
                        as? String)
                let same = try await client.call(base + "/apps/\(otherApp)/streams", method: "POST", headers: [otherOwner, Self.json], body: #"{"room":"stage"}"#)
                #expect(same.status == 201, "\(same.body)")
                let otherGrant = try #require((try self.data(same)["publisher"] as? [String: Any])?["token"] as? String)
                #expect((try self.claims(otherGrant)["video"] as? [String: Any])?["room"] as? String == "\(otherApp).stage")
                #expect(try await client.call(base + "/apps/\(appId)/streams", method: "POST", headers: [owner, Self.json], body: #"{"room":"stage"}"#).status == 409)

                let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("interop/livekit_webhooks.py").path
                let result = try await Stack.run(
                    try #require(Self.livekitPython), [script, stack.gatewayURL, Stack.livekitKey, Stack.livekitSecret, jwt, appId, "stage"],
                    environment: ProcessInfo.processInfo.environment)
                print("livekit-api webhooks: \(result.stdout)")
                #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)\nmedia: \(stack.log("media").suffix(2000))")
                let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
                let steps = try #require(summary["steps"] as? [String: Bool])
                #expect(steps.count == 15)
                #expect(steps.values.allSatisfy { $0 }, "\(steps.filter { !$0.value })")
                #expect((summary["refusals"] as? [String: Int])?.count == 7)
                let usage = try self.data(try await client.call(base + "/tenants/\(tenantId)/usage", headers: [owner]))
                #expect((usage["usage"] as? [String: Int])?["liveStreams"] == 0)
                let untouched = try await client.call(base + "/apps/\(otherApp)/streams", headers: [otherOwner])
                #expect((try untouched.json()["data"] as? [[String: Any]])?.first?["state"] as? String == "live", "\(untouched.body)")
            }
        }

        @Test("Idempotency-Key through the gateway: a retry after media was killed gets the first answer, replayed, and there is one app; another body is a 422")
        func idempotentCreate() async throws {
            try await Stack.with { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json, ("Idempotency-Key", "signup-1")],
                    body: #"{"email":"idem@example.com","password":"correct horse battery"}"#)
                #expect(signup.status == 201)
                // A sign-up retried with its key is answered from the first, not refused as a duplicate.
                let again = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json, ("Idempotency-Key", "signup-1")],
                    body: #"{"email":"idem@example.com","password":"correct horse battery"}"#)
                #expect(again.status == 201 && again.header("Idempotency-Replayed") == "true" && again.body == signup.body)
                let owner = ("Authorization", "Bearer " + (try #require(try self.data(signup)["token"] as? String)))
                let key = ("Idempotency-Key", "create-live-app")
                let created = try await client.call(base + "/apps", method: "POST", headers: [owner, Self.json, key], body: #"{"name":"Live"}"#)
                #expect(created.status == 201)
                let appId = try #require(try self.data(created)["id"] as? String)
                // The replica that answered dies; the client, unsure, retries with the same key.
                try await stack.kill9("media")
                try await stack.restart("media", client: client)
                let retried = try await client.call(base + "/apps", method: "POST", headers: [owner, Self.json, key], body: #"{"name":"Live"}"#)
                #expect(retried.status == 201)
                #expect(retried.header("Idempotency-Replayed") == "true")
                #expect(try self.data(retried)["id"] as? String == appId)
                let apps = try await client.call(base + "/apps", headers: [owner])
                #expect((try apps.json()["data"] as? [[String: Any]])?.count == 1)
                let other = try await client.call(base + "/apps", method: "POST", headers: [owner, Self.json, key], body: #"{"name":"Other"}"#)
                #expect(other.status == 422)
                #expect(try other.json()["message"] as? String == "This Idempotency-Key was used with another request")
            }
        }

        @Test("cluster nodes: join and heartbeat with X-Cluster-Token, liveness expiry, rooms placed on an alive node and moved when it dies")
        func clusterNodes() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on", "STREAMHUB_NODE_TTL_S": "3"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let root = ("Authorization", "Bearer " + (try await stack.seedToken(name: "root").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
                let node = ("X-Cluster-Token", Stack.clusterToken)
                let join = #"{"name":"lk-1","url":"wss://lk-1.example.test","region":"eu-west","capacity":500}"#
                #expect(try await client.call(base + "/cluster/join", method: "POST", headers: [Self.json], body: join).status == 401)
                let wrong = try await client.call(base + "/cluster/join", method: "POST", headers: [Self.json, ("X-Cluster-Token", "nope")], body: join)
                #expect(wrong.status == 401 && wrong.header("WWW-Authenticate") != nil)
                let longName = String(repeating: "n", count: 101)
                for bad in [
                    #"{"name":"","url":"wss://x.test"}"#, #"{"name":"a","url":"ftp://x.test"}"#, #"{"name":"a","url":"wss://x.test","id":"NOT-A-UUID"}"#,
                    #"{"name":1}"#, #"{"name":"a\u0007b","url":"wss://x.test"}"#, #"{"name":"\#(longName)","url":"wss://x.test"}"#,
                    #"{"name":"a","url":"wss://x.test","capacity":-1}"#, #"{"name":"a","url":"wss://x.test","region":"eu\u0001west"}"#, "{not json",
                ] {
                    #expect(try await client.call(base + "/cluster/join", method: "POST", headers: [Self.json, node], body: bad).status == 400, "\(bad)")
                }
                let joined = try await client.call(base + "/cluster/join", method: "POST", headers: [Self.json, node], body: join)
                #expect(joined.status == 200, "\(joined.body)")
                let lease = try self.data(joined)
                #expect(lease["heartbeatIntervalSeconds"] as? Int == 1)
                let first = try #require((lease["node"] as? [String: Any])?["id"] as? String)
                #expect((lease["node"] as? [String: Any])?["alive"] as? Bool == true)
                let unknown = try await client.call(
                    base + "/cluster/heartbeat", method: "POST", headers: [Self.json, node], body: #"{"id":"\#(UUID().uuidString.lowercased())"}"#)
                #expect(unknown.status == 404)

                // The registry is platform-wide: global callers only; a tenant's owner and a role-less user are refused.
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"nodes@example.com","password":"correct horse battery"}"#)
                let owner = ("Authorization", "Bearer " + (try #require(try self.data(signup)["token"] as? String)))
                let ownerAsks = try await client.call(base + "/cluster/nodes", headers: [owner])
                #expect(ownerAsks.status == 403)
                #expect(try ownerAsks.json()["message"] as? String == "The node registry is for platform operators (superadmins and global tokens)")
                let superadmin = ("Authorization", "Bearer " + Stack.session(sub: "ops", tenantId: nil, superadmin: true))
                #expect(try await client.call(base + "/cluster/nodes", headers: [superadmin]).status == 200)
                let stranger = ("Authorization", "Bearer " + Stack.session(sub: "stranger", tenantId: "t-none"))
                #expect(try await client.call(base + "/cluster/nodes", headers: [stranger]).status == 403)
                let listed = try #require(try await client.call(base + "/cluster/nodes", headers: [root]).json()["data"] as? [[String: Any]])
                #expect(listed.count == 1 && listed[0]["url"] as? String == "wss://lk-1.example.test" && listed[0]["capacity"] as? Int == 500)

                // A stream's room is placed on the alive node: publisher and viewers get its URL.
                let appId = try #require(
                    try self.data(try await client.call(base + "/apps", method: "POST", headers: [owner, Self.json], body: #"{"name":"Nodes"}"#))["id"] as? String)
                let opened = try await client.call(base + "/apps/\(appId)/streams", method: "POST", headers: [owner, Self.json], body: #"{"room":"hall"}"#)
                #expect((try self.data(opened)["publisher"] as? [String: Any])?["url"] as? String == "wss://lk-1.example.test")
                #expect(try self.data(try await client.call(base + "/apps/\(appId)/play-token/hall"))["url"] as? String == "wss://lk-1.example.test")

                // A second node joins: the room stays where it is while lk-1 beats.
                let second = try await client.call(
                    base + "/cluster/join", method: "POST", headers: [Self.json, node], body: #"{"name":"lk-2","url":"wss://lk-2.example.test"}"#)
                let secondId = try #require((try self.data(second)["node"] as? [String: Any])?["id"] as? String)
                for _ in 0..<4 {
                    for id in [first, secondId] {
                        let beat = try await client.call(
                            base + "/cluster/heartbeat", method: "POST", headers: [Self.json, node], body: #"{"id":"\#(id)","rooms":1,"participants":7}"#)
                        #expect(beat.status == 200)
                    }
                    try await Task.sleep(for: .seconds(1))
                }
                #expect(try self.data(try await client.call(base + "/apps/\(appId)/play-token/hall"))["url"] as? String == "wss://lk-1.example.test")
                let beating = try #require(try await client.call(base + "/cluster/nodes", headers: [root]).json()["data"] as? [[String: Any]])
                #expect(beating.allSatisfy { $0["alive"] as? Bool == true && $0["participants"] as? Int == 7 }, "\(beating)")

                // lk-1 stops beating: after the 3 s window it is not alive and the room moves to lk-2.
                let deadline = ContinuousClock.now + .seconds(4)
                while ContinuousClock.now < deadline {
                    _ = try await client.call(base + "/cluster/heartbeat", method: "POST", headers: [Self.json, node], body: #"{"id":"\#(secondId)"}"#)
                    try await Task.sleep(for: .milliseconds(500))
                }
                let after = try #require(try await client.call(base + "/cluster/nodes", headers: [root]).json()["data"] as? [[String: Any]])
                #expect(after.first { $0["id"] as? String == first }?["alive"] as? Bool == false)
                #expect(try self.data(try await client.call(base + "/apps/\(appId)/play-token/hall"))["url"] as? String == "wss://lk-2.example.test")
                // Rejoining with its id brings lk-1 back alive under the same identity.
                let rejoined = try await client.call(
                    base + "/cluster/join", method: "POST", headers: [Self.json, node],
                    body: #"{"id":"\#(first)","name":"lk-1","url":"wss://lk-1.example.test"}"#)
                #expect((try self.data(rejoined)["node"] as? [String: Any])?["alive"] as? Bool == true)
                #expect(try #require(try await client.call(base + "/cluster/nodes", headers: [root]).json()["data"] as? [[String: Any]]).count == 2)
            }
        }
    }
}
