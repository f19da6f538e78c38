import Crypto
import Foundation
import Hummingbird
import Logging
import ServiceKit
import ServiceLifecycle
import ServiceStorage
import Shared
import Synchronization

/// The break-glass superadmin (`ADMIN_USER` / `ADMIN_PASS`): a login that never needs the
/// database, so it works while the database is down. Never locked out and no TOTP, but slowed:
/// attempts from one address after failures wait a delay that grows with them (``BreakGlassPacer``).
/// Every use is logged at notice. Compared in constant time (SHA-256 digests, so lengths do not
/// leak either). Its sessions are short (`ADMIN_SESSION_TTL_S`, 15 min), carry the version of the
/// password that minted them (rotating `ADMIN_PASS` ends them all), and end on logout.
public struct BreakGlass: Sendable {
    /// The subject of break-glass sessions (`user:break-glass`); no stored user has it.
    public static let userId = "break-glass"
    let user: String
    let userDigest: [UInt8]
    let passwordDigest: [UInt8]
    /// The `bgv` claim of sessions minted with this user and password: an HMAC under the JWT
    /// secret, so a token tells nothing about the password.
    let version: String
    let sessionLifetime: Int64
    let pacer = BreakGlassPacer()
    let ended = BreakGlassLogout()

    public init(user: String, password: String, signingSecret: String, sessionLifetime: Int64 = 900) {
        self.user = user
        self.userDigest = Array(SHA256.hash(data: Data(user.utf8)))
        self.passwordDigest = Array(SHA256.hash(data: Data(password.utf8)))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("streamhub break-glass session\u{0}\(user)\u{0}\(password)".utf8), using: SymmetricKey(data: Data(signingSecret.utf8)))
        self.version = mac.prefix(12).map { String(format: "%02x", $0) }.joined()
        self.sessionLifetime = sessionLifetime
    }

    /// Whether `login` names the break-glass user (then only its password counts).
    func names(_ login: String) -> Bool {
        ConstantTime.equals(Array(SHA256.hash(data: Data(login.utf8))), self.userDigest)
    }

    func accepts(password: String) -> Bool {
        ConstantTime.equals(Array(SHA256.hash(data: Data(password.utf8))), self.passwordDigest)
    }

    /// What `/auth/me` and sessions show for it.
    var summary: UserSummary {
        UserSummary(id: Self.userId, email: self.user, name: "Break-glass administrator", superadmin: true, disabled: false, createdAt: "1970-01-01T00:00:00.000Z")
    }

    /// The state the gateway checks break-glass sessions against: one minted with another
    /// password has ended (`notBefore` in the far future), others end at the last logout.
    func sessionState(version: String?, endedBefore: Int64) -> SessionState {
        guard let version, ConstantTime.equals(Array(version.utf8), Array(self.version.utf8)) else {
            return SessionState(exists: true, disabled: false, notBefore: .max)
        }
        return SessionState(exists: true, disabled: false, notBefore: endedBefore)
    }
}

/// Spaces break-glass attempts from one client address: each attempt after a failure waits for
/// its turn, the gap growing by 250 ms per failure up to 5 s, and no attempt waits more than 10 s
/// (slowed, never locked out). A success clears the address; failures are forgotten after 15 min
/// without one. In memory (it must work without the database), at most 10,000 addresses.
final class BreakGlassPacer: Sendable {
    struct Entry {
        var failures: Int
        var nextTurn: ContinuousClock.Instant
        var lastAttempt: ContinuousClock.Instant
    }

    let entries = Mutex<[String: Entry]>([:])
    static let step = Duration.milliseconds(250)
    static let largestGap = Duration.seconds(5)
    static let longestWait = Duration.seconds(10)
    static let forgetAfter = Duration.seconds(900)
    static let capacity = 10_000

    static func gap(afterFailures failures: Int) -> Duration {
        min(Self.step * min(failures, 1000), Self.largestGap)
    }

    /// Waits for this address's turn. The attempt counts as a failure until ``succeeded(_:)``, so
    /// concurrent guesses queue behind each other.
    func waitForTurn(_ address: String) async {
        let now = ContinuousClock.now
        let turn = self.entries.withLock { entries -> ContinuousClock.Instant in
            var entry = entries[address] ?? Entry(failures: 0, nextTurn: now, lastAttempt: now)
            if now - entry.lastAttempt > Self.forgetAfter { entry = Entry(failures: 0, nextTurn: now, lastAttempt: now) }
            let turn = min(max(now, entry.nextTurn), now + Self.longestWait)
            entry.failures += 1
            entry.nextTurn = turn + Self.gap(afterFailures: entry.failures)
            entry.lastAttempt = now
            if entries[address] == nil, entries.count >= Self.capacity {
                entries = entries.filter { now - $0.value.lastAttempt <= Self.forgetAfter }
                if entries.count >= Self.capacity, let oldest = entries.min(by: { $0.value.lastAttempt < $1.value.lastAttempt })?.key {
                    entries[oldest] = nil
                }
            }
            entries[address] = entry
            return turn
        }
        if turn > now { try? await Task.sleep(until: turn, clock: .continuous) }
    }

