import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import IdentityApp
import NIOCore
import SQLKit
import ServiceKit
import ServiceStorage
import Shared
import TestSupport
import Testing

/// Guessing at sign-in: second-factor codes per account and per magic link, the opt-in login
/// throttle, and break-glass (slowed, short sessions that end on logout and on a new password).
@Suite("Sign-in limits")
struct SignInLimitTests {
    static let token = String(repeating: "i", count: 40)
    static let secret = String(repeating: "j", count: 40)
    static let password = "correct horse battery"

    struct Harness {
        let client: any TestClientProtocol
        let database: any Database
        let clock: StepClock

        func post(_ path: String, _ body: String, as principal: Principal? = nil, ip: String = "198.51.100.7") async throws -> TestResponse {
            var headers: HTTPFields = [.streamHubInternalToken: SignInLimitTests.token, .contentType: "application/json", .streamHubClientIP: ip]
            if let principal { headers[.streamHubPrincipal] = PrincipalHeader.encode(principal) }
            return try await self.client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
        }

        func json(_ response: TestResponse) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
        }

        /// Signs up `email` and turns TOTP on; a function giving the current code.
        func userWithTOTP(_ email: String) async throws -> (userId: String, code: @Sendable () -> String) {
            let signup = try await self.post("/api/v1/auth/signup", #"{"email":"\#(email)","password":"\#(SignInLimitTests.password)"}"#)
            #expect(signup.status == .created)
            let userId = try #require((try self.json(signup)["user"] as? [String: Any])?["id"] as? String)
            let me = Principal(kind: .user, scope: .tenant, subject: "user:\(userId)", tenantId: "t")
            #expect(try await self.post("/api/v1/auth/totp/enroll", "{}", as: me).status == .ok)
            let stored = try #require(try await SQLTOTPRepository(database: self.database).record(userId: userId))
            let raw = try SecretSealer(secret: SignInLimitTests.secret).open(stored.sealedSecret)
            let clock = self.clock
            let code: @Sendable () -> String = { TOTPAuthenticator.code(secret: raw, step: TOTPAuthenticator.step(clock.now())) }
            #expect(try await self.post("/api/v1/auth/totp/confirm", #"{"code":"\#(code())"}"#, as: me).status == .ok)
            // The confirming step is spent; sign-ins below use the next one.
            self.clock.advance(30)
            return (userId, code)
        }

        func login(_ email: String, password: String = SignInLimitTests.password, code: String? = nil, ip: String = "198.51.100.7") async throws
            -> TestResponse
        {
            let totp = code.map { #","totpCode":"\#($0)""# } ?? ""
            return try await self.post("/api/v1/auth/login", #"{"email":"\#(email)","password":"\#(password)"\#(totp)}"#, ip: ip)
        }
    }

    func withIdentity(
        _ backend: String, settings: [String: String] = [:], _ body: @escaping @Sendable (Harness) async throws -> Void
    ) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "identity")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await IdentityMigrations.migrator.migrate(database, logger: TestDatabases.logger)
            let clock = StepClock()
            let app = try await buildIdentity(
                reader: .values(
                    [
                        "STREAMHUB_INTERNAL_TOKEN": Self.token, "STREAMHUB_JWT_SECRET": Self.secret,
                        "STREAMHUB_MAIL_OUTBOX": try TestDatabases.temporaryDirectory(),
                    ].merging(settings) { _, new in new }),
                dependencies: IdentityDependencies(
                    tokens: SQLApiTokenRepository(database: database), accounts: SQLAccountRepository(database: database),
                    totp: SQLTOTPRepository(database: database), links: SQLSignInLinkRepository(database: database),
                    attempts: SQLAttemptRepository(database: database), roleIntents: SQLRoleIntentRepository(database: database), breakGlassStore: BreakGlassStore(database: database),
                    transport: AgreeableAuthz(), timeSource: clock))
            try await app.test(.router) { client in try await body(Harness(client: client, database: database, clock: clock)) }
        }
    }

    /// A six-digit code that is not `code` (nor either neighbour step's, with overwhelming odds).
    static func wrong(_ code: String, _ n: Int) -> String {
        String(format: "%06d", (Int(code)! + 1 + n * 7919) % 1_000_000)
    }

    @Test("wrong TOTP codes: 5 per account per window, then 429 with Retry-After even for the right code; a missing code is not counted; the window passing restores sign-in", arguments: TestDatabases.backends)
    func secondFactorPerAccount(backend: String) async throws {
        try await self.withIdentity(backend) { h in
            let (_, code) = try await h.userWithTOTP("guess@example.com")
            // Asking without a code is how a client learns a code is needed: never counted.
            for _ in 0..<8 {
                let asked = try await h.login("guess@example.com")
                #expect(asked.status == .unauthorized)
                #expect(try h.json(asked)["totpRequired"] as? Bool == true)
            }
            for n in 0..<5 {
                let wrong = try await h.login("guess@example.com", code: Self.wrong(code(), n))
                #expect(wrong.status == .unauthorized)
                #expect(try h.json(wrong)["totpRequired"] as? Bool == true)
            }
            let locked = try await h.login("guess@example.com", code: code())
            #expect(locked.status == .tooManyRequests)
            let body = try h.json(locked)
            #expect(body["message"] as? String == "Too many wrong codes; try again in 900s")
            #expect(body["retryAfterSeconds"] as? Int == 900)
            #expect(locked.headers[.retryAfter] == "900")
            // The password is not what is limited: a wrong one is still the plain 401.
            #expect(try await h.login("guess@example.com", password: "not the password", code: code()).status == .unauthorized)
            h.clock.advance(600)
            #expect(try await h.login("guess@example.com", code: code()).headers[.retryAfter] == "300")
            h.clock.advance(301)
            #expect(try await h.login("guess@example.com", code: code()).status == .ok)
        }
    }

    @Test("concurrent wrong codes for one account: exactly 5 are judged, every other is refused", arguments: TestDatabases.backends)
    func secondFactorUnderConcurrency(backend: String) async throws {
        try await self.withIdentity(backend) { h in
            let (_, code) = try await h.userWithTOTP("burst@example.com")
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for n in 0..<30 { group.addTask { try await h.login("burst@example.com", code: Self.wrong(code(), n)).status } }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .unauthorized }.count == 5)
            #expect(statuses.filter { $0 == .tooManyRequests }.count == 25)
            // The TOTP routes share the account's limit: a stolen session cannot guess there either.
            let userId = try #require(try await SQLAccountRepository(database: h.database).user(email: "burst@example.com")?.id)
            let me = Principal(kind: .user, scope: .tenant, subject: "user:\(userId)", tenantId: "t")
            #expect(try await h.post("/api/v1/auth/totp/disable", #"{"code":"\#(code())"}"#, as: me).status == .tooManyRequests)
        }
    }

    @Test("a magic link is spent after 3 wrong codes: the right code then gets the invalid-link answer", arguments: TestDatabases.backends)
    func secondFactorPerLink(backend: String) async throws {
        try await self.withIdentity(backend) { h in
            let (userId, code) = try await h.userWithTOTP("link@example.com")
            let link = String(repeating: "L", count: 43)
            let now = Timestamp.millis(h.clock.now())
            let outcome = try await SQLSignInLinkRepository(database: h.database).request(
                kind: "magic", email: "link@example.com", ip: "198.51.100.7", at: now, limits: MailLimits(), cooldown: false,
                link: LinkToken(hash: SecretDigest.sha256Hex(link), purpose: "magic", userId: userId, expiresAt: now + 900_000), mail: nil)
            #expect(outcome == .dispatched)
            func verify(_ totp: String) async throws -> TestResponse {
                try await h.post("/api/v1/auth/magic/verify", #"{"token":"\#(link)","totpCode":"\#(totp)"}"#)
            }
            #expect(try await verify(Self.wrong(code(), 0)).status == .unauthorized)
            #expect(try h.json(try await verify(Self.wrong(code(), 1)))["totpRequired"] as? Bool == true)
            let third = try await verify(Self.wrong(code(), 2))
            #expect(third.status == .unauthorized)
            #expect(try h.json(third)["message"] as? String == "Invalid or expired link")
            let right = try await verify(code())
            #expect(right.status == .unauthorized)
            #expect(try h.json(right)["message"] as? String == "Invalid or expired link")
            // The account itself has 2 failures to spare: the password path still signs in.
            #expect(try await h.login("link@example.com", code: code()).status == .ok)
        }
    }

    @Test("the login throttle is off by default: 20 wrong passwords, then the right one signs in")
    func loginThrottleOff() async throws {
        try await self.withIdentity("sqlite", settings: [:]) { h in
            let signup = try await h.post("/api/v1/auth/signup", #"{"email":"free@example.com","password":"\#(Self.password)"}"#)
            #expect(signup.status == .created)
            for _ in 0..<20 { #expect(try await h.login("free@example.com", password: "wrong password here").status == .unauthorized) }
            #expect(try await h.login("free@example.com").status == .ok)
        }
    }

    @Test("opt-in login throttle: per email (known and unknown alike) and per client address; a success does not count", arguments: TestDatabases.backends)
    func loginThrottleOn(backend: String) async throws {
        let settings = ["STREAMHUB_LOGIN_THROTTLE_PER_EMAIL": "3", "STREAMHUB_LOGIN_THROTTLE_PER_IP": "5", "STREAMHUB_LOGIN_THROTTLE_WINDOW_S": "60"]
        try await self.withIdentity(backend, settings: settings) { h in
            #expect(try await h.post("/api/v1/auth/signup", #"{"email":"known@example.com","password":"\#(Self.password)"}"#).status == .created)
            for _ in 0..<4 { #expect(try await h.login("known@example.com", ip: "203.0.113.1").status == .ok) }
            for (email, ip) in [("known@example.com", "203.0.113.2"), ("nobody@example.com", "203.0.113.5")] {
                for _ in 0..<3 { #expect(try await h.login(email, password: "wrong password here", ip: ip).status == .unauthorized) }
                let refused = try await h.login(email, ip: "203.0.113.3")
                #expect(refused.status == .tooManyRequests)
                #expect(try h.json(refused)["message"] as? String == "Too many failed sign-ins; try again in 60s")
                #expect(refused.headers[.retryAfter] == "60")
            }
            // Three failures from 203.0.113.2 so far; two more reach its limit of 5, for any email.
            for _ in 0..<2 { #expect(try await h.login("other@example.com", ip: "203.0.113.2").status == .unauthorized) }
            #expect(try await h.login("third@example.com", ip: "203.0.113.2").status == .tooManyRequests)
            #expect(try await h.login("third@example.com", ip: "203.0.113.4").status == .unauthorized)
            h.clock.advance(61)
            #expect(try await h.login("known@example.com", ip: "203.0.113.2").status == .ok)
        }
    }

    @Test("sign-ups: 10 per client address and 3 per email per hour, every attempt counted (429 with Retry-After); 0 turns a limit off", arguments: TestDatabases.backends)
    func signupLimits(backend: String) async throws {
        try await self.withIdentity(backend, settings: [:]) { h in
            func signup(_ email: String, ip: String) async throws -> TestResponse {
                try await h.post("/api/v1/auth/signup", #"{"email":"\#(email)","password":"\#(Self.password)"}"#, ip: ip)
            }
            for n in 0..<10 { #expect(try await signup("bulk\(n)@example.com", ip: "203.0.113.20").status == .created) }
            let refused = try await signup("bulk10@example.com", ip: "203.0.113.20")
            #expect(refused.status == .tooManyRequests)
            #expect(try h.json(refused)["message"] as? String == "Too many sign-ups; try again in 3600s")
            #expect(refused.headers[.retryAfter] == "3600")
            #expect(try await SQLAccountRepository(database: h.database).user(email: "bulk10@example.com") == nil)
            // One email from many addresses: three attempts (the repeats are 409s), then 429.
            #expect(try await signup("taken@example.com", ip: "203.0.113.21").status == .created)
            #expect(try await signup("taken@example.com", ip: "203.0.113.22").status == .conflict)
            #expect(try await signup("taken@example.com", ip: "203.0.113.23").status == .conflict)
            #expect(try await signup("taken@example.com", ip: "203.0.113.24").status == .tooManyRequests)
            h.clock.advance(3601)
            #expect(try await signup("bulk10@example.com", ip: "203.0.113.20").status == .created)
        }
        try await self.withIdentity(backend, settings: ["STREAMHUB_SIGNUP_LIMIT_PER_IP": "0", "STREAMHUB_SIGNUP_LIMIT_PER_EMAIL": "0"]) { h in
            for n in 0..<12 {
                let answer = try await h.post("/api/v1/auth/signup", #"{"email":"free\#(n)@example.com","password":"\#(Self.password)"}"#)
                #expect(answer.status == .created)
            }
        }
    }

    static let breakGlass = ["ADMIN_USER": "ops-admin", "ADMIN_PASS": "break-glass-pass-1234"]

    func claims(_ response: TestResponse) throws -> SessionClaims {
        let token = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])["token"] as? String
        let tokens = SessionTokens(secret: Self.secret, issuer: "http://127.0.0.1:8080")
        let text = try #require(token)
        return try #require(tokens.verify(text, now: Date()))
    }

    func state(_ h: Harness, version: String?) async throws -> SessionState {
        let body = try JSONEncoder().encode(SessionStateRequest(userId: "break-glass", breakGlassVersion: version))
        let answer = try await h.post("/internal/v1/sessions/state", String(decoding: body, as: UTF8.self))
        return try JSONDecoder().decode(SessionState.self, from: Data(buffer: answer.body))
    }

    @Test("break-glass is slowed per address after failures, never locked out; its sessions last ADMIN_SESSION_TTL_S and carry the password's version")
    func breakGlassPacing() async throws {
        try await self.withIdentity("sqlite", settings: Self.breakGlass.merging(["ADMIN_SESSION_TTL_S": "300"]) { _, new in new }) { h in
            let wrong = #"{"email":"ops-admin","password":"not the password"}"#
            let right = #"{"email":"ops-admin","password":"break-glass-pass-1234"}"#
            for _ in 0..<4 { #expect(try await h.post("/api/v1/auth/login", wrong, ip: "203.0.113.9").status == .unauthorized) }
            // Four failures: this address's next turn is 4 × 250 ms after the last one began.
            let started = ContinuousClock.now
            let login = try await h.post("/api/v1/auth/login", right, ip: "203.0.113.9")
            let waited = ContinuousClock.now - started
            #expect(login.status == .ok)
            #expect(waited >= .milliseconds(700), "waited \(waited)")
            // Six guesses at once from one address queue behind each other.
            let burst = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<6 { group.addTask { _ = try await h.post("/api/v1/auth/login", wrong, ip: "203.0.113.10") } }
                try await group.waitForAll()
            }
            // Turns at 0, 0.25, 0.75, 1.5, 2.5, 3.75 s.
            #expect(ContinuousClock.now - burst >= .milliseconds(3600))
            let claims = try self.claims(login)
            #expect(claims.exp - (claims.iat ?? 0) == 300)
            let version = try #require(claims.bgv)
            #expect(version.count == 24 && !version.contains("break-glass-pass"))
            #expect(try await self.state(h, version: version) == SessionState(exists: true, disabled: false, notBefore: 0))
            #expect(try await self.state(h, version: "000000000000000000000000").notBefore == .max)
            #expect(try await self.state(h, version: nil).notBefore == .max)
        }
    }

    @Test("break-glass logout ends every break-glass session: stored, so another replica on the database honours it", arguments: TestDatabases.backends)
    func breakGlassLogout(backend: String) async throws {
        try await self.withIdentity(backend, settings: Self.breakGlass) { h in
            let login = try await h.post("/api/v1/auth/login", #"{"email":"ops-admin","password":"break-glass-pass-1234"}"#)
            let claims = try self.claims(login)
            let admin = Principal(kind: .user, scope: .global, subject: "user:break-glass", tenantId: nil, superadmin: true)
            let logout = try await h.post("/api/v1/auth/logout", "{}", as: admin)
            #expect(logout.status == .ok)
            let ended = try await self.state(h, version: claims.bgv)
            #expect(ended.notBefore > claims.iat ?? 0)
            struct Row: Decodable { var sessions_not_before: Int64 }
            let stored = try await h.database.withSQL { sql in
                try await sql.raw("SELECT sessions_not_before FROM identity_break_glass").first(decoding: Row.self)
            }
            #expect(stored?.sessions_not_before == ended.notBefore)
            // Another replica (its own memory, the same database) and another password.
            let replica = try await buildIdentity(
                reader: .values([
                    "STREAMHUB_INTERNAL_TOKEN": Self.token, "STREAMHUB_JWT_SECRET": Self.secret, "ADMIN_USER": "ops-admin",
                    "ADMIN_PASS": "a rotated break-glass pass",
                ]),
                dependencies: IdentityDependencies(
                    tokens: SQLApiTokenRepository(database: h.database), accounts: SQLAccountRepository(database: h.database),
                    totp: SQLTOTPRepository(database: h.database), links: SQLSignInLinkRepository(database: h.database),
                    attempts: SQLAttemptRepository(database: h.database), roleIntents: SQLRoleIntentRepository(database: h.database), breakGlassStore: BreakGlassStore(database: h.database),
                    transport: AgreeableAuthz(), timeSource: h.clock))
            try await replica.test(.router) { client in
                let other = Harness(client: client, database: h.database, clock: h.clock)
                // Rotated: the old password's sessions have ended whatever their time.
                #expect(try await self.state(other, version: claims.bgv).notBefore == .max)
                let fresh = try self.claims(try await other.post("/api/v1/auth/login", #"{"email":"ops-admin","password":"a rotated break-glass pass"}"#))
                #expect(fresh.bgv != claims.bgv)
                #expect(try await self.state(other, version: fresh.bgv).notBefore == ended.notBefore)
                #expect((fresh.iat ?? 0) >= ended.notBefore)
            }
        }
    }
}
