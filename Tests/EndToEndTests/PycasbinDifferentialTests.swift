import Foundation
import Testing

extension RealExecutables {
    /// Our engine against pycasbin (PyPI `casbin`) on random ACL, RBAC, RBAC-with-domains,
    /// keyMatch, deny and priority policies, through `streamhub-authz eval`. Runs when
    /// `STREAMHUB_PYCASBIN_PYTHON` names a Python with `casbin` installed (CI sets it up).
    @Suite("pycasbin differential")
    struct PycasbinDifferentialTests {
        static let python = ProcessInfo.processInfo.environment["STREAMHUB_PYCASBIN_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

        @Test("every random decision agrees with pycasbin", .enabled(if: python != nil))
        func differential() async throws {
            let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            let result = try await Stack.run(
                try #require(Self.python),
                [
                    tests.appendingPathComponent("interop/casbin_differential.py").path, Stack.binary("streamhub-authz"),
                    tests.appendingPathComponent("EngineTests/Casbin/examples").path, "--scenarios", "120",
                ],
                environment: ProcessInfo.processInfo.environment
            )
            // One JSON line: {"agree": N, "disagree": 0, "by_model": {…}}; CI logs show the counts.
            print("pycasbin differential: \(result.stdout)")
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(summary["disagree"] as? Int == 0)
            #expect((summary["agree"] as? Int ?? 0) >= 3000)
        }
    }
}