    func succeeded(_ address: String) {
        self.entries.withLock { $0[address] = nil }
    }
}

/// When break-glass sessions were last ended by a logout: kept in memory (works while the database
/// is down) and in the database when it is up, so every identity replica honours it; the later of
/// the two counts. A logout while the database is down reaches the other replicas when it returns.
final class BreakGlassLogout: Sendable {
    struct State {
        var local: Int64 = 0
        var stored: Int64 = 0
        var readAt: ContinuousClock.Instant?
    }

    let state = Mutex(State())
    static let refresh = Duration.seconds(2)

    /// The later of this replica's and the stored logout; the stored one is re-read at most every
    /// 2 s, and a local one the database has not seen yet is written.
    func endedBefore(database: BreakGlassStore?) async -> Int64 {
        let now = ContinuousClock.now
        let (local, stored, due) = self.state.withLock { state in
            (state.local, state.stored, state.readAt.map { now - $0 >= Self.refresh } ?? true)
        }
        guard due, let database else { return max(local, stored) }
        self.state.withLock { $0.readAt = now }
        do {
            let read = try await database.loggedOutBefore(atLeast: local)
            self.state.withLock { $0.stored = max($0.stored, read) }
            return max(local, read)
        } catch {
            return max(local, stored)
        }
    }

    func end(at notBefore: Int64, database: BreakGlassStore?) async -> Bool {
        self.state.withLock {
            $0.local = max($0.local, notBefore)
            $0.readAt = nil
        }
        guard let database else { return false }
        do {
            _ = try await database.loggedOutBefore(atLeast: notBefore)
            return true
        } catch {
            return false
        }
    }
}

/// The stored break-glass logout (one row).
public struct BreakGlassStore: Sendable {
    let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    struct Row: Decodable { var sessions_not_before: Int64 }

    /// Raises the stored logout to `atLeast` when it is earlier, and returns it.
    func loggedOutBefore(atLeast: Int64) async throws -> Int64 {
        try await self.database.transaction { sql in
            try await self.database.lock("identity_break_glass", in: sql)
            let stored = try await sql.raw("SELECT sessions_not_before FROM identity_break_glass WHERE id = 1").first(decoding: Row.self)?
                .sessions_not_before
            guard let stored else {
                try await sql.raw("INSERT INTO identity_break_glass (id, sessions_not_before) VALUES (1, \(bind: atLeast))").run()
                return atLeast
            }
            guard stored < atLeast else { return stored }
            try await sql.raw("UPDATE identity_break_glass SET sessions_not_before = \(bind: atLeast) WHERE id = 1").run()
            return atLeast
        }
    }
}

/// Whether identity's database is migrated and usable. With break-glass configured identity
/// starts without its database: migrations are retried in the background and every route that
/// needs the database answers 503 until then.
public final class DatabaseGate: Sendable {
    let state = Mutex(false)

    public init(open: Bool = false) {
        self.state.withLock { $0 = open }
    }

    public var isOpen: Bool { self.state.withLock { $0 } }

    func open() { self.state.withLock { $0 = true } }

    /// - Throws: ``ServiceError`` 503 while the database is not ready.
    public func check() throws {
        guard self.isOpen else { throw ServiceError(.serviceUnavailable, message: "Identity's database is unavailable; try again shortly") }
    }
}

/// 503 for every request of the group while the gate is shut, except the routes that serve
/// break-glass without the database (`exempt`).
public struct DatabaseGateMiddleware<Context: ServiceRequestContextProtocol>: RouterMiddleware {
    let gate: DatabaseGate
    let exempt: Set<String>

    public init(gate: DatabaseGate, exempt: Set<String>) {
        self.gate = gate
        self.exempt = exempt
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if !self.gate.isOpen && !self.exempt.contains(request.uri.path) { try self.gate.check() }
        return try await next(request, context)
    }
}

/// Migrates in the background until it works (logging each failure at warning), opens the gate, and
/// then stays until shutdown: swift-service-lifecycle ends the whole group when a service returns.
public struct BackgroundMigration: Service {
    let migrate: @Sendable () async throws -> Void
    let gate: DatabaseGate
    let logger: Logger

    public init(migrate: @escaping @Sendable () async throws -> Void, gate: DatabaseGate, logger: Logger) {
        self.migrate = migrate
        self.gate = gate
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.migrateUntilDone()
        }
        // Done (or shutting down): a service that returns would stop identity, so it waits here.
        try? await gracefulShutdown()
    }

    func migrateUntilDone() async {
        var delay = Duration.seconds(1)
        while !Task.isCancelled {
            do {
                try await self.migrate()
                self.gate.open()
                self.logger.notice("database ready; every identity route is served")
                return
            } catch {
                self.logger.warning("database not ready; break-glass logins only, retrying", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(15))
        }
    }
}
