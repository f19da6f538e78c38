import CasbinEngine
import Foundation
import Logging
import ServiceKit
import ServiceStorage
import ServiceLifecycle
import Shared

/// The enforcer a replica decides with, kept in step with the store's policy version.
///
/// Decisions take a lock (the engine's caches mutate); policy reloads build a fresh enforcer off
/// the lock and swap it in.
public final class PolicyEngine: @unchecked Sendable {
    let model: CasbinModel
    let store: any PolicyStore
    let lock = NSLock()
    var enforcer: Enforcer
    public private(set) var version: Int64 = -1

    public init(model: CasbinModel, store: any PolicyStore) throws {
        self.model = model
        self.store = store
        self.enforcer = try Enforcer(model: model)
    }

    public var currentVersion: Int64 { self.lock.withLock { self.version } }

    /// Loads the store's policy when its version differs from ours.
    /// - Returns: whether a reload happened.
    @discardableResult
    public func refresh(force: Bool = false) async throws -> Bool {
        if !force {
            let stored = try await self.store.version()
            if stored == self.currentVersion { return false }
        }
        let (version, rules) = try await self.store.load()
        let fresh = try Enforcer(model: self.model)
        try fresh.replacePolicy(rules.map { PolicyCSV.Line(type: $0.ptype, values: $0.values) })
        return self.lock.withLock {
            // Two refreshes may race (the watcher's poll and push, a local change); never go back.
            guard version >= self.version else { return false }
            self.enforcer = fresh
            self.version = version
            return true
        }
    }

    /// Decides one request.
    public func decide(_ request: [CasbinValue]) throws -> Decision {
        try self.lock.withLock { try self.enforcer.enforceEx(request, context: .standard) }
    }

    /// Decides many requests under one lock acquisition.
    public func decide(batch: [[CasbinValue]]) -> [Result<Decision, CasbinError>] {
        self.lock.withLock { self.enforcer.batchEnforce(batch) }
    }

    /// Reads the current rules of a type.
    public func rules(_ type: String) -> [[String]] {
        self.lock.withLock { self.enforcer.policies(type) }
    }

    /// Applies `changes` to the store (one transaction, one version) and reloads, so the change is
    /// in force on this replica when this returns (other replicas follow within a second).
    /// - Throws: ``StorageError`` from the store.
    public func apply(_ changes: [PolicyChange]) async throws -> (version: Int64, changed: Int) {
        let result = try await self.store.apply(changes)
        try await self.refresh(force: true)
        return result
    }

    /// The roles `subject` holds in `domain`, directly or through other roles.
    public func implicitRoles(of subject: String, in domain: String) -> [String] {
        self.lock.withLock { self.enforcer.implicitRolesForUser(subject, domain: domain) }
    }

    /// The roles that exist in `tenant`: every subject with a permission in the tenant or among the
    /// built-ins (domain `*`), and every role that is itself given a role there — callers
    /// (`user:<id>`, `token:<id>`) are never roles.
    public func knownRoles(in tenant: String) -> Set<String> {
        self.lock.withLock {
            var known = Set(self.enforcer.policies("p").filter { $0.count >= 2 && ($0[1] == tenant || $0[1] == "*") }.map { $0[0] })
            for rule in self.enforcer.policies("g") where rule.count >= 3 && rule[2] == tenant {
                known.insert(rule[0])
            }
            return known.filter { !Self.isCaller($0) }
        }
    }

    /// Whether `subject` names a caller (`user:<id>`, `token:<id>`) rather than a role.
    public static func isCaller(_ subject: String) -> Bool {
        subject.hasPrefix("user:") || subject.hasPrefix("token:")
    }
}

/// Keeps a replica's policy current. On PostgreSQL every change is announced with `NOTIFY` and
/// reloaded at once; the version is also polled every `interval` (100 ms; the contract asks for
/// 1 s), which is all SQLite has and the safety net when the listening connection is lost.
public struct PolicyWatcher: Service {
    let engine: PolicyEngine
    let interval: Duration
    let logger: Logger

    public init(engine: PolicyEngine, interval: Duration = .milliseconds(100), logger: Logger) {
        self.engine = engine
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.poll() }
                group.addTask { await self.listen() }
                await group.waitForAll()
            }
        }
    }

    func poll() async {
        while !Task.isCancelled {
            // Nothing to compare with until start-up has migrated and loaded the policy once.
            if self.engine.currentVersion >= 0 { await self.refresh() }
            try? await Task.sleep(for: self.interval)
        }
    }

    /// Listens for pushed changes, reconnecting after a lost connection; returns at once when the
    /// store has no push.
    func listen() async {
        while !Task.isCancelled {
            do {
                guard try await self.engine.store.listen({ await self.refresh() }) else { return }
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("policy change listener lost, reconnecting", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    func refresh() async {
        do {
            if try await self.engine.refresh() {
                self.logger.info("policy reloaded", metadata: ["version": "\(self.engine.currentVersion)"])
            }
        } catch {
            self.logger.warning("policy refresh failed", metadata: ["error": "\(error)"])
        }
    }
}
