import AsyncHTTPClient
import Foundation
import Shared
import Testing

extension RealExecutables {
    /// The OpenAPI document and Swagger UI through the gateway, and the proof that the catalog, the
    /// routers and the document list the same routes. With `STREAMHUB_OPENAPI_PYTHON` (a Python
    /// with openapi-spec-validator and schemathesis) the document is validated and schemathesis
    /// runs against the live system; with `chromium`, `STREAMHUB_CHROMIUM_PYTHON` and
    /// `STREAMHUB_SWAGGER_UI_DIR` (Swagger UI's files, from PyPI swagger-ui-py) headless Chromium
    /// renders `/api/v1/docs` (screenshot in `$STREAMHUB_TEST_ARTIFACTS`). CI sets all of them.
    @Suite("API docs end to end", .serialized)
    struct APIDocsEndToEndTests {
        static let environment = ProcessInfo.processInfo.environment
        static func setting(_ name: String) -> String? { Self.environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        static let interop = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("interop")

        /// Swagger UI's files: the real ones when CI installed them, else stand-ins with the same names.
        static func docsDirectory(in dataDir: String) throws -> String {
            if let installed = Self.setting("STREAMHUB_SWAGGER_UI_DIR") { return installed }
            let directory = dataDir + "/swagger-ui-standin"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data("/* stand-in */".utf8).write(to: URL(fileURLWithPath: directory + "/swagger-ui.css"))
            try Data("secret".utf8).write(to: URL(fileURLWithPath: directory + "/notes.txt"))
            return directory
        }

        @Test("openapi.json and /docs are public and unenveloped; catalog, routers and document agree route for route; validator, schemathesis, Chromium")
        func docs() async throws {
            let scratch = NSTemporaryDirectory() + "streamhub-docs-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let docsDir = try Self.docsDirectory(in: scratch)
            try await Stack.with(extra: ["GATEWAY_DOCS_DIR": docsDir]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                // A broken credential changes nothing on public routes.
                let served = try await client.call(base + "/openapi.json", headers: [("Authorization", "Bearer sk_broken")])
                #expect(served.status == 200 && served.header("Content-Type") == "application/json; charset=utf-8")
                let document = try served.json()
                #expect(document["openapi"] as? String == "3.1.0" && document["data"] == nil)
                let paths = try #require(document["paths"] as? [String: [String: Any]])
                let documented = Set(paths.flatMap { path, operations in operations.keys.map { "\($0.uppercased()) \(path)" } })
                let catalog = Set(RouteCatalog.routes.map { "\($0.method) \(OpenAPIDocument.openAPIPath($0.path))" })
                #expect(documented == catalog)
                let apps = try #require(paths["/api/v1/apps"]?["post"] as? [String: Any])
                #expect(apps["x-permission"] as? String == "app:write")
                #expect((apps["responses"] as? [String: Any])?.keys.contains("201") == true)

                // Every service's router serves exactly the catalog's routes for it.
                for service in ["identity", "authz", "media"] {
                    let listed = try await client.call(
                        "http://127.0.0.1:\(stack.ports[service]!)/internal/v1/routes", headers: [("X-StreamHub-Internal-Token", Stack.internalToken)])
                    #expect(listed.status == 200)
                    let routes = try #require(try JSONSerialization.jsonObject(with: Data(listed.body.utf8)) as? [String])
                    let expected = RouteCatalog.routes.filter { $0.service.rawValue == service }.map { "\($0.method) \($0.path)" }
                    #expect(Set(routes) == Set(expected), "\(service): router \(Set(routes).symmetricDifference(expected).sorted())")
                }
                // The internal listing is not public.
                #expect(try await client.call("http://127.0.0.1:\(stack.ports["media"]!)/internal/v1/routes").status == 401)

                let page = try await client.call(base + "/docs")
                #expect(page.status == 200 && page.header("Content-Type") == "text/html; charset=utf-8")
                #expect(page.body.contains("/api/v1/docs/swagger-ui-bundle.js") && page.body.contains("<code>/api/v1/apps/:app/streams</code>"))
                let css = try await client.call(base + "/docs/swagger-ui.css")
                #expect(css.status == 200 && css.header("Content-Type") == "text/css; charset=utf-8")
                for other in ["notes.txt", "..%2Fsecrets.env", ".hidden", "swagger-ui.css.map"] {
                    let refused = try await client.call(base + "/docs/" + other)
                    #expect(refused.status == 404 && refused.body.contains("\"statusCode\":404"), "\(other)")
                }
                #expect(try await client.call(base + "/openapi.json", method: "POST").status == 405)

                let token = try await stack.seedToken(name: "docs").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                if let python = Self.setting("STREAMHUB_OPENAPI_PYTHON") {
                    let artifacts = Self.setting("STREAMHUB_TEST_ARTIFACTS") ?? "/tmp/streamhub-test-artifacts"
                    let checked = try await Stack.run(
                        python, [Self.interop.appendingPathComponent("openapi_check.py").path, stack.gatewayURL, token, Stack.clusterToken, artifacts + "/schemathesis"],
                        environment: Self.environment)
                    print("openapi: \(checked.stdout)")
                    #expect(checked.status == 0, "\(checked.stdout)\n\(checked.stderr.suffix(6000))\ngateway: \(stack.log("gateway").suffix(1500))")
                }
                if let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: FileManager.default.isExecutableFile(atPath:)),
                    let python = Self.setting("STREAMHUB_CHROMIUM_PYTHON"), Self.setting("STREAMHUB_SWAGGER_UI_DIR") != nil
                {
                    let artifacts = Self.setting("STREAMHUB_TEST_ARTIFACTS") ?? "/tmp/streamhub-test-artifacts"
                    try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
                    let rendered = try await Stack.run(
                        python,
                        [Self.interop.appendingPathComponent("chromium_docs.py").path, chromium, base + "/docs", artifacts + "/docs.png", String(RouteCatalog.routes.count)],
                        environment: Self.environment)
                    print("chromium /api/v1/docs: \(rendered.stdout)")
                    #expect(rendered.status == 0, "\(rendered.stdout)\n\(rendered.stderr.suffix(1500))")
                    #expect(FileManager.default.fileExists(atPath: artifacts + "/docs.png"))
                }
            }
        }
    }
}
