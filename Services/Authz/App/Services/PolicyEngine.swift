import CasbinEngine
import Foundation
import Logging
import ServiceKit
import ServiceStorage
import ServiceLifecycle
import Shared
import Synchronization

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

    /// How the last refresh brought the policy up to date (for tests and the log).
    public enum RefreshKind: Sendable, Equatable {
        case current, applied(changes: Int), reloaded
    }

    /// Brings the policy to the store's version: by applying the changes made since ours when the
    /// store still has them all (a grant costs its own rows, not the whole policy), else by a full
    /// reload.
    /// - Returns: whether the policy moved.
    @discardableResult
    public func refresh(force: Bool = false) async throws -> Bool {
        try await self.update(force: force) != .current
    }

    public func update(force: Bool = false) async throws -> RefreshKind {
        let local = self.currentVersion
        if !force {
            let stored = try await self.store.version()
            if stored == local { return .current }
        }
        if !force, local >= 0, let delta = try await self.store.changes(since: local) {
            let applied: Bool = self.lock.withLock {
                // Another refresh got here first: its result stands, or ours is stale.
                guard self.version == local else { return delta.version <= self.version }
                do {
                    for change in delta.changes {
                        switch change {
                        case .add(let rule): try self.enforcer.addPolicy(rule.ptype, rule.values)
                        case .remove(let rule): try self.enforcer.removePolicy(rule.ptype, rule.values)
                        }
                    }
                } catch {
                    // The enforcer may be half-changed: only a full reload (below) is right now.
                    self.version = -1
                    return false
                }
                self.enforcer.invalidateCaches()
                self.version = delta.version
                return true
            }
            if applied { return delta.changes.isEmpty ? .current : .applied(changes: delta.changes.count) }
        }
        return try await self.reload() ? .reloaded : .current
    }

    /// Loads the whole policy into a fresh enforcer and swaps it in.
    func reload() async throws -> Bool {
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
        if result.changed > 0 { try await self.refresh() }
        return result
    }

    /// The roles `subject` holds in `domain`, directly or through other roles.
    public func implicitRoles(of subject: String, in domain: String) -> [String] {
        self.lock.withLock { self.enforcer.implicitRolesForUser(subject, domain: domain) }
    }

    /// The `g` rules `subject, role, tenant` in force (what removing a member takes away).
    public func assignments(of subject: String, in tenant: String) -> [[String]] {
        self.lock.withLock { self.enforcer.directRoles(of: subject, inExactDomain: tenant).map { [subject, $0, tenant] } }
    }

    /// The roles that exist in `tenant`: every subject with a permission in the tenant or among the
    /// built-ins (domain `*`), and every role that is itself given a role there — callers
    /// (`user:<id>`, `token:<id>`) are never roles.
    public func knownRoles(in tenant: String) -> Set<String> {
        self.lock.withLock {
            var known: Set<String> = []
            for rule in self.enforcer.policies("p") where rule.count >= 2 && (rule[1] == tenant || rule[1] == "*") && !Self.isCaller(rule[0]) {
                known.insert(rule[0])
            }
            // The `g` rules of the tenant through the role links (a 100,000-rule policy is not read
            // per grant); only roles themselves (not callers) count.
            for subject in self.enforcer.subjectsWithRoles(inDomain: tenant) where !Self.isCaller(subject) {
                known.insert(subject)
            }
            return known
        }
    }

    /// Whether `subject` names a caller (`user:<id>`, `token:<id>`) rather than a role.
    public static func isCaller(_ subject: String) -> Bool {
        subject.hasPrefix("user:") || subject.hasPrefix("token:")
    }
}

/// When a replica last knew its policy to be the store's: the watcher's confirmations, read by
/// readiness and the metric.
public final class PolicyConfirmation: Sendable {
    let last = Mutex<ContinuousClock.Instant?>(nil)
    /// Past this, the replica's decisions may be stale: readiness fails.
    public let stalenessBound: Duration

    public init(stalenessBound: Duration = .seconds(5)) {
        self.stalenessBound = stalenessBound
    }

    /// Records that the policy in force is the store's, now.
    public func confirm() { self.last.withLock { $0 = .now } }

    /// Time since the last confirmation; nil before the first.
    public var age: Duration? { self.last.withLock { $0.map { ContinuousClock.now - $0 } } }

