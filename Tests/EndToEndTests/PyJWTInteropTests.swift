import Foundation
import Testing

extension RealExecutables {
    /// Our sessions against PyJWT, the reference JWT library: PyJWT decodes what identity mints, and
    /// every token PyJWT forges (alg none, HS512/HS384, an RS256 header, expired, no `exp`, wrong or
    /// missing `aud`, wrong `iss`, wrong secret, `nbf` in the future, a tampered payload) is a 401 at
    /// the gateway. Runs when `STREAMHUB_PYJWT_PYTHON` names a Python with PyJWT (CI sets it up).
    @Suite("PyJWT interop", .serialized)
    struct PyJWTInteropTests {
        static let python = ProcessInfo.processInfo.environment["STREAMHUB_PYJWT_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

        @Test("PyJWT decodes our sessions and none of its forgeries gets through the gateway", .enabled(if: python != nil))
        func forgeries() async throws {
            try await Stack.with { stack, _ in
                let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("interop/jwt_forgery.py").path
                let result = try Stack.run(
                    try #require(Self.python), [script, stack.gatewayURL, Stack.jwtSecret, "http://127.0.0.1:8080"],
                    environment: ProcessInfo.processInfo.environment)
                print("pyjwt interop: \(result.stdout)")
                #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
                let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
                let cases = try #require(summary["cases"] as? [String: Bool])
                #expect(cases.count == 14)
                #expect(cases.values.allSatisfy { $0 }, "\(cases.filter { !$0.value })")
            }
        }
    }
}
