import Foundation
import HTTPTypes
import HummingbirdTesting
import IdentityApp
import Shared
import TestSupport
import Testing

@Suite("E-mail verification")
struct EmailVerificationTests {
    static let password = "correct horse battery"

    func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
    }

    @Test("sign-up mails a verification link; the user is unverified until it is spent; the link works once", arguments: TestDatabases.backends)
    func signupMailsLink(backend: String) async throws {
        try await IdentityHarness.run(backend) { identity in
            let (owner, session) = try await identity.signUp("new@example.com")
            #expect((session["user"] as? [String: Any])?["emailVerified"] as? Bool == false)
            #expect(try await identity.user("new@example.com")?.verifiedAt == nil)
            let mails = try await identity.mails(to: "new@example.com")
            #expect(mails.map(\.subject) == ["Verify your StreamHub e-mail address"])
            let token = try #require(try await identity.linkToken(to: "new@example.com", path: "/login/verify"))
            // A wrong token, and a token of another purpose, are refused.
            #expect(try await identity.post("/api/v1/auth/verify", #"{"token":"AAAA"}"#).status == .unauthorized)
            let verified = try await identity.post("/api/v1/auth/verify", #"{"token":"\#(token)"}"#)
            #expect(verified.status == .ok)
            #expect(try self.json(verified)["message"] as? String == "Your e-mail address is verified.")
            #expect(try await identity.user("new@example.com")?.verifiedAt != nil)
            #expect(try await identity.post("/api/v1/auth/verify", #"{"token":"\#(token)"}"#).status == .unauthorized)
            // /auth/me says so.
            let me = try self.json(try await identity.get("/api/v1/auth/me", as: owner))
            #expect((me["user"] as? [String: Any])?["emailVerified"] as? Bool == true)
            // An unknown field is a 400, as everywhere.
            #expect(try await identity.post("/api/v1/auth/verify", #"{"token":"x","extra":1}"#).status == .badRequest)
        }
    }

    @Test("an unverified user sends no invitations and gets no magic link; verified, both work; an invited sign-up is verified", arguments: TestDatabases.backends)
    func unverifiedLimits(backend: String) async throws {
        try await IdentityHarness.run(backend) { identity in
            let (owner, _) = try await identity.signUp("boss@example.com")
            let tenantId = try #require(owner.tenantId)
            let invite = #"{"email":"friend@example.com","role":"viewer"}"#
            let refused = try await identity.post("/api/v1/tenants/\(tenantId)/members", invite, as: owner)
            #expect(refused.status == .forbidden)
            #expect((try self.json(refused)["message"] as? String)?.hasPrefix("Verify your e-mail address before inviting others") == true)
            #expect(try await identity.count("identity_invitations") == 0)
            // The magic-link request answers as for anyone, and sends nothing to an unverified address.
            let asked = try await identity.post("/api/v1/auth/magic-link", #"{"email":"boss@example.com"}"#)
            #expect(asked.status == .ok)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await identity.mails(to: "boss@example.com").map(\.subject) == ["Verify your StreamHub e-mail address"])
            // Verified: both work.
            let token = try #require(try await identity.linkToken(to: "boss@example.com", path: "/login/verify"))
            #expect(try await identity.post("/api/v1/auth/verify", #"{"token":"\#(token)"}"#).status == .ok)
            #expect(try await identity.post("/api/v1/tenants/\(tenantId)/members", invite, as: owner).status == .created)
            identity.clock.advance(61)
            #expect(try await identity.post("/api/v1/auth/magic-link", #"{"email":"boss@example.com"}"#).status == .ok)
            try await Waiting.until(deadline: .seconds(5), "the magic link") {
                try await identity.mails(to: "boss@example.com").contains { $0.subject == "Your StreamHub sign-in link" }
            }
            // The invitation's link proves the invitee's address.
            let invitation = try #require(try await identity.linkToken(to: "friend@example.com", path: "/login/invite"))
            let joined = try await identity.post(
                "/api/v1/auth/invitations/signup", #"{"token":"\#(invitation)","password":"\#(Self.password)"}"#)
            #expect(joined.status == .created)
            #expect((try self.json(joined)["user"] as? [String: Any])?["emailVerified"] as? Bool == true)
        }
    }

    @Test(
        "required: sign-up answers the same 202 for a new and a taken address, the taken address's owner is told, login waits for verification",
        arguments: TestDatabases.backends)
    func required(backend: String) async throws {
        try await IdentityHarness.run(backend, settings: ["STREAMHUB_EMAIL_VERIFICATION": "required"]) { identity in
            let signup = #"{"email":"Someone@example.com","password":"\#(Self.password)"}"#
            let first = try await identity.post("/api/v1/auth/signup", signup)
            let again = try await identity.post("/api/v1/auth/signup", #"{"email":"someone@EXAMPLE.com","password":"another password 2"}"#, ip: "192.0.2.9")
            #expect(first.status == .accepted)
            #expect(again.status == .accepted)
            #expect(String(buffer: first.body) == String(buffer: again.body))
            #expect(first.headers[.contentType] == again.headers[.contentType])
            #expect(first.headers[.cacheControl] == again.headers[.cacheControl])
            #expect(try self.json(first)["token"] == nil)
            #expect(try await identity.count("identity_users") == 1)
            let subjects = Set(try await identity.mails(to: "someone@example.com").map(\.subject))
            #expect(subjects == ["Verify your StreamHub e-mail address", "Your StreamHub account"])
            // The right password, but not verified: 403; a wrong one: the usual 401.
            let login = #"{"email":"someone@example.com","password":"\#(Self.password)"}"#
            let early = try await identity.post("/api/v1/auth/login", login)
            #expect(early.status == .forbidden)
            #expect((try self.json(early)["message"] as? String)?.hasPrefix("Verify your e-mail address first") == true)
            #expect(try await identity.post("/api/v1/auth/login", #"{"email":"someone@example.com","password":"wrong password!"}"#).status == .unauthorized)
            let token = try #require(try await identity.linkToken(to: "someone@example.com", path: "/login/verify"))
            #expect(try await identity.post("/api/v1/auth/verify", #"{"token":"\#(token)"}"#).status == .ok)
            let signedIn = try await identity.post("/api/v1/auth/login", login)
            #expect(signedIn.status == .ok)
            #expect(try self.json(signedIn)["tenantId"] as? String != nil)
        }
    }

    @Test("verify-request: the same answer for every address; a new link only for an unverified account", arguments: TestDatabases.backends)
    func verifyRequest(backend: String) async throws {
        try await IdentityHarness.run(backend) { identity in
            _ = try await identity.signUp("pending@example.com")
            _ = try await identity.signUp("done@example.com")
            let token = try #require(try await identity.linkToken(to: "done@example.com", path: "/login/verify"))
            #expect(try await identity.post("/api/v1/auth/verify", #"{"token":"\#(token)"}"#).status == .ok)
            // Sign-up's own mail started the 60 s cooldown (as a magic-link request does).
            #expect(try await identity.post("/api/v1/auth/verify-request", #"{"email":"pending@example.com"}"#).status == .tooManyRequests)
            identity.clock.advance(61)
            var answers: Set<String> = []
            for email in ["pending@example.com", "done@example.com", "nobody@example.com"] {
                let response = try await identity.post("/api/v1/auth/verify-request", #"{"email":"\#(email)"}"#, ip: "192.0.2.50")
                #expect(response.status == .ok)
                answers.insert(String(buffer: response.body))
            }
            #expect(answers.count == 1)
            try await Waiting.until(deadline: .seconds(5), "the second verification mail") {
                try await identity.mails(to: "pending@example.com").count == 2
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await identity.mails(to: "done@example.com").count == 1)
            #expect(try await identity.mails(to: "nobody@example.com").isEmpty)
            // Within the cooldown: 429, as for magic links.
            #expect(try await identity.post("/api/v1/auth/verify-request", #"{"email":"pending@example.com"}"#).status == .tooManyRequests)
        }
    }

    @Test("a reset link proves the address: an account made by someone else with it is taken back and verified", arguments: TestDatabases.backends)
    func resetVerifies(backend: String) async throws {
        try await IdentityHarness.run(backend) { identity in
            // Someone signs up with an address that is not theirs.
            _ = try await identity.signUp("victim@example.com")
            #expect(try await identity.post("/api/v1/auth/reset-request", #"{"email":"victim@example.com"}"#).status == .ok)
            try await Waiting.until(deadline: .seconds(5), "the reset mail") {
                try await identity.linkToken(to: "victim@example.com", path: "/login/reset") != nil
            }
            let token = try #require(try await identity.linkToken(to: "victim@example.com", path: "/login/reset"))
            let before = try #require(try await identity.user("victim@example.com"))
            identity.clock.advance(5)
            let reset = try await identity.post("/api/v1/auth/reset", #"{"token":"\#(token)","password":"the real owner's one"}"#)
            #expect(reset.status == .ok)
            let after = try #require(try await identity.user("victim@example.com"))
            #expect(after.verifiedAt != nil)
            #expect(after.sessionsNotBefore > before.sessionsNotBefore)
        }
    }
}
