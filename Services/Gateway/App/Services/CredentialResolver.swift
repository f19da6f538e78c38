import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceKit
import Shared

/// Turns `Authorization: Bearer …` into a ``Principal``, in the overview's order: `sk_` API token
/// (looked up by hash through identity, cached briefly), then dashboard JWT (verified locally),
/// else anonymous.
public struct CredentialResolver: Sendable {
    let upstream: any UpstreamClient
    let identityURL: String
    let internalToken: String
    let sessions: SessionTokenVerifier
    let cache: ApiTokenCache
    let timeout: Duration
    let timeSource: any TimeSource

    public init(
        upstream: any UpstreamClient, identityURL: String, internalToken: String, sessions: SessionTokenVerifier,
        cache: ApiTokenCache, timeout: Duration, timeSource: any TimeSource = SystemTimeSource()
    ) {
        self.upstream = upstream
        self.identityURL = identityURL
        self.internalToken = internalToken
        self.sessions = sessions
        self.cache = cache
        self.timeout = timeout
        self.timeSource = timeSource
    }

    /// - Throws: ``ServiceError`` 401 for a malformed header or an invalid credential; 503/504 when
    ///   identity cannot answer for an `sk_` token.
    public func resolve(authorization: String?, requestID: String, logger: Logger) async throws -> Principal {
        guard let authorization else { return .anonymous }
        let credential = try Self.bearerCredential(authorization)
        if credential.hasPrefix("sk_") {
            return try await self.resolveApiToken(credential, requestID: requestID, logger: logger)
        }
        guard let claims = self.sessions.verify(credential, now: self.timeSource.now()) else {
            throw ServiceError(.unauthorized, message: "Invalid or expired session token")
        }
        let superadmin = claims.superadmin ?? false
        return Principal(
            kind: .user, scope: superadmin ? .global : .tenant, subject: "user:\(claims.sub)", tenantId: claims.tenantId, superadmin: superadmin
        )
    }

    /// Extracts the credential from `Bearer <credential>`; anything else is a 401.
    static func bearerCredential(_ header: String) throws -> String {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " else {
            throw ServiceError(.unauthorized, message: "Malformed Authorization header: expected \"Bearer <credential>\"")
        }
        let credential = trimmed.dropFirst(7).trimmingCharacters(in: .whitespaces)
        guard !credential.isEmpty, credential.utf8.count <= 8192, !credential.contains(" ") else {
            throw ServiceError(.unauthorized, message: "Malformed Authorization header: expected \"Bearer <credential>\"")
        }
        return credential
    }

    func resolveApiToken(_ token: String, requestID: String, logger: Logger) async throws -> Principal {
        let key = ApiTokenCache.key(for: token)
        let now = ContinuousClock.now
        if let cached = await self.cache.lookup(key, now: now) {
            guard let principal = cached else { throw ServiceError.invalidApiToken }
            return principal
        }
        var headers = HTTPFields()
        headers[.streamHubInternalToken] = self.internalToken
        headers[.requestID] = requestID
        headers[.contentType] = "application/json"
        let body = try JSONEncoder().encode(TokenResolveRequest(token: token))
        let response: UpstreamResponse
        do {
            response = try await self.upstream.send(
                UpstreamRequest(
                    method: .post, baseURL: self.identityURL, pathAndQuery: "/internal/v1/tokens/resolve", headers: headers,
                    body: ByteBuffer(bytes: body)
                ),
                timeout: self.timeout
            )
        } catch UpstreamFailure.timeout {
            throw ServiceError(.gatewayTimeout, message: "Identity service did not answer in time")
        } catch {
            logger.warning("identity unreachable while resolving an API token", metadata: ["error": "\(error)"])
            throw ServiceError(.serviceUnavailable, message: "Identity service is unavailable")
        }
        let payload = try await response.collect(64 * 1024)
        switch response.status.code {
        case 200:
            guard let resolved = try? JSONDecoder().decode(TokenResolveResponse.self, from: Data(buffer: payload)) else {
                throw ServiceError(.badGateway, message: "Identity service sent an unreadable answer")
            }
            await self.cache.store(key, principal: resolved.principal, now: now)
            return resolved.principal
        case 401, 404:
            await self.cache.store(key, principal: nil, now: now)
            throw ServiceError.invalidApiToken
        default:
            logger.warning("identity failed to resolve an API token", metadata: ["status": "\(response.status.code)"])
            throw ServiceError(.serviceUnavailable, message: "Identity service is unavailable")
        }
    }
}

/// A short-lived cache of `sk_` lookups keyed by the token's SHA-256 (never the token itself).
/// Negative answers are cached too, so a flood of bad tokens does not reach identity every time.
public actor ApiTokenCache {
    struct Entry {
        var principal: Principal?
        var expires: ContinuousClock.Instant
    }

    let ttl: Duration
    let capacity: Int
    var entries: [String: Entry] = [:]

    public init(ttl: Duration, capacity: Int = 10_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    static func key(for token: String) -> String {
        SecretDigest.sha256Hex(token)
    }

    /// - Returns: nil on a miss; `.some(nil)` for a cached rejection.
    func lookup(_ key: String, now: ContinuousClock.Instant) -> Principal?? {
        guard let entry = self.entries[key] else { return nil }
        guard entry.expires > now else {
            self.entries[key] = nil
            return nil
        }
        return .some(entry.principal)
    }

    func store(_ key: String, principal: Principal?, now: ContinuousClock.Instant) {
        if self.entries.count >= self.capacity {
            self.entries = self.entries.filter { $0.value.expires > now }
            if self.entries.count >= self.capacity { self.entries.removeAll(keepingCapacity: true) }
        }
        self.entries[key] = Entry(principal: principal, expires: now + self.ttl)
    }
}
