import AsyncHTTPClient
import Foundation
import ServiceKit
import Shared
import TestSupport
import Testing

extension RealExecutables {
    /// Accounts through the gateway on the real executables: sign-up, login, the signed-in user,
    /// logout, and what the gateway does with the sessions identity mints.
    @Suite("Accounts end to end", .serialized)
    struct AccountsEndToEndTests {
        static let json = ("Content-Type", "application/json")

        func data(_ result: HTTPResult) throws -> [String: Any] {
            try #require(try result.json()["data"] as? [String: Any])
        }

        func claims(_ token: String) throws -> [String: Any] {
            let payload = try #require(Base64URL.decode(token.split(separator: ".")[1]))
            return try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
        }

        @Test("sign up, use the session, see yourself, log in, log out: the earlier session stops within 5 s")
        func lifecycle() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let started = Date()
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json],
                    body: #"{"email":"  Ada@Example.COM ","password":"correct horse battery","name":"Ada"}"#)
                #expect(signup.status == 201, "\(signup.body)")
                #expect(signup.header("Cache-Control") == "no-store")
                let session = try self.data(signup)
                let token = try #require(session["token"] as? String)
                let user = try #require(session["user"] as? [String: Any])
                #expect(user["email"] as? String == "ada@example.com")
                #expect(user["name"] as? String == "Ada" && user["superadmin"] as? Bool == false)
                #expect(user["passwordHash"] == nil && !signup.body.contains("$2"))
                let tenantId = try #require(session["tenantId"] as? String)
                let claims = try self.claims(token)
                #expect(claims["sub"] as? String == user["id"] as? String)
                #expect(claims["tenantId"] as? String == tenantId)
                #expect(claims["iss"] as? String == "http://127.0.0.1:8080" && claims["aud"] as? String == "streamhub-dashboard")
                #expect((claims["jti"] as? String)?.count == 36)
                let iat = try #require(claims["iat"] as? Int), exp = try #require(claims["exp"] as? Int)
                #expect(exp - iat == 12 * 3600 && abs(Double(iat) - started.timeIntervalSince1970) < 60)

                // The owner role was granted in authz: with enforcement on, the owner reads apps.
                let bearer = ("Authorization", "Bearer \(token)")
                #expect(try await client.call(base + "/apps", headers: [bearer]).status == 200)
                let me = try self.data(try await client.call(base + "/auth/me", headers: [bearer]))
                #expect((me["user"] as? [String: Any])?["email"] as? String == "ada@example.com")
                #expect(me["tenantId"] as? String == tenantId)
                let tenants = try #require(me["tenants"] as? [[String: Any]])
                #expect(tenants.count == 1)
                #expect(tenants.first?["roles"] as? [String] == ["owner"])
                let tenant = try #require(tenants.first?["tenant"] as? [String: Any])
                #expect(tenant["id"] as? String == tenantId && tenant["ownerId"] as? String == user["id"] as? String)
                #expect((tenant["quotas"] as? [String: Any])?["maxApps"] as? Int == 10)