    /// The readiness check: fails while the version has not been confirmed within the bound.
    public func readiness() -> ReadinessCheck {
        ReadinessCheck(name: "policy") {
            guard let age = self.age else { return "policy not loaded yet" }
            guard age <= self.stalenessBound else {
                return "policy version not confirmed for \(age.components.seconds) s (bound \(self.stalenessBound.components.seconds) s)"
            }
            return nil
        }
    }
}

/// Keeps a replica's policy current. On PostgreSQL every change is announced with `NOTIFY` and
/// reloaded at once; the version is also polled every `interval` (100 ms; the contract asks for
/// 1 s), which is all SQLite has and the safety net when the listening connection is lost.
///
/// Both loops outlive any database fault: every store call has the storage deadline
/// (`DATABASE_QUERY_TIMEOUT_S`), so a call on a connection that died fails instead of hanging the
/// loop; the listener reconnects with back-off (0.2 s doubling to 5 s) and re-reads the version
/// each time it does. Each successful read of the version is a confirmation
/// (``PolicyConfirmation``): while none has come for longer than the staleness bound, readiness
/// fails and `streamhub_authz_policy_unconfirmed_seconds` shows for how long; the log says when
/// the watcher loses the store and when it is current again.
public struct PolicyWatcher: Service {
    let engine: PolicyEngine
    let interval: Duration
    let logger: Logger
    let confirmation: PolicyConfirmation
    let reportUnconfirmed: @Sendable (Double) -> Void

    public init(
        engine: PolicyEngine, interval: Duration = .milliseconds(100), confirmation: PolicyConfirmation = PolicyConfirmation(),
        metrics: ServiceMetrics? = nil, logger: Logger
    ) {
        self.engine = engine
        self.interval = interval
        self.logger = logger
        self.confirmation = confirmation
        let gauge = metrics?.gauge(.policyUnconfirmed)
        gauge?.set(Double(0))
        self.reportUnconfirmed = { gauge?.set($0) }
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

    final class Outage: Sendable {
        let since = Mutex<ContinuousClock.Instant?>(nil)
    }

    func poll() async {
        let outage = Outage()
        while !Task.isCancelled {
            // Nothing to compare with until start-up has migrated and loaded the policy once.
            if self.engine.currentVersion >= 0 {
                let confirmed = await self.refresh()
                let started = outage.since.withLock { since -> ContinuousClock.Instant? in
                    defer { since = confirmed ? nil : (since ?? .now) }
                    return since
                }
                if confirmed, let started {
                    self.logger.notice(
                        "policy watcher: store reachable again, version confirmed",
                        metadata: ["version": "\(self.engine.currentVersion)", "after_ms": "\(Self.milliseconds(ContinuousClock.now - started))"])
                } else if !confirmed, started == nil {
                    self.logger.warning("policy watcher: cannot confirm the policy version; retrying", metadata: ["version": "\(self.engine.currentVersion)"])
                }
                let age = self.confirmation.age ?? .zero
                self.reportUnconfirmed(confirmed ? 0 : Double(Self.milliseconds(age)) / 1000)
            }
            try? await Task.sleep(for: self.interval)
        }
    }

    /// Listens for pushed changes, reconnecting with back-off after a lost connection and reading
    /// the version again each time; returns at once when the store has no push.
    func listen() async {
        var delay = Duration.milliseconds(200)
        while !Task.isCancelled {
            let began = ContinuousClock.now
            do {
                guard try await self.engine.store.listen({ await self.refresh() }) else { return }
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("policy change listener lost, reconnecting", metadata: ["error": "\(error)", "retry_ms": "\(Self.milliseconds(delay))"])
            }
            // A listener that lived a while was healthy: start the back-off over.
            if ContinuousClock.now - began > .seconds(30) { delay = .milliseconds(200) }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
            // Changes announced while no one listened are picked up here, not only by the poll.
            await self.refresh()
        }
    }

    /// Reads the store's version (and the policy when it moved). - Returns: whether it worked.
    @discardableResult
    func refresh() async -> Bool {
        do {
            if try await self.engine.refresh() {
                self.logger.info("policy reloaded", metadata: ["version": "\(self.engine.currentVersion)"])
            }
            self.confirmation.confirm()
            return true
        } catch {
            self.logger.debug("policy refresh failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
