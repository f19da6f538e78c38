import Crypto
import Foundation
import Shared

/// Dashboard session JWTs, minted by identity and verified by the gateway with the same code: HS256
/// with `STREAMHUB_JWT_SECRET`, the algorithm pinned (any other `alg`, `none` included, is
/// rejected), the signature checked in constant time, `exp` required and in the future, `nbf`
/// honoured.
public struct SessionTokens: Sendable {
    let key: SymmetricKey
    /// Clock skew tolerated on `exp` and `nbf`.
    let leeway: Int64 = 5

    public init(secret: String) {
        self.key = SymmetricKey(data: Array(secret.utf8))
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
