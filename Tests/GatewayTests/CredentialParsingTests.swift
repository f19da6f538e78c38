import Foundation
import Testing

@testable import GatewayApp
@testable import ServiceKit
@testable import Shared

@Suite("Credential parsing")
struct CredentialParsingTests {
    @Test("Bearer credentials: scheme in any case, blanks around it ignored", arguments: [
        ("Bearer sk_abc", "sk_abc"), ("bearer  sk_abc ", "sk_abc"), ("\tBEARER sk_abc\t", "sk_abc"), ("BeArEr\teyJ.a.b", "eyJ.a.b"),
    ])
    func accepted(header: String, credential: String) throws {
        #expect(try CredentialResolver.bearerCredential(header) == credential)
    }

    @Test("anything else is a 401", arguments: ["", "   ", "Bearer", "Bearer ", "Bearersk_abc", "Basic abc", "Bearer a b", "Token sk_abc", "Bearer\u{00A0}x"])
    func refused(header: String) {
        #expect(throws: ServiceError.self) { try CredentialResolver.bearerCredential(header) }
    }

    @Test("an over-long credential is refused")
    func overLong() {
        #expect(throws: ServiceError.self) { try CredentialResolver.bearerCredential("Bearer " + String(repeating: "a", count: 8193)) }
        #expect(throws: Never.self) { try CredentialResolver.bearerCredential("Bearer " + String(repeating: "a", count: 8192)) }
    }

    @Test("verified sessions are kept until they expire, never past")
    func verifiedSessions() {
        let sessions = VerifiedSessions(capacity: 2)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let claims = SessionClaims(sub: "u1", tenantId: "t1", iat: 1_800_000_000, exp: 1_800_000_060)
        #expect(sessions.claims("tok", now: now) == nil)
        sessions.keep("tok", claims)
        #expect(sessions.claims("tok", now: now.addingTimeInterval(59)) == claims)
        #expect(sessions.claims("tok", now: now.addingTimeInterval(60)) == nil)
        #expect(sessions.claims("tok", now: now) == nil, "an expired session is dropped")
    }

    @Test("the principal header round-trips and is the same text for the same principal")
    func principalHeader() throws {
        let principal = Principal(kind: .user, scope: .tenant, subject: "user:1", tenantId: "t1")
        let header = PrincipalHeader.encode(principal)
        #expect(PrincipalHeader.encode(principal) == header)
        #expect(PrincipalHeader.decode(header) == principal)
        #expect(PrincipalHeader.decode(header) == principal)
        #expect(PrincipalHeader.decode("not base64!") == nil)
        let other = Principal(kind: .user, scope: .tenant, subject: "user:2", tenantId: "t1")
        #expect(PrincipalHeader.decode(PrincipalHeader.encode(other)) == other)
    }
}
