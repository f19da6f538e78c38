import Foundation
import Logging
import ServiceKit
import Shared

/// Asks the authz service whether a principal may use a route's permission and acts on its answer.
///
/// Authz owns the enforcement mode: its answer says whether the request is allowed and whether a
/// denial is enforced (`on`), and authz alone logs and counts a would-be denial (with this request's
/// id). The gateway's own `STREAMHUB_AUTHZ_ENFORCE` decides only what happens when authz cannot
/// answer: `on` → 503, `log` / `off` → the request goes on, logged and counted as an outage.
public struct AuthorizationClient: Sendable {
    let client: InternalClient
    let authzURL: String
    let whenUnavailable: EnforcementMode
    let unavailableCounter: MetricCounter
    /// Allowed decisions for the current policy version (``DecisionCache``); disabled with capacity 0.
    let cache: DecisionCache
    let cacheHits: MetricCounter
    /// `streamhub_gateway_authz_outcomes_total` by outcome and mode, all made at start (so every
    /// series exists from the first scrape).
    let outcomes: [String: MetricCounter]
    static let outcomeNames = ["allowed", "cached", "denied", "would_deny", "unavailable_refused", "unavailable_allowed"]

    public init(
        client: InternalClient, authzURL: String, whenUnavailable: EnforcementMode, metrics: ServiceMetrics, cache: DecisionCache = DecisionCache(capacity: 0)
    ) {
        self.client = client
        self.authzURL = authzURL
        self.whenUnavailable = whenUnavailable
        self.unavailableCounter = metrics.counter(.authzUnavailable)
        self.cache = cache
        self.cacheHits = metrics.counter(.decisionCacheHits)
        var outcomes: [String: MetricCounter] = [:]
        for outcome in Self.outcomeNames {
            for mode in EnforcementMode.allCases.map(\.rawValue) + ["unknown"] {
                outcomes[outcome + " " + mode] = metrics.counter(.authzOutcomes, labels: [("outcome", outcome), ("mode", mode)])
            }
        }
        self.outcomes = outcomes
    }

    func count(_ outcome: String, mode: String) {
        (self.outcomes[outcome + " " + mode] ?? self.outcomes[outcome + " unknown"])?.increment()
    }

    /// Whether `principal` may use `permission` without asking authz: it bypasses authorization
    /// (global tokens, superadmins), or an allowed decision is cached. false means authz must be
    /// asked (``authorize(_:permission:requestID:logger:)``). Not counted: the caller counts it
    /// (``countAllowedWithoutCall(_:)``) once it acts on it.
    func allowedWithoutCall(_ principal: Principal, permission: Permission) -> Bool {
        if principal.bypassesAuthorization { return true }
        guard self.cache.isEnabled else { return false }
        return self.cache.allowed(
            DecisionCache.Key(subject: principal.subject, tenant: principal.tenantId ?? "", resource: permission.resource, action: permission.action))
    }

    /// Counts a permission check answered by ``allowedWithoutCall(_:permission:)``: a cache hit,
    /// unless the principal bypasses authorization.
    func countAllowedWithoutCall(_ principal: Principal) {
        guard !principal.bypassesAuthorization else { return }
        self.cacheHits.increment()
        self.count("cached", mode: self.cache.policy?.mode ?? "unknown")
    }

    /// - Throws: ``ServiceError`` 403 when authz denies and enforces; 503 when authz cannot answer
    ///   and the gateway's mode is `on`.
    public func authorize(_ principal: Principal, permission: Permission, requestID: String, logger: Logger) async throws {
        if self.allowedWithoutCall(principal, permission: permission) {
            self.countAllowedWithoutCall(principal)
            return
        }
        let (key, policy) = self.pending(principal, permission: permission)
        let request = EnforceRequest(subject: key.subject, tenant: key.tenant, resource: key.resource, action: key.action)
        let decision: EnforceDecision
        do {
            decision = try await self.client.call(
                service: "authz", baseURL: self.authzURL, path: "/internal/v1/enforce", body: request, requestID: requestID, idempotent: true,
                as: EnforceDecision.self)
        } catch {
            self.unavailableCounter.increment()
            logger.warning(
                "authz cannot answer", metadata: ["error": "\(error)", "enforce": "\(self.whenUnavailable.rawValue)", "permission": "\(permission)"])
            if self.whenUnavailable == .on {
                self.count("unavailable_refused", mode: self.whenUnavailable.rawValue)
                throw ServiceError(.serviceUnavailable, message: "Authorization service is unavailable")
            }
            self.count("unavailable_allowed", mode: self.whenUnavailable.rawValue)
            return
        }
        if let refusal = self.act(on: decision, key: key, policy: policy) { throw refusal }
    }

    /// NestJS's 403 message, with the permission the caller lacks beside it.
    static func forbidden(_ key: DecisionCache.Key) -> ServiceError {
        ServiceError(
            status: .forbidden, body: ErrorBody(statusCode: 403, message: "Forbidden resource", permission: "\(key.resource):\(key.action)"))
    }

    /// What a decision from authz means here: counted by outcome and mode; an allow is kept
    /// (``DecisionCache``, under the policy version known when the call started); an enforced
    /// denial is the 403 returned.
    func act(on decision: EnforceDecision, key: DecisionCache.Key, policy: PolicyVersion?) -> ServiceError? {
        self.count(decision.allowed ? "allowed" : decision.enforced ? "denied" : "would_deny", mode: decision.mode)
        if !decision.allowed && decision.enforced { return Self.forbidden(key) }
        if decision.allowed { self.cache.store(key, under: policy) }
        return nil
    }

    /// The key and policy version of a check about to be asked of authz.
    func pending(_ principal: Principal, permission: Permission) -> (key: DecisionCache.Key, policy: PolicyVersion?) {
        (
            DecisionCache.Key(subject: principal.subject, tenant: principal.tenantId ?? "", resource: permission.resource, action: permission.action),
            self.cache.isEnabled ? self.cache.policy : nil
        )
    }
}
