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
/// database, so it works while the database is down. No limiter, no TOTP; every use is logged at
/// notice. Compared in constant time (SHA-256 digests, so lengths do not leak either).
public struct BreakGlass: Sendable {
    /// The subject of break-glass sessions (`user:break-glass`); no stored user has it.
    public static let userId = "break-glass"
    let user: String
    let userDigest: [UInt8]
    let passwordDigest: [UInt8]

    public init(user: String, password: String) {
        self.user = user
        self.userDigest = Array(SHA256.hash(data: Data(user.utf8)))
        self.passwordDigest = Array(SHA256.hash(data: Data(password.utf8)))
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
