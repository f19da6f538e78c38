import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceKit
import Shared
import Synchronization

/// Turns `Authorization: Bearer …` into a ``Principal``, in the overview's order: `sk_` API token
/// (looked up by hash through identity, cached briefly), then dashboard JWT (verified locally),
/// else anonymous.
public struct CredentialResolver: Sendable {
    let client: InternalClient
    let identityURL: String
    let sessions: SessionTokens
    let cache: ApiTokenCache
    /// Identity's answers on users' sessions (logout, disable), cached like `sk_` answers.
    let sessionStates: TTLCache<SessionState>
    let timeSource: any TimeSource
    let counters: Counters
    let verified = VerifiedSessions()

    /// `streamhub_gateway_credentials_total` by kind, made once.
    struct Counters: Sendable {
        let apiToken, jwt, anonymous, invalid: MetricCounter

        init(_ metrics: ServiceMetrics) {
            func kind(_ name: String) -> MetricCounter { metrics.counter(.credentials, labels: [("kind", name)]) }
            (self.apiToken, self.jwt, self.anonymous, self.invalid) = (kind("api_token"), kind("jwt"), kind("anonymous"), kind("invalid"))
        }
    }

    public init(
        client: InternalClient, identityURL: String, sessions: SessionTokens, cache: ApiTokenCache, sessionStates: TTLCache<SessionState>,
        timeSource: any TimeSource = SystemTimeSource(), metrics: ServiceMetrics = ServiceMetrics(service: "gateway")
    ) {
        self.counters = Counters(metrics)
        self.client = client
        self.identityURL = identityURL
        self.sessions = sessions
        self.cache = cache
        self.sessionStates = sessionStates
        self.timeSource = timeSource
    }

    /// - Throws: ``ServiceError`` 401 for a malformed header or an invalid credential; identity's
    ///   failures (503, 504, its own error) as ``InternalClient`` maps them.
    /// Resolves the credential and counts its kind (`api_token`, `jwt`, `anonymous`, `invalid`);
    /// an answer that could not be had (identity away) is not a kind and is not counted.
    public func resolve(authorization: String?, requestID: String, logger: Logger) async throws -> Principal {
        do {
            let principal = try await self.resolveUncounted(authorization: authorization, requestID: requestID, logger: logger)
            self.count(principal)
            return principal
        } catch let error as ServiceError where error.status == .unauthorized {
            self.counters.invalid.increment()
            throw error
        }
    }

    func resolveUncounted(authorization: String?, requestID: String, logger: Logger) async throws -> Principal {
        guard let authorization else { return .anonymous }
        let credential = try Self.bearerCredential(authorization)
        if credential.hasPrefix("sk_") {
            return try await self.resolveApiToken(credential, requestID: requestID, logger: logger)
        }
        let now = self.timeSource.now()
        guard let claims = self.verified.claims(credential, now: now) ?? self.sessions.verify(credential, now: now) else {
            throw ServiceError(.unauthorized, message: "Invalid or expired session token")
        }
        self.verified.keep(credential, claims)
        try await self.checkNotRevoked(claims, requestID: requestID)
        return Self.principal(claims)
    }

    static func principal(_ claims: SessionClaims) -> Principal {
        let superadmin = claims.superadmin ?? false
        return Principal(
            kind: .user, scope: superadmin ? .global : .tenant, subject: "user:\(claims.sub)", tenantId: claims.tenantId, superadmin: superadmin
        )
    }

    /// The principal for an `Authorization` value when it can be had without calling identity and
    /// is valid — a cached `sk_` answer, or an already verified session whose cached state allows
    /// it. nil for anything else (a call needed, or a refusal):
    /// ``resolve(authorization:requestID:logger:)`` answers those. Not counted: the caller counts
    /// it (``count(_:)``) once it uses it.
    func cachedPrincipal(authorization: String) -> Principal? {
        guard let credential = try? Self.bearerCredential(authorization) else { return nil }
        let now = self.timeSource.now()
        if credential.hasPrefix("sk_") {
            guard let cached = self.cache.lookup(ApiTokenCache.key(for: credential), now: now), let principal = cached else { return nil }
            return principal
        }
        guard let claims = self.verified.claims(credential, now: now), let state = self.sessionStates.lookup(Self.stateKey(claims), now: now),
            Self.revocation(claims, state) == nil
        else { return nil }
        return Self.principal(claims)
    }

    /// Counts a resolved principal's kind, as ``resolve(authorization:requestID:logger:)`` does.
    func count(_ principal: Principal) {
        switch principal.kind {
        case .apiToken: self.counters.apiToken.increment()
        case .user: self.counters.jwt.increment()
        default: self.counters.anonymous.increment()
        }
    }

