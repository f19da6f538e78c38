import Foundation
import Logging
import ServiceKit
import ServiceLifecycle
import Shared
import Synchronization

/// Authz's allowed decisions, kept by the gateway for (subject, tenant, resource, action).
///
/// An entry is valid only for the (policy version, mode) authz reported when it was stored, and
/// for at most `lifetime` (1 s): a watcher polls authz's `/internal/v1/policy/version` every
/// 200 ms and a change empties the cache, so a policy change is in force at once on one replica
/// and within 1 s across replicas (one may decide from a version up to a poll behind). Only
/// allowed answers are kept: a denial goes to authz every time, so authz logs and counts each
/// one. Errors are never kept. At most `capacity` entries (full: expired ones go, then all).
public final class DecisionCache: Sendable {
    public struct Key: Hashable, Sendable {
        var subject: String
        var tenant: String
        var resource: String
        var action: String

        public init(subject: String, tenant: String, resource: String, action: String) {
            self.subject = subject
            self.tenant = tenant
            self.resource = resource
            self.action = action
        }
    }

    struct State {
        var policy: PolicyVersion?
        var entries: [Key: ContinuousClock.Instant] = [:]
    }

    let capacity: Int
    let lifetime: Duration
    let state = Mutex(State())

    public init(capacity: Int = 10_000, lifetime: Duration = .seconds(1)) {
        self.capacity = capacity
        self.lifetime = lifetime
    }

    public var isEnabled: Bool { self.capacity > 0 }

    public func allowed(_ key: Key, now: ContinuousClock.Instant = .now) -> Bool {
        self.state.withLock { state in
            guard let until = state.entries[key] else { return false }
            if until > now { return true }
            state.entries[key] = nil
            return false
        }
    }

    /// Keeps an allowed decision made under `policy` (the version known when the call started):
    /// not kept when the version moved on meanwhile or is unknown.
    public func store(_ key: Key, under policy: PolicyVersion?, now: ContinuousClock.Instant = .now) {
        guard self.isEnabled, let policy else { return }
        self.state.withLock { state in
            guard state.policy == policy else { return }
            if state.entries.count >= self.capacity {
                state.entries = state.entries.filter { $0.value > now }
                if state.entries.count >= self.capacity { state.entries.removeAll(keepingCapacity: true) }
            }
            state.entries[key] = now + self.lifetime
        }
    }

    public var policy: PolicyVersion? { self.state.withLock { $0.policy } }

    /// What authz says now; a different version or mode empties the cache. nil: authz did not answer.
    public func observe(_ policy: PolicyVersion?) {
        self.state.withLock { state in
            if state.policy != policy {
                state.policy = policy
                state.entries.removeAll(keepingCapacity: true)
            }
        }
    }

    public var count: Int { self.state.withLock { $0.entries.count } }
}

/// Polls authz's policy version for the decision cache.
public struct PolicyVersionWatcher: Service {
    let cache: DecisionCache
    let client: InternalClient
    let authzURL: String
    let interval: Duration
    let logger: Logger

    public init(cache: DecisionCache, client: InternalClient, authzURL: String, interval: Duration = .milliseconds(200), logger: Logger) {
        self.cache = cache
        self.client = client
        self.authzURL = authzURL
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let policy: PolicyVersion? = try? await self.client.call(
                    .get, service: "authz", baseURL: self.authzURL, path: "/internal/v1/policy/version", body: String?.none,
                    requestID: "policy-version-watch")
                self.cache.observe(policy)
                try? await Task.sleep(for: self.interval)
            }
        }
    }
}
