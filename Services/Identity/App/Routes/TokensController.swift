import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import ServiceStorage
import Shared

/// `/api/v1/tokens`: list, mint and revoke `sk_` tokens (`token:read` / `token:write`).
///
/// A tenant's callers see and revoke their tenant's tokens only (another tenant's is a 404);
/// global tokens and superadmins see all and alone mint global tokens. An app token inherits its
/// app's tenant, which media is asked for. The token is in the answer of its creation only.
public struct TokensController<Context: ServiceRequestContextProtocol>: Sendable {
    let tokens: any ApiTokenRepository
    let accounts: any AccountRepository
    let media: InternalClient
    let mediaURL: String
    /// App tokens get ``appTokenRole`` in their tenant when minted and lose it when revoked.
    let intents: RoleIntents?
    let defaultQuotas: TenantQuotas
    let timeSource: any TimeSource

    public init(
        tokens: any ApiTokenRepository, accounts: any AccountRepository, media: InternalClient, mediaURL: String, defaultQuotas: TenantQuotas,
        intents: RoleIntents? = nil,
        timeSource: any TimeSource
    ) {
        self.tokens = tokens
        self.accounts = accounts
        self.media = media
        self.mediaURL = mediaURL
        self.intents = intents
        self.defaultQuotas = defaultQuotas
        self.timeSource = timeSource
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("tokens", use: self.list)
        group.post("tokens", use: self.create)
        group.delete("tokens/:id", use: self.revoke)
    }

