import Crypto
import Foundation
import Shared

/// Dashboard session JWTs, minted by identity and verified by the gateway with the same code: HS256
/// with `STREAMHUB_JWT_SECRET`, the algorithm pinned (any other `alg`, `none` included, is
/// rejected), the signature checked in constant time, `exp` required and in the future, `nbf`
/// honoured, `iss` and `aud` required to be ours.
public struct SessionTokens: Sendable {
    let key: SymmetricKey
    /// The `iss` every session carries and must carry: `STREAMHUB_PUBLIC_URL`.
    public let issuer: String
    /// The `aud` every session carries and must carry.
    public let audience: String
    /// Clock skew tolerated on `exp` and `nbf`.
    let leeway: Int64 = 5
    /// How long a session lasts.
    public static let lifetime: Int64 = 12 * 3600

    public init(secret: String, issuer: String, audience: String = SessionClaims.audience) {
        self.key = SymmetricKey(data: Array(secret.utf8))
        self.issuer = issuer
        self.audience = audience
    }

    /// Fresh claims for a session of `userId` acting in `tenantId`, issued at `now` (never before
    /// `notBefore`, so a sign-in right after a logout is not caught by it) and valid 12 h.
    public func claims(
        userId: String, tenantId: String?, superadmin: Bool, now: Date, notBefore: Int64 = 0, lifetime: Int64 = Self.lifetime,
        breakGlassVersion: String? = nil
    ) -> SessionClaims {
        let issuedAt = max(Int64(now.timeIntervalSince1970), notBefore)
        return SessionClaims(
            sub: userId, tenantId: tenantId, superadmin: superadmin, iss: self.issuer, aud: self.audience, jti: UUID().uuidString.lowercased(),
            iat: issuedAt, exp: issuedAt + lifetime, bgv: breakGlassVersion)
    }

    struct Header: Decodable {
        var alg: String
        var typ: String?
    }

    /// - Returns: the claims, or nil when the token is not a valid, current HS256 session token.
    public func verify(_ token: String, now: Date) -> SessionClaims? {
        guard token.utf8.count <= 8192 else { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
            let headerData = Base64URL.decode(parts[0]),
            let header = try? JSONDecoder().decode(Header.self, from: headerData),
            header.alg == "HS256",
            let signature = Base64URL.decode(parts[2]),
            let payloadData = Base64URL.decode(parts[1])
        else { return nil }
        let signingInput = Data("\(parts[0]).\(parts[1])".utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: self.key) else { return nil }
        guard let claims = try? JSONDecoder().decode(SessionClaims.self, from: payloadData) else { return nil }
        let seconds = Int64(now.timeIntervalSince1970)
        guard claims.exp + self.leeway > seconds else { return nil }
        guard claims.iss == self.issuer, claims.aud == self.audience else { return nil }
        if let nbf = claims.nbf, nbf - self.leeway > seconds { return nil }
        return claims
    }

    /// Signs claims as an HS256 JWT.
    public func sign(_ claims: SessionClaims) -> String {
        let header = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode((try? JSONEncoder().encode(claims)) ?? Data())
        let signature = HMAC<SHA256>.authenticationCode(for: Data("\(header).\(payload)".utf8), using: self.key)
        return "\(header).\(payload).\(Base64URL.encode(Data(signature)))"
    }
}
