import Foundation
import Hummingbird
import Logging
import ServiceKit
import Shared

/// `POST /internal/v1/tokens/resolve`: the gateway's lookup of an `sk_` token by its hash.
///
/// Answers the token's principal, or 401 with the overview's body for an unknown, revoked or
/// expired token. Records when the token was last used.
public struct TokenResolveController<Context: ServiceRequestContextProtocol>: Sendable {
    let tokens: any ApiTokenRepository
    let timeSource: any TimeSource

    public init(tokens: any ApiTokenRepository, timeSource: any TimeSource) {
        self.tokens = tokens
        self.timeSource = timeSource
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("tokens/resolve", use: self.resolve)
    }

    @Sendable func resolve(_ request: Request, context: Context) async throws -> Response {
        let body = try await request.decodeJSON(TokenResolveRequest.self, limit: 16 * 1024)
        guard body.token.hasPrefix("sk_"), body.token.utf8.count <= 512 else { throw ServiceError.invalidApiToken }
        let now = Timestamp.millis(self.timeSource.now())
        guard let record = try await self.tokens.find(hash: ApiTokenMinter.hash(body.token)), record.isActive(at: now) else {
            throw ServiceError.invalidApiToken
        }
        try await self.tokens.markUsed(id: record.id, at: now)
        return try JSONResponse.make(TokenResolveResponse(principal: record.principal, tokenId: record.id))
    }
}
