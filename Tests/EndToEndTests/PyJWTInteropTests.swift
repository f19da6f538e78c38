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
                let result = try await Stack.run(
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

extension RealExecutables {
    /// TOTP against pyotp: codes computed by pyotp from our `otpauth://` URI confirm enrolment and
    /// sign in; a code never works twice; recovery codes are single use and renewable. Runs when
    /// `STREAMHUB_PYOTP_PYTHON` names a Python with pyotp (CI sets it up).
    @Suite("pyotp interop", .serialized)
    struct PyOTPInteropTests {
        static let python = ProcessInfo.processInfo.environment["STREAMHUB_PYOTP_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

        @Test("pyotp's codes enrol and sign in; a code is accepted once; recovery codes are single use; the sixth wrong code locks guessing out", .enabled(if: python != nil))
        func totp() async throws {
            try await Stack.with { stack, _ in
                let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("interop/totp_check.py").path
                let result = try await Stack.run(try #require(Self.python), [script, stack.gatewayURL], environment: ProcessInfo.processInfo.environment)
                print("pyotp interop: \(result.stdout)")
                #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
                let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
                let steps = try #require(summary["steps"] as? [String: Bool])
                #expect(steps.count == 13)
                #expect(steps.values.allSatisfy { $0 }, "\(steps.filter { !$0.value })")
            }
        }
    }
}