    /// A session ended by logout, a password change or disabling its user is a 401. Identity's
    /// answer per user is trusted for the cache's lifetime (3 s), so revocation takes at most that
    /// long plus a request.
    func checkNotRevoked(_ claims: SessionClaims, requestID: String) async throws {
        let now = self.timeSource.now()
        let state: SessionState
        let key = Self.stateKey(claims)
        if let cached = self.sessionStates.lookup(key, now: now) {
            state = cached
        } else {
            state = try await self.client.call(
                service: "identity", baseURL: self.identityURL, path: "/internal/v1/sessions/state",
                body: SessionStateRequest(userId: claims.sub, breakGlassVersion: claims.bgv), requestID: requestID, idempotent: true,
                as: SessionState.self)
            self.sessionStates.store(key, value: state, now: now)
        }
        if let refusal = Self.revocation(claims, state) { throw refusal }
    }

    /// Whose state a session is checked against: its user, and for break-glass sessions also the
    /// password version that minted them (sessions of an earlier `ADMIN_PASS` have ended).
    static func stateKey(_ claims: SessionClaims) -> String {
        guard let version = claims.bgv else { return claims.sub }
        return "\(claims.sub)\u{0}\(version)"
    }

    /// Why identity's `state` ends the session of `claims`, or nil when it stands.
    static func revocation(_ claims: SessionClaims, _ state: SessionState) -> ServiceError? {
        // A session for a user identity does not know (tests' hand-made tokens, a store reset) is
        // judged by its signature alone; known users' logouts and disabling are enforced.
        guard state.exists else { return nil }
        if state.disabled { return ServiceError(.unauthorized, message: "This account is disabled") }
        if (claims.iat ?? 0) < state.notBefore { return ServiceError(.unauthorized, message: "Session has ended; sign in again") }
        return nil
    }

    /// The credential of `Bearer <credential>` (``BearerCredential``); anything else is a 401.
    static func bearerCredential(_ header: String) throws -> String {
        guard let credential = BearerCredential.parse(header) else {
            throw ServiceError(.unauthorized, message: "Malformed Authorization header: expected \"Bearer <credential>\"")
        }
        return credential
    }

    func resolveApiToken(_ token: String, requestID: String, logger: Logger) async throws -> Principal {
        let key = ApiTokenCache.key(for: token)
        let now = self.timeSource.now()
        if let cached = self.cache.lookup(key, now: now) {
            guard let principal = cached else { throw ServiceError.invalidApiToken }
            return principal
        }
        do {
            let resolved = try await self.client.call(
                service: "identity", baseURL: self.identityURL, path: "/internal/v1/tokens/resolve", body: TokenResolveRequest(token: token),
                requestID: requestID, idempotent: true, as: TokenResolveResponse.self
            )
            self.cache.store(key, value: resolved.principal, now: now)
            return resolved.principal
        } catch let error as ServiceError where error.status == .unauthorized || error.status == .notFound {
            self.cache.store(key, value: nil, now: now)
            throw ServiceError.invalidApiToken
        } catch let error as ServiceError {
            logger.warning("identity could not resolve an API token", metadata: ["status": "\(error.status.code)", "error": "\(error.body.message)"])
            throw error
        }
    }
}

/// A short-lived cache of `sk_` lookups keyed by the token's SHA-256 (never the token itself).
/// Negative answers are cached too, so a flood of bad tokens does not reach identity every time.
/// Dashboard sessions whose signature and claims were verified, by token, until they expire: the
/// HMAC and JSON work runs once per session, not per request. Only verified tokens enter; a
/// lookup still checks the expiry; revocation is checked per request apart from this
/// (``CredentialResolver/checkNotRevoked(_:requestID:)``).
public final class VerifiedSessions: Sendable {
    let entries = Mutex<[String: SessionClaims]>([:])
    let capacity: Int

    public init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    func claims(_ token: String, now: Date) -> SessionClaims? {
        guard let claims = self.entries.withLock({ $0[token] }) else { return nil }
        guard claims.exp > Int64(now.timeIntervalSince1970) else {
            self.entries.withLock { _ = $0.removeValue(forKey: token) }
            return nil
        }
        return claims
    }

    func keep(_ token: String, _ claims: SessionClaims) {
        self.entries.withLock { entries in
            guard entries[token] == nil else { return }
            if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = claims
        }
    }
}

public typealias ApiTokenCache = TTLCache<Principal?>

extension TTLCache where Value == Principal? {
    static func key(for token: String) -> String {
        SecretDigest.sha256Hex(token)
    }
}

/// Answers trusted for `ttl`, bounded in size (a full cache drops its expired entries, then all).
public final class TTLCache<Value: Sendable>: Sendable {
    struct Entry {
        var value: Value
        var expires: Date
    }

    let ttl: Double
    let capacity: Int
    let entries = Mutex<[String: Entry]>([:])

    public init(ttl: Duration, capacity: Int = 10_000) {
        self.ttl = Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18
        self.capacity = capacity
    }

    func lookup(_ key: String, now: Date) -> Value? {
        self.entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard entry.expires > now else {
                entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    func store(_ key: String, value: Value, now: Date) {
        self.entries.withLock { entries in
            if entries.count >= self.capacity {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = Entry(value: value, expires: now.addingTimeInterval(self.ttl))
        }
    }
}
