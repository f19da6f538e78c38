import Foundation
import Testing

extension RealExecutables {
    /// Mail against aiosmtpd: identity delivers the magic link and the reset link over SMTP with
    /// STARTTLS (verified against a test CA) and AUTH, and following the links signs in and sets a
    /// new password through the gateway. Runs when `STREAMHUB_AIOSMTPD_PYTHON` names a Python with
    /// aiosmtpd and `openssl` is on the PATH (CI sets both up).
    @Suite("aiosmtpd interop", .serialized)
    struct SMTPInteropTests {
        static let python = ProcessInfo.processInfo.environment["STREAMHUB_AIOSMTPD_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

        @Test("the verification, magic and reset links arrive over STARTTLS with AUTH, and following them works", .enabled(if: python != nil))
        func magicLinkOverSMTP() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let cert = directory.appendingPathComponent("cert.pem").path
            let key = directory.appendingPathComponent("key.pem").path
            let openssl = try await Stack.run(
                "/usr/bin/env",
                [
                    "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                ], environment: ProcessInfo.processInfo.environment)
            try #require(openssl.status == 0, "\(openssl.stderr)")
            let smtpPort = try Stack.freePort()
            let publicURL = "https://dashboard.example.test"
            let smtp = [
                "SMTP_HOST": "127.0.0.1", "SMTP_PORT": String(smtpPort), "SMTP_SECURITY": "starttls", "SMTP_CA_FILE": cert,
                "SMTP_USERNAME": "streamhub-mailer", "SMTP_PASSWORD": "mailer password 42",
            ]
            try await Stack.with(extra: ["STREAMHUB_PUBLIC_URL": publicURL], perService: ["identity": smtp]) { stack, _ in
                let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("interop/smtp_magic_link.py").path
                let result = try await Stack.run(
                    try #require(Self.python),
                    [script, stack.gatewayURL, String(smtpPort), cert, key, "streamhub-mailer", "mailer password 42", publicURL],
                    environment: ProcessInfo.processInfo.environment)
                print("aiosmtpd interop: \(result.stdout)")
                #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
                let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
                let steps = try #require(summary["steps"] as? [String: Bool])
                #expect(steps.count == 19)
                #expect(steps.values.allSatisfy { $0 }, "\(steps.filter { !$0.value })")
                // Nothing went to the outbox directory: SMTP replaced it.
                #expect(!FileManager.default.fileExists(atPath: stack.dataDir + "/data/outbox"))
            }
        }
    }
}
