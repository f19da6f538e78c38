import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceKit
import Shared

/// Asks the authz service whether a principal may use a route's permission, and applies
/// `STREAMHUB_AUTHZ_ENFORCE`: `off` asks nothing; `log` lets the request on and logs a would-be
/// denial (or an unreachable authz); `on` answers 403 on denial and 503 when authz cannot answer.
public struct AuthorizationClient: Sendable {
    let upstream: any UpstreamClient
    let authzURL: String
    let internalToken: String
    let mode: EnforcementMode
    let timeout: Duration
    let metrics: ServiceMetrics

    public init(
        upstream: any UpstreamClient, authzURL: String, internalToken: String, mode: EnforcementMode, timeout: Duration, metrics: ServiceMetrics
    ) {
        self.upstream = upstream
        self.authzURL = authzURL
        self.internalToken = internalToken
        self.mode = mode
        self.timeout = timeout
        self.metrics = metrics
    }

    public func authorize(_ principal: Principal, permission: Permission, requestID: String, logger: Logger) async throws {
        guard self.mode != .off, !principal.bypassesAuthorization else { return }
        let tenant = principal.tenantId ?? ""
        let request = EnforceRequest(subject: principal.subject, tenant: tenant, resource: permission.resource, action: permission.action)
        let decision: EnforceDecision
        do {
            decision = try await self.ask(request, requestID: requestID)
        } catch {
            self.metrics.counter("streamhub_authz_unavailable_total").increment()
            logger.warning("authz unavailable", metadata: ["error": "\(error)", "mode": "\(self.mode.rawValue)"])
            if self.mode == .on {
                throw ServiceError(.serviceUnavailable, message: "Authorization service is unavailable")
            }
            return
        }
        guard !decision.allowed else { return }
        self.metrics.counter("streamhub_authz_denials_total", labels: [("mode", self.mode.rawValue)]).increment()
        logger.notice(
            "authz denial",
            metadata: [
                "subject": "\(principal.subject)", "tenant": "\(tenant)", "permission": "\(permission)", "mode": "\(self.mode.rawValue)",
            ]
        )
        if self.mode == .on {
            throw ServiceError(.forbidden, message: "Forbidden resource")
        }
    }

    func ask(_ request: EnforceRequest, requestID: String) async throws -> EnforceDecision {
        var headers = HTTPFields()
        headers[.streamHubInternalToken] = self.internalToken
        headers[.requestID] = requestID
        headers[.contentType] = "application/json"
        let response = try await self.upstream.send(
            UpstreamRequest(
                method: .post, baseURL: self.authzURL, pathAndQuery: "/internal/v1/enforce", headers: headers,
                body: ByteBuffer(bytes: try JSONEncoder().encode(request))
            ),
            timeout: self.timeout
        )
        let body = try await response.collect(64 * 1024)
        guard response.status == .ok else { throw UpstreamFailure.unavailable("authz answered \(response.status.code)") }
        return try JSONDecoder().decode(EnforceDecision.self, from: Data(buffer: body))
    }
}
