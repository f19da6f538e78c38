import AsyncHTTPClient
import Foundation
import Testing

extension RealExecutables {
    /// The self-service pages through the gateway: their headers and markup over HTTP, and — when
    /// `chromium` is installed and `STREAMHUB_CHROMIUM_PYTHON` names a Python with websocket-client
    /// (CI sets up both) — headless Chromium going through them as a new user: sign-up, the
    /// verification mail, TOTP set up from the QR code, sign-out, a magic link with the TOTP code.
    @Suite("Self-service pages end to end", .serialized)
    struct PagesEndToEndTests {
        static let pages = ["/login", "/login/magic", "/login/reset", "/login/verify", "/login/invite", "/account"]

        @Test("every mailed link's page answers: HTML with a strict CSP, no inline script, one script and one stylesheet of our own")
        func pagesOverHTTP() async throws {
            try await Stack.with(extra: ["STREAMHUB_DASHBOARD_URL": "https://dash.example.test/app?x=1&y=\"2\""]) { stack, client in
                for path in Self.pages {
                    let page = try await client.call(stack.gatewayURL + path + "?token=abc")
                    #expect(page.status == 200, "\(path)")
                    #expect(page.header("Content-Type") == "text/html; charset=utf-8")
                    let policy = page.header("Content-Security-Policy") ?? ""
                    #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "\(policy)")
                    #expect(page.header("X-Frame-Options") == "DENY" && page.header("Cache-Control") == "no-store")
                    #expect(page.header("Referrer-Policy") == "no-referrer", "the token in the URL must not leak in a Referer")
                    #expect(!page.body.contains("<script>") && !page.body.contains("style="), "\(path): inline script or style")
                    #expect(page.body.range(of: #" on[a-z]+="#, options: .regularExpression) == nil, "\(path): an inline event handler")
                    #expect(page.body.contains(#"<script src="/login/assets/pages.js" defer></script>"#))
                    #expect(!page.body.contains("http://") && !page.body.contains("https://cdn"), "\(path): a third-party asset")
                    #expect(page.body.contains(#"data-dashboard="https://dash.example.test/app?x=1&amp;y=&quot;2&quot;""#))
                    let head = try await client.call(stack.gatewayURL + path, method: "HEAD")
                    #expect(head.status == 200 && head.body.isEmpty)
                }
                let script = try await client.call(stack.gatewayURL + "/login/assets/pages.js")
                #expect(script.status == 200 && script.header("Content-Type") == "text/javascript; charset=utf-8")
                #expect(script.body.contains("QR.encode") && script.body.contains("/auth/magic/verify"))
                let style = try await client.call(stack.gatewayURL + "/login/assets/pages.css")
                #expect(style.status == 200 && style.header("Content-Type") == "text/css; charset=utf-8")
                #expect(try await client.call(stack.gatewayURL + "/login/other").status == 404)
                #expect(try await client.call(stack.gatewayURL + "/login", method: "POST").status == 404)
            }
        }

        @Test(
            "Chromium: sign-up → verification mail → landing → TOTP set up from the QR code → sign out → magic link → TOTP code → signed in",
            .enabled(if: PlayerEndToEndTests.chromium != nil && PlayerEndToEndTests.python != nil))
        func browserFlow() async throws {
            try await Stack.with { stack, _ in
                let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("interop/chromium_pages.py").path
                let artifacts = ProcessInfo.processInfo.environment["STREAMHUB_TEST_ARTIFACTS"] ?? "/tmp/streamhub-test-artifacts"
                try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
                let result = try await Stack.run(
                    try #require(PlayerEndToEndTests.python),
                    [script, try #require(PlayerEndToEndTests.chromium), stack.gatewayURL, stack.dataDir + "/data/outbox", artifacts],
                    environment: ProcessInfo.processInfo.environment)
                print("self-service pages in Chromium: \(result.stdout)")
                #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
                let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
                let steps = try #require(summary["steps"] as? [String: Bool])
                #expect(steps.count >= 14)
                #expect(steps.values.allSatisfy { $0 }, "\(steps.filter { !$0.value })")
            }
        }
    }
}