                // One address, one account, however it is typed.
                let again = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"ADA@example.com","password":"another password"}"#)
                #expect(again.status == 409)
                #expect(try again.json()["message"] as? String == "An account with this email already exists")

                // Login: a wrong password and an unknown email get the same answer.
                let wrong = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"ada@example.com","password":"wrong password"}"#)
                let unknown = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"nobody@example.com","password":"wrong password"}"#)
                #expect(wrong.status == 401 && unknown.status == 401 && wrong.body == unknown.body)
                #expect(wrong.body == #"{"statusCode":401,"message":"Invalid email or password","error":"Unauthorized"}"#)
                let login = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"Ada@example.com","password":"correct horse battery"}"#)
                #expect(login.status == 200)
                #expect(try self.data(login)["tenantId"] as? String == tenantId)

                // Logout ends every session issued until now, at the gateway within 5 s.
                let logout = try await client.call(base + "/auth/logout", method: "POST", headers: [bearer])
                #expect(logout.status == 200)
                let loggedOutAt = ContinuousClock.now
                try await Stack.waitFor(deadline: .seconds(5), "the logged-out session to be refused") {
                    try await client.call(base + "/auth/me", headers: [bearer]).status == 401
                }
                print("accounts: a logged-out session was refused after \(ContinuousClock.now - loggedOutAt)")
                let ended = try await client.call(base + "/apps", headers: [bearer])
                #expect(try ended.json()["message"] as? String == "Session has ended; sign in again")
                // Signing in again works at once.
                let relogin = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"ada@example.com","password":"correct horse battery"}"#)
                let fresh = try #require(try self.data(relogin)["token"] as? String)
                #expect(try await client.call(base + "/auth/me", headers: [("Authorization", "Bearer \(fresh)")]).status == 200)

                // /auth/me needs a dashboard user: none is 401, an API token is 403.
                #expect(try await client.call(base + "/auth/me").status == 401)
                let sk = try await stack.seedToken(name: "ops").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(try await client.call(base + "/auth/me", headers: [("Authorization", "Bearer \(sk)")]).status == 403)
                for service in Stack.services {
                    #expect(!stack.log(service).contains("correct horse battery"), "\(service) logged a password")
                }
            }
        }

        @Test("bad sign-up input is a 400 naming the field; passwords sharing their first 72 bytes do not both verify")
        func passwordsAndInput() async throws {
            try await Stack.with { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let cases: [(String, String)] = [
                    (#"{"email":"ada@example.com","password":"short"}"#, "password must be at least 8 characters"),
                    (#"{"email":"not-an-email","password":"long enough"}"#, "email must be an email address like name@example.com"),
                    (#"{"email":"a\u0000@example.com","password":"long enough"}"#, "email must not contain control characters (found U+0000)"),
                    (#"{"email":"ada@example.com","password":"long enough","name":"A\u0000"}"#, "name must not contain control characters (found U+0000)"),
                    (#"{"email":"ada@example.com","password":"\#(String(repeating: "p", count: 1025))"}"#, "password must be at most 1024 bytes"),
                    (#"{"email":"ada@example.com"}"#, "password is required"),
                    (#"{"email":5,"password":"long enough"}"#, "email must be a string"),
                ]
                for (body, message) in cases {
                    let response = try await client.call(base + "/auth/signup", method: "POST", headers: [Self.json], body: body)
                    #expect(response.status == 400, "\(body)")
                    #expect(try response.json()["message"] as? String == message)
                }
                let prefix = String(repeating: "x", count: 72)
                let created = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"long@example.com","password":"\#(prefix)-first"}"#)
                #expect(created.status == 201)
                let other = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"long@example.com","password":"\#(prefix)-second"}"#)
                #expect(other.status == 401)
                let same = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"long@example.com","password":"\#(prefix)-first"}"#)
                #expect(same.status == 200)
                // 64-character passwords are fine.
                let sixtyFour = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json],
                    body: #"{"email":"wide@example.com","password":"\#(String(repeating: "w", count: 64))"}"#)
                #expect(sixtyFour.status == 201)
            }
        }

        @Test("sign-up while authz cannot answer fails cleanly (503) and leaves no half-made user")
        func signupWithoutAuthz() async throws {
            try await Stack.with { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                try await stack.stop("authz")
                let body = #"{"email":"eve@example.com","password":"correct horse battery"}"#
                let refused = try await client.call(base + "/auth/signup", method: "POST", headers: [Self.json], body: body)
                #expect(refused.status == 503)
                #expect(try refused.json()["message"] as? String == "The authz service is unavailable")
                let login = try await client.call(base + "/auth/login", method: "POST", headers: [Self.json], body: body)
                #expect(login.status == 401, "the user was stored although sign-up failed")
                try await stack.start(["authz"], client: client)
                let retried = try await client.call(base + "/auth/signup", method: "POST", headers: [Self.json], body: body)
                #expect(retried.status == 201)
            }
        }

        @Test("a token minted through /tokens works at once; revoked, it is refused through the gateway within 5 s")
        func tokensThroughGateway() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let root = try await stack.seedToken(name: "root").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let created = try await client.call(
                    base + "/tokens", method: "POST", headers: [("Authorization", "Bearer \(root)"), Self.json], body: #"{"name":"automation","scope":"global"}"#)
                #expect(created.status == 201)
                #expect(created.header("Cache-Control") == "no-store")
                let minted = try self.data(created)
                let token = try #require(minted["token"] as? String)
                let id = try #require(minted["id"] as? String)
                let bearer = ("Authorization", "Bearer \(token)")
                #expect(try await client.call(base + "/apps", headers: [bearer]).status == 200)
                let listed = try #require(try await client.call(base + "/tokens", headers: [bearer]).json()["data"] as? [[String: Any]])
                #expect(listed.contains { $0["id"] as? String == id && $0["token"] == nil })
                let revoked = try await client.call(base + "/tokens/\(id)", method: "DELETE", headers: [("Authorization", "Bearer \(root)")])
                #expect(revoked.status == 200)
                let revokedAt = ContinuousClock.now
                try await Stack.waitFor(deadline: .seconds(5), "the revoked token to be refused") {
                    try await client.call(base + "/apps", headers: [bearer]).status == 401
                }
                print("accounts: a revoked sk_ token was refused after \(ContinuousClock.now - revokedAt)")
                // A new owner lists their own tenant's tokens (none) and may not mint a global one.
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"own@example.com","password":"correct horse battery"}"#)
                let session = try #require(try self.data(signup)["token"] as? String)
                let mine = try await client.call(base + "/tokens", headers: [("Authorization", "Bearer \(session)")])
                #expect(mine.status == 200)
                #expect(mine.body == #"{"data":[],"error":null}"#)
                let global = try await client.call(
                    base + "/tokens", method: "POST", headers: [("Authorization", "Bearer \(session)"), Self.json], body: #"{"name":"x","scope":"global"}"#)
                #expect(global.status == 403)
            }
        }

        func signup(_ client: HTTPClient, _ base: String, _ email: String) async throws -> (token: String, userId: String, tenantId: String) {
            let response = try await client.call(
                base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"\#(email)","password":"correct horse battery"}"#)
            let data = try self.data(response)
            return (
                try #require(data["token"] as? String), try #require((data["user"] as? [String: Any])?["id"] as? String),
                try #require(data["tenantId"] as? String)
            )
        }

        @Test("tenants and members: own tenant only, members added by email with a role, maxMembers, quotas and users for global callers, disabling ends sessions")
        func tenantsMembersUsers() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let root = ("Authorization", "Bearer " + (try await stack.seedToken(name: "root").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
                let ann = try await self.signup(client, base, "ann@example.com")
                let bob = try await self.signup(client, base, "bob@example.com")
                _ = try await self.signup(client, base, "cat@example.com")
                let asAnn = ("Authorization", "Bearer \(ann.token)")
                // Only a user who verified their address sends invitations.
                let unverified = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAnn, Self.json], body: #"{"email":"bob@example.com","role":"member"}"#)
                #expect(unverified.status == 403)
                try await stack.verifyEmail(client, "ann@example.com")

                let mine = try #require(try await client.call(base + "/tenants", headers: [asAnn]).json()["data"] as? [[String: Any]])
                #expect(mine.map { $0["id"] as? String } == [ann.tenantId])
                #expect(try await client.call(base + "/tenants/\(bob.tenantId)", headers: [asAnn]).status == 404)
                #expect(try await client.call(base + "/tenants/\(bob.tenantId)/members", headers: [asAnn]).status == 404)

                // Inviting an existing user makes an offer, not a member: Bob joins when he accepts.
                let added = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAnn, Self.json], body: #"{"email":"BOB@example.com","role":"member"}"#)
                #expect(added.status == 201, "\(added.body)")
                #expect(try self.data(added)["email"] as? String == "bob@example.com")
                #expect(try self.data(added)["role"] as? String == "member")
                let offered = try #require(try await client.call(base + "/tenants/\(ann.tenantId)/members", headers: [asAnn]).json()["data"] as? [[String: Any]])
                #expect(offered.map { $0["email"] as? String } == ["ann@example.com"], "an invitation made a member without consent")
                let bobMe = try await client.call(base + "/auth/me", headers: [("Authorization", "Bearer \(bob.token)")]).json()
                #expect(((bobMe["data"] as? [String: Any])?["tenants"] as? [[String: Any]])?.count == 1)
                let pending = try #require(try await client.call(base + "/tenants/\(ann.tenantId)/invitations", headers: [asAnn]).json()["data"] as? [[String: Any]])
                #expect(pending.map { $0["email"] as? String } == ["bob@example.com"])
                let invite = try await self.mailedToken(stack, "invite", after: 0)
                // Accepting takes the invited address's own session: Cat's is refused, Bob's joins.
                let cat = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"cat@example.com","password":"correct horse battery"}"#)
                let asCat = ("Authorization", "Bearer " + (try #require(try self.data(cat)["token"] as? String)))
                let notCats = try await client.call(base + "/auth/invitations/accept", method: "POST", headers: [asCat, Self.json], body: #"{"token":"\#(invite)"}"#)
                #expect(notCats.status == 403)
                #expect(try await client.call(base + "/auth/invitations/accept", method: "POST", headers: [Self.json], body: #"{"token":"\#(invite)"}"#).status == 401)
                let accepted = try await client.call(
                    base + "/auth/invitations/accept", method: "POST", headers: [("Authorization", "Bearer \(bob.token)"), Self.json], body: #"{"token":"\#(invite)"}"#)
                #expect(accepted.status == 200, "\(accepted.body)")
                #expect(try self.data(accepted)["tenantId"] as? String == ann.tenantId)
                let spent = try await client.call(
                    base + "/auth/invitations/accept", method: "POST", headers: [("Authorization", "Bearer \(bob.token)"), Self.json], body: #"{"token":"\#(invite)"}"#)
                #expect(spent.status == 404)
                let members = try #require(try await client.call(base + "/tenants/\(ann.tenantId)/members", headers: [asAnn]).json()["data"] as? [[String: Any]])
                #expect(members.map { $0["email"] as? String } == ["ann@example.com", "bob@example.com"])
                #expect(members.map { $0["roles"] as? [String] } == [["owner"], ["member"]])
                #expect((try await client.call(base + "/tenants/\(ann.tenantId)/invitations", headers: [asAnn]).json()["data"] as? [Any])?.isEmpty == true)
                // An invitation with a role authz refuses leaves no account behind (users below: still 3).
                let ghost = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAnn, Self.json], body: #"{"email":"nobody@example.com","role":"ghost"}"#)
                #expect(ghost.status == 400)
                let badRole = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAnn, Self.json], body: #"{"email":"cat@example.com","role":"ghost"}"#)
                #expect(badRole.status == 400)
                let notAdded = try #require(try await client.call(base + "/tenants/\(ann.tenantId)/members", headers: [asAnn]).json()["data"] as? [[String: Any]])
                #expect(notAdded.count == 2, "a refused role left a membership behind")
                #expect((try await client.call(base + "/tenants/\(ann.tenantId)/invitations", headers: [asAnn]).json()["data"] as? [Any])?.isEmpty == true)

                // Bob signs in to Ann's tenant and reads its apps as a member.
                let bobInAnn = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json],
                    body: #"{"email":"bob@example.com","password":"correct horse battery","tenantId":"\#(ann.tenantId)"}"#)
                let bobSession = ("Authorization", "Bearer " + (try #require(try self.data(bobInAnn)["token"] as? String)))
                #expect(try await client.call(base + "/apps", headers: [bobSession]).status == 200)

                // Quotas: only global callers change them; maxMembers holds.
                let byOwner = try await client.call(
                    base + "/tenants/\(ann.tenantId)", method: "PATCH", headers: [asAnn, Self.json], body: #"{"quotas":{"maxMembers":50}}"#)
                #expect(byOwner.status == 403)
                let renamed = try await client.call(
                    base + "/tenants/\(ann.tenantId)", method: "PATCH", headers: [asAnn, Self.json], body: #"{"name":"Ann's streams"}"#)
                #expect(try self.data(renamed)["name"] as? String == "Ann's streams")
                let byRoot = try await client.call(
                    base + "/tenants/\(ann.tenantId)", method: "PATCH", headers: [root, Self.json], body: #"{"quotas":{"maxMembers":2}}"#)
                #expect((try self.data(byRoot)["quotas"] as? [String: Any])?["maxMembers"] as? Int == 2)
                let third = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAnn, Self.json], body: #"{"email":"cat@example.com","role":"viewer"}"#)
                #expect(third.status == 403)
                #expect(
                    try third.json()["message"] as? String
                        == "Quota maxMembers (2) reached: members and pending invitations count; remove a member, withdraw an invitation or raise the tenant's quota")
                #expect(try await client.call(base + "/tenants/\(ann.tenantId)/members/\(ann.userId)", method: "DELETE", headers: [asAnn]).status == 400)

                // Users: global callers only; disabling ends sessions and sign-in.
                #expect(try await client.call(base + "/users", headers: [asAnn]).status == 403)
                let users = try #require(try await client.call(base + "/users", headers: [root]).json()["data"] as? [[String: Any]])
                #expect(users.count == 3 && users.allSatisfy { $0["passwordHash"] == nil })
                let disabled = try await client.call(base + "/users/\(bob.userId)", method: "PATCH", headers: [root, Self.json], body: #"{"disabled":true}"#)
                #expect(try self.data(disabled)["disabled"] as? Bool == true)
                try await Stack.waitFor(deadline: .seconds(5), "a disabled user's session to be refused") {
                    try await client.call(base + "/apps", headers: [bobSession]).status == 401
                }
                let login = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"bob@example.com","password":"correct horse battery"}"#)
                #expect(login.status == 401)
                #expect(try login.json()["message"] as? String == "This account is disabled")
                _ = try await client.call(base + "/users/\(bob.userId)", method: "PATCH", headers: [root, Self.json], body: #"{"disabled":false}"#)
                let back = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"bob@example.com","password":"correct horse battery"}"#)
                #expect(back.status == 200)

                // Removing Bob from Ann's tenant takes his role there away.
                let removed = try await client.call(base + "/tenants/\(ann.tenantId)/members/\(bob.userId)", method: "DELETE", headers: [asAnn])
                #expect(removed.status == 200)
                let rejoined = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json],
                    body: #"{"email":"bob@example.com","password":"correct horse battery","tenantId":"\#(ann.tenantId)"}"#)
                #expect(rejoined.status == 404)
            }
        }


        @Test("tenant usage: identity's quotas and counts with media's in one answer; another tenant's is a 404; media down is a 503, never half")
        func tenantUsage() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let ann = try await self.signup(client, base, "use@example.com")
                let bob = try await self.signup(client, base, "other@example.com")
                let asAnn = ("Authorization", "Bearer \(ann.token)")
                let usage = try await client.call(base + "/tenants/\(ann.tenantId)/usage", headers: [asAnn])
                #expect(usage.status == 200, "\(usage.body)")
                let data = try self.data(usage)
                #expect(data["tenantId"] as? String == ann.tenantId)
                #expect((data["quotas"] as? [String: Any])?["maxTokens"] as? Int == 50)
                let counts = try #require(data["usage"] as? [String: Int])
                #expect(counts == ["apps": 0, "liveStreams": 0, "viewers": 0, "members": 1, "tokens": 0])
                #expect(try await client.call(base + "/tenants/\(bob.tenantId)/usage", headers: [asAnn]).status == 404)
                try await stack.stop("media")
                let down = try await client.call(base + "/tenants/\(ann.tenantId)/usage", headers: [asAnn])
                #expect(down.status == 503)
                #expect(try down.json()["message"] as? String == "The media service is unavailable")
            }
        }

        @Test("switch tenant and change password: a session per tenant, a password change ends earlier sessions and answers a fresh one")
        func switchTenantAndPassword() async throws {
            try await Stack.with { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let ann = try await self.signup(client, base, "sw-ann@example.com")
                let bob = try await self.signup(client, base, "sw-bob@example.com")
                let root = ("Authorization", "Bearer " + (try await stack.seedToken(name: "root").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
                _ = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [root, Self.json], body: #"{"email":"sw-bob@example.com","role":"viewer"}"#)
                let asBob = ("Authorization", "Bearer \(bob.token)")
                let invite = try await self.mailedToken(stack, "invite", after: 0)
                #expect(try await client.call(base + "/auth/invitations/accept", method: "POST", headers: [asBob, Self.json], body: #"{"token":"\#(invite)"}"#).status == 200)
                let switched = try await client.call(
                    base + "/auth/switch-tenant", method: "POST", headers: [asBob, Self.json], body: #"{"tenantId":"\#(ann.tenantId)"}"#)
                #expect(switched.status == 200)
                let token = try #require(try self.data(switched)["token"] as? String)
                #expect(try self.claims(token)["tenantId"] as? String == ann.tenantId)
                let foreign = try await client.call(
                    base + "/auth/switch-tenant", method: "POST", headers: [("Authorization", "Bearer \(ann.token)"), Self.json],
                    body: #"{"tenantId":"\#(bob.tenantId)"}"#)
                #expect(foreign.status == 404)

                let wrong = try await client.call(
                    base + "/auth/password", method: "POST", headers: [asBob, Self.json],
                    body: #"{"currentPassword":"nope nope nope","newPassword":"a new password"}"#)
                #expect(wrong.status == 403)
                let changed = try await client.call(
                    base + "/auth/password", method: "POST", headers: [asBob, Self.json],
                    body: #"{"currentPassword":"correct horse battery","newPassword":"a new password"}"#)
                #expect(changed.status == 200)
                let fresh = ("Authorization", "Bearer " + (try #require(try self.data(changed)["token"] as? String)))
                try await Stack.waitFor(deadline: .seconds(5), "sessions from before the change to be refused") {
                    try await client.call(base + "/auth/me", headers: [asBob]).status == 401
                }
                #expect(try await client.call(base + "/auth/me", headers: [fresh]).status == 200)
                let login = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"sw-bob@example.com","password":"a new password"}"#)
                #expect(login.status == 200)
            }
        }

        @Test("break-glass: identity starts without its database, the admin signs in and works as superadmin, other identity routes 503")
        func breakGlassWhileDatabaseDown() async throws {
            let closed = try Stack.freePort()
            let identity = [
                "DATABASE_URL": "postgres://nobody:secret@127.0.0.1:\(closed)/none", "DATABASE_CONNECT_TIMEOUT_S": "1",
                "ADMIN_USER": "ops-admin", "ADMIN_PASS": "break-glass-pass-1234", "LOG_LEVEL": "notice",
            ]
            try await Stack.with(perService: ["identity": identity], livenessOnly: ["identity"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let wrong = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"ops-admin","password":"not the password"}"#)
                #expect(wrong.status == 401)
                let login = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"ops-admin","password":"break-glass-pass-1234"}"#)
                #expect(login.status == 200, "\(login.body)")
                let session = try self.data(login)
                #expect((session["user"] as? [String: Any])?["superadmin"] as? Bool == true)
                let token = try #require(session["token"] as? String)
                #expect(try self.claims(token)["superadmin"] as? Bool == true)
                let bearer = ("Authorization", "Bearer \(token)")
                #expect(try await client.call(base + "/auth/me", headers: [bearer]).status == 200)
                #expect(try await client.call(base + "/apps", headers: [bearer]).status == 200)
                let tenants = try await client.call(base + "/tenants", headers: [bearer])
                #expect(tenants.status == 503)
                #expect(try tenants.json()["message"] as? String == "Identity's database is unavailable; try again shortly")
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"a@example.com","password":"correct horse battery"}"#)
                #expect(signup.status == 503)
                #expect(try await client.call("http://127.0.0.1:\(stack.ports["identity"]!)/internal/v1/ready").status == 503)
                let log = stack.log("identity")
                #expect(log.contains(#""msg":"break-glass login""#) && log.contains(#""msg":"break-glass login refused""#))
                #expect(!log.contains("break-glass-pass-1234"))
            }
        }

        @Test("break-glass with its database up: identity stays running and serves every route; break-glass sessions last 15 min and end on logout and on a new ADMIN_PASS")
        func breakGlassWithDatabaseUp() async throws {
            let identity = ["ADMIN_USER": "ops-admin", "ADMIN_PASS": "break-glass-pass-1234", "LOG_LEVEL": "notice"]
            try await Stack.with(perService: ["identity": identity]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let process = try #require(stack.processes["identity"])
                // The background migration has finished (ready answered); identity used to exit right after.
                try await Stack.waitFor(deadline: .seconds(10), "the migration's notice") {
                    stack.log("identity").contains("database ready; every identity route is served")
                }
                try await Task.sleep(for: .seconds(2))
                #expect(process.isRunning, "identity exited: \(stack.log("identity"))")
                let user = try await self.signup(client, base, "bg-live@example.com")
                #expect(try await client.call(base + "/auth/me", headers: [("Authorization", "Bearer \(user.token)")]).status == 200)
                let login = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"ops-admin","password":"break-glass-pass-1234"}"#)
                #expect(login.status == 200, "\(login.body)")
                let adminToken = try #require(try self.data(login)["token"] as? String)
                let admin = ("Authorization", "Bearer " + adminToken)
                #expect(try await client.call(base + "/tenants", headers: [admin]).status == 200)
                #expect(try await client.call("http://127.0.0.1:\(stack.ports["identity"]!)/internal/v1/ready").status == 200)
                #expect(process.isRunning)
                // Break-glass sessions are short (15 min) and end on logout, through the gateway.
                let claims = try self.claims(adminToken)
                #expect((claims["exp"] as? Int ?? 0) - (claims["iat"] as? Int ?? 0) == 900)
                #expect(try await client.call(base + "/auth/logout", method: "POST", headers: [admin, Self.json], body: "{}").status == 200)
                try await Stack.waitFor(deadline: .seconds(5), "the logged-out break-glass session to be refused") {
                    try await client.call(base + "/tenants", headers: [admin]).status == 401
                }
                let again = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"ops-admin","password":"break-glass-pass-1234"}"#)
                let second = ("Authorization", "Bearer " + (try #require(try self.data(again)["token"] as? String)))
                #expect(try await client.call(base + "/tenants", headers: [second]).status == 200)
                // Rotating ADMIN_PASS ends every session the old one minted.
                #expect(try await stack.stop("identity") == 0)
                try await stack.restart("identity", client: client, extra: ["ADMIN_PASS": "a rotated break-glass pass"])
                try await Stack.waitFor(deadline: .seconds(5), "the old password's session to be refused") {
                    try await client.call(base + "/tenants", headers: [second]).status == 401
                }
                let rotated = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"ops-admin","password":"a rotated break-glass pass"}"#)
                #expect(rotated.status == 200)
                // And it still stops cleanly on SIGTERM.
                #expect(try await stack.stop("identity") == 0)
            }
        }

        @Test("invitations are offers: no account or membership until the invitee accepts; the real owner of an invited address signs up; roles up to the inviter's own")
        func invitations() async throws {
            try await Stack.with(extra: ["STREAMHUB_AUTHZ_ENFORCE": "on"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let ann = try await self.signup(client, base, "inviter@example.com")
                try await stack.verifyEmail(client, "inviter@example.com")
                let asAnn = ("Authorization", "Bearer \(ann.token)")
                let invited = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAnn, Self.json], body: #"{"email":" New.Person@Example.com ","role":"viewer"}"#)
                #expect(invited.status == 201, "\(invited.body)")
                #expect(try self.data(invited)["email"] as? String == "new.person@example.com")
                let members = try #require(try await client.call(base + "/tenants/\(ann.tenantId)/members", headers: [asAnn]).json()["data"] as? [[String: Any]])
                #expect(members.map { $0["email"] as? String } == ["inviter@example.com"])
                // The outbox holds the inviter's verification mail, then the invitation.
                let token = try await self.mailedToken(stack, "invite", after: 1)
                let mails = try FileManager.default.contentsOfDirectory(atPath: stack.dataDir + "/data/outbox").filter { $0.hasSuffix(".eml") }.sorted()
                let text = try String(contentsOfFile: stack.dataDir + "/data/outbox/" + mails[mails.count - 1], encoding: .utf8)
                #expect(text.contains("To: new.person@example.com\r\n") && text.contains("Subject: You are invited to StreamHub\r\n"))

                // No account exists for the address until the invitee makes one from the invitation.
                let guess = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"new.person@example.com","password":"correct horse battery"}"#)
                #expect(guess.status == 401)
                let short = try await client.call(
                    base + "/auth/invitations/signup", method: "POST", headers: [Self.json], body: #"{"token":"\#(token)","password":"short"}"#)
                #expect(short.status == 400)
                let joined = try await client.call(
                    base + "/auth/invitations/signup", method: "POST", headers: [Self.json], body: #"{"token":"\#(token)","password":"correct horse battery"}"#)
                #expect(joined.status == 201, "\(joined.body)")
                #expect(try self.data(joined)["tenantId"] as? String == ann.tenantId)
                let session = ("Authorization", "Bearer " + (try #require(try self.data(joined)["token"] as? String)))
                let me = try await client.call(base + "/auth/me", headers: [session])
                #expect(me.status == 200 && me.body.contains("viewer"), "\(me.body)")
                #expect(try await client.call(base + "/apps", headers: [session]).status == 200)
                let again = try await client.call(
                    base + "/auth/invitations/signup", method: "POST", headers: [Self.json], body: #"{"token":"\#(token)","password":"correct horse battery"}"#)
                #expect(again.status == 404)

                // An invitation never blocks the address's real owner: they sign up as usual, and the
                // invitation then needs their own session.
                _ = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAnn, Self.json], body: #"{"email":"owner-of@example.com","role":"member"}"#)
                let theirs = try await self.mailedToken(stack, "invite", after: 2)
                let real = try await self.signup(client, base, "owner-of@example.com")
                let taken = try await client.call(
                    base + "/auth/invitations/signup", method: "POST", headers: [Self.json], body: #"{"token":"\#(theirs)","password":"correct horse battery"}"#)
                #expect(taken.status == 409)
                let accepted = try await client.call(
                    base + "/auth/invitations/accept", method: "POST", headers: [("Authorization", "Bearer \(real.token)"), Self.json],
                    body: #"{"token":"\#(theirs)"}"#)
                #expect(accepted.status == 200, "\(accepted.body)")

                // An admin invites up to admin, never an owner; a withdrawn invitation's link stops working.
                _ = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAnn, Self.json], body: #"{"email":"adm@example.com","role":"admin"}"#)
                // (the real owner's sign-up mailed their verification link: mail number 4)
                let adminToken = try await self.mailedToken(stack, "invite", after: 4)
                let admin = try await client.call(
                    base + "/auth/invitations/signup", method: "POST", headers: [Self.json], body: #"{"token":"\#(adminToken)","password":"correct horse battery"}"#)
                let asAdmin = ("Authorization", "Bearer " + (try #require(try self.data(admin)["token"] as? String)))
                let owner = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAdmin, Self.json], body: #"{"email":"x@example.com","role":"owner"}"#)
                #expect(owner.status == 403, "\(owner.body)")
                let ghost = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAdmin, Self.json], body: #"{"email":"x@example.com","role":"ghost"}"#)
                #expect(ghost.status == 400)
                let member = try await client.call(
                    base + "/tenants/\(ann.tenantId)/members", method: "POST", headers: [asAdmin, Self.json], body: #"{"email":"x@example.com","role":"member"}"#)
                #expect(member.status == 201, "\(member.body)")
                let withdrawnToken = try await self.mailedToken(stack, "invite", after: 5)
                let id = try #require(try self.data(member)["id"] as? String)
                #expect(try await client.call(base + "/tenants/\(ann.tenantId)/invitations/\(id)", method: "DELETE", headers: [asAdmin]).status == 200)
                #expect(try await client.call(base + "/tenants/\(ann.tenantId)/invitations/\(id)", method: "DELETE", headers: [asAdmin]).status == 404)
                let late = try await client.call(
                    base + "/auth/invitations/signup", method: "POST", headers: [Self.json], body: #"{"token":"\#(withdrawnToken)","password":"correct horse battery"}"#)
                #expect(late.status == 404)
            }
        }

        /// The newest mail's link of `kind` (`magic`, `reset`) in the stack's outbox, waited for.
        func mailedToken(_ stack: Stack, _ kind: String, after count: Int) async throws -> String {
            let outbox = stack.dataDir + "/data/outbox"
            var token: String?
            try await Stack.waitFor(deadline: .seconds(10), "mail number \(count + 1) in \(outbox); identity: \(stack.log("identity").suffix(1500))") {
                let names = ((try? FileManager.default.contentsOfDirectory(atPath: outbox)) ?? []).filter { $0.hasSuffix(".eml") }.sorted()
                guard names.count > count, let newest = names.last else { return false }
                let text = try String(contentsOfFile: outbox + "/" + newest, encoding: .utf8)
                token = text.components(separatedBy: "\r\n").first { $0.contains("/login/\(kind)?token=") }?.components(separatedBy: "token=").last
                return token != nil
            }
            return try #require(token)
        }

        @Test("magic link and password reset through the gateway: mailed to the outbox, single use, bound to their purpose")
        func magicLinkAndReset() async throws {
            try await Stack.with(extra: ["STREAMHUB_MAGIC_LINK_COOLDOWN_S": "1"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let ann = try await self.signup(client, base, "link@example.com")
                // Magic links go to verified addresses only: sign-up's mail is the first in the outbox.
                try await stack.verifyEmail(client, "link@example.com")
                let asked = try await client.call(base + "/auth/magic-link", method: "POST", headers: [Self.json], body: #"{"email":"LINK@example.com"}"#)
                #expect(asked.status == 200)
                #expect(asked.body == #"{"data":{"message":"If an account exists for that address, an email is on its way."},"error":null}"#)
                let magic = try await self.mailedToken(stack, "magic", after: 1)
                let signedIn = try await client.call(base + "/auth/magic/verify", method: "POST", headers: [Self.json], body: #"{"token":"\#(magic)"}"#)
                #expect(signedIn.status == 200)
                #expect(try self.data(signedIn)["tenantId"] as? String == ann.tenantId)
                let again = try await client.call(base + "/auth/magic/verify", method: "POST", headers: [Self.json], body: #"{"token":"\#(magic)"}"#)
                #expect(again.status == 401)
                #expect(try again.json()["message"] as? String == "Invalid or expired link")
                let cli = try await Stack.run(Stack.binary("streamhub"), ["outbox", "--count", "1"], environment: stack.environment)
                #expect(cli.status == 0 && cli.stdout.contains("to link@example.com") && cli.stdout.contains("/login/magic?token=\(magic)"))

                // Reset: the link cannot sign in; it sets the password and ends earlier sessions.
                let reset = try await client.call(base + "/auth/reset-request", method: "POST", headers: [Self.json], body: #"{"email":"link@example.com"}"#)
                #expect(reset.body == asked.body)
                let resetToken = try await self.mailedToken(stack, "reset", after: 2)
                let wrongPurpose = try await client.call(
                    base + "/auth/magic/verify", method: "POST", headers: [Self.json], body: #"{"token":"\#(resetToken)"}"#)
                #expect(wrongPurpose.status == 401)
                let changed = try await client.call(
                    base + "/auth/reset", method: "POST", headers: [Self.json], body: #"{"token":"\#(resetToken)","password":"a brand new secret"}"#)
                #expect(changed.status == 200)
                try await Stack.waitFor(deadline: .seconds(5), "the session from before the reset to be refused") {
                    try await client.call(base + "/auth/me", headers: [("Authorization", "Bearer \(ann.token)")]).status == 401
                }
                let old = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"link@example.com","password":"correct horse battery"}"#)
                #expect(old.status == 401)
                let new = try await client.call(
                    base + "/auth/login", method: "POST", headers: [Self.json], body: #"{"email":"link@example.com","password":"a brand new secret"}"#)
                #expect(new.status == 200)
                let reused = try await client.call(
                    base + "/auth/reset", method: "POST", headers: [Self.json], body: #"{"token":"\#(resetToken)","password":"yet another secret"}"#)
                #expect(reused.status == 401)
                // Unknown addresses get the same answer and no mail.
                let unknown = try await client.call(base + "/auth/magic-link", method: "POST", headers: [Self.json], body: #"{"email":"ghost@example.com"}"#)
                #expect(unknown.status == 200 && unknown.body == asked.body)
                try await Task.sleep(for: .milliseconds(600))
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: stack.dataDir + "/data/outbox")) ?? []).filter { $0.hasSuffix(".eml") }.count == 3)
                for service in Stack.services { #expect(!stack.log(service).contains(magic), "\(service) logged a link token") }
            }
        }
    }
}