    /// The tenant whose tokens the caller manages; nil for global callers (every tenant).
    static func scope(of caller: Principal) throws -> String?? {
        if caller.bypassesAuthorization { return .some(nil) }
        guard let tenant = caller.tenantId else { throw ServiceError(.forbidden, message: "The credential has no tenant") }
        return .some(tenant)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let caller = try context.caller()
        let page = try ListPage(request: request)
        let tenant = try Self.scope(of: caller) ?? nil
        let records = try await self.tokens.list(tenant: tenant, after: page.after, limit: page.limit)
        return try JSONResponse.make(records.map(\.summary))
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let caller = try context.caller()
        let body = try await request.decodeJSON(CreateApiTokenRequest.self, limit: 16 * 1024)
        let now = self.timeSource.now()
        var expiresAt: Int64?
        if let text = body.expiresAt {
            guard let date = Self.parseTime(text) else { throw ServiceError.badRequest("expiresAt must be an RFC 3339 time") }
            guard date > now else { throw ServiceError.badRequest("expiresAt must be in the future") }
            // A bound keeps the stored time (and every answer naming it) sane: year 275760 was taken.
            guard date <= now.addingTimeInterval(Self.longestLifetime) else {
                throw ServiceError.badRequest("expiresAt must be at most 10 years ahead")
            }
            expiresAt = Timestamp.millis(date)
        }
        var tenantId: String?
        var appId: String?
        var quota: Int?
        switch body.scope {
        case .global:
            guard caller.bypassesAuthorization else {
                throw ServiceError(.forbidden, message: "Only a global token or a superadmin may mint a global token")
            }
            guard body.appId == nil else { throw ServiceError.badRequest("appId is only for app-scoped tokens") }
        case .app:
            guard let wanted = body.appId else { throw ServiceError.badRequest("appId is required for an app-scoped token") }
            let id = try Identifier.validate(wanted, field: "appId")
            let app = try await self.app(id, requestID: context.requestID)
            if !caller.bypassesAuthorization && app.tenantId != caller.tenantId { throw ServiceError.notFound("No such app") }
            appId = app.id
            tenantId = app.tenantId
            quota = try await self.accounts.tenant(id: app.tenantId)?.quotas.maxTokens ?? self.defaultQuotas.maxTokens
        }
        let new = NewApiToken(name: body.name, scope: body.scope, appId: appId, tenantId: tenantId, expiresAt: expiresAt)
        let minted: MintedApiToken
        if let tenantId, body.scope == .app, let intents {
            // An app token can act at once under `on`: it holds `member` in its tenant (the gateway
            // keeps it to its app's routes). The grant and the token are one outcome: the grant is
            // made inside the transaction that stores the token and takes back the intent recorded
            // first, so if anything fails — authz, the commit, the process, the database — the
            // intent is left and undoes the grant (at once, or later), and no token exists.
            let tokenId = UUID().uuidString.lowercased()
            let subject = "token:\(tokenId)"
            let role = Self.appTokenRole
            let requestID = context.requestID
            let intent = try await intents.record(subject: subject, role: role, tenantId: tenantId)
            do {
                minted = try await ApiTokenMinter.mint(
                    new, into: self.tokens, now: now, quota: quota,
                    grant: (
                        id: tokenId, intent: intent,
                        run: { try await intents.grant(subject: subject, role: role, tenantId: tenantId, requestID: requestID) }
                    ))
            } catch {
                let refused = (error as? StorageError)?.serviceError ?? error
                if let refused = refused as? ServiceError, refused.status.code < 500 {
                    // Refused before the grant (a bad name, the quota, authz said no): nothing to undo.
                    try? await intents.store.clear(id: intent)
                } else {
                    await intents.settleAfterFailure(id: intent, subject: subject, role: role, tenantId: tenantId, requestID: requestID, logger: context.logger)
                }
                throw refused
            }
        } else {
            do {
                minted = try await ApiTokenMinter.mint(new, into: self.tokens, now: now, quota: quota)
            } catch let error as StorageError {
                throw error.serviceError
            }
        }
        context.logger.info("api token minted", metadata: ["token": "\(minted.record.id)", "scope": "\(body.scope.rawValue)"])
        var response = try JSONResponse.make(CreatedApiToken(token: minted.token, summary: minted.record.summary), status: .created)
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// Media's app, or 404.
    func app(_ id: String, requestID: String) async throws -> AppSummary {
        do {
            return try await self.media.call(
                .get, service: "media", baseURL: self.mediaURL, path: "/internal/v1/apps/\(id)", body: String?.none, requestID: requestID)
        } catch let error as ServiceError where error.status == .notFound {
            throw ServiceError.notFound("No such app")
        }
    }

    /// Revokes a token; revoking a revoked one succeeds again. The gateway stops accepting it within 5 s.
    @Sendable func revoke(_ request: Request, context: Context) async throws -> Response {
        let caller = try context.caller()
        let id = try Identifier.validate(context.parameters.get("id") ?? "", field: "id")
        guard var record = try await self.tokens.find(id: id) else { throw ServiceError.notFound("No such token") }
        if let tenant = try Self.scope(of: caller) ?? nil, record.tenantId != tenant { throw ServiceError.notFound("No such token") }
        let now = Timestamp.millis(self.timeSource.now())
        if try await self.tokens.revoke(id: id, at: now) {
            record.revokedAt = now
            context.logger.info("api token revoked", metadata: ["token": "\(id)"])
        } else if record.revokedAt == nil {
            record.revokedAt = now
        }
        if record.scope == .app, let tenant = record.tenantId, let intents {
            // Its roles go too (now, or by the settler when authz is away): a revoked token holds nothing.
            let intent = try await intents.record(subject: "token:\(id)", role: Self.appTokenRole, tenantId: tenant)
            await intents.settleAfterFailure(
                id: intent, subject: "token:\(id)", role: Self.appTokenRole, tenantId: tenant, requestID: context.requestID, logger: context.logger)
        }
        return try JSONResponse.make(record.summary)
    }

    /// The role an app token holds in its tenant.
    public static var appTokenRole: String { "member" }

    /// The longest lifetime a token may be given (`expiresAt` at most this far ahead).
    static var longestLifetime: TimeInterval { 10 * 366 * 24 * 3600 }

    static func parseTime(_ text: String) -> Date? {
        (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
            ?? (try? Date(text, strategy: Date.ISO8601FormatStyle()))
    }
}
