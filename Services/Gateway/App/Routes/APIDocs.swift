import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceKit
import Shared
import Synchronization

/// `GET /api/v1/openapi.json`, `GET /api/v1/docs` and Swagger UI's files under `/api/v1/docs/`.
///
/// The document is generated once from the catalog. Swagger UI's files come from the PyPI package
/// `swagger-ui-py` (`swagger_ui/static/`), installed at setup time into ``directory``; the gateway
/// never loads them from a CDN. Without them the page still lists every operation (server-rendered)
/// and says how to install the interactive view.
struct APIDocs: Sendable {
    let document: ByteBuffer
    let page: ByteBuffer
    let directory: String
    /// Each asset read once (the bundle is 1.4 MB; requests run on the event loop), on its first
    /// request so files installed after start-up are found.
    let loaded = AssetCache()

    final class AssetCache: Sendable {
        let files = Mutex<[String: ByteBuffer]>([:])
    }

    /// The files of Swagger UI the page uses (anything else under `/api/v1/docs/` is a 404).
    static let assets: [String: String] = [
        "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
        "swagger-ui.css": "text/css; charset=utf-8",
        "favicon-32x32.png": "image/png",
        "favicon-16x16.png": "image/png",
        "LICENSE": "text/plain; charset=utf-8",
    ]

    /// The document names no server: Swagger UI and clients call the origin they loaded it from,
    /// which stays right behind proxies and on any port.
    init(directory: String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(OpenAPIDocument.make())) ?? Data("{}".utf8)
        self.document = ByteBuffer(bytes: data)
        self.page = ByteBuffer(string: Self.html())
        self.directory = directory
    }

    func openAPI() -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-cache"],
            body: .init(byteBuffer: self.document))
    }

    func docsPage() -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"], body: .init(byteBuffer: self.page))
    }

    func asset(_ name: String) throws -> Response {
        guard let contentType = Self.assets[name] else { throw ServiceError(.notFound, message: "Cannot GET /api/v1/docs/\(name)") }
        var body = self.loaded.files.withLock { $0[name] }
        if body == nil, let data = FileManager.default.contents(atPath: (self.directory as NSString).appendingPathComponent(name)) {
            body = ByteBuffer(bytes: data)
            self.loaded.files.withLock { $0[name] = body }
        }
        guard let body else { throw ServiceError(.notFound, message: "Cannot GET /api/v1/docs/\(name)") }
        return Response(status: .ok, headers: [.contentType: contentType, .cacheControl: "public, max-age=3600"], body: .init(byteBuffer: body))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The page: every operation listed in plain HTML, replaced by Swagger UI once its script loads.
    static func html() -> String {
        let rows = RouteCatalog.routes.map { route in
            let permission = route.permission.map { " <code>\(Self.escape($0.description))</code>" } ?? ""
            return "<li><b>\(route.method)</b> <code>\(Self.escape(route.path))</code> — \(Self.escape(route.summary))\(permission)</li>"
        }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>StreamHub API</title>
            <link rel="icon" type="image/png" href="/api/v1/docs/favicon-32x32.png">
            <link rel="stylesheet" href="/api/v1/docs/swagger-ui.css">
            </head>
            <body>
            <div id="swagger-ui">
            <h1>StreamHub API</h1>
            <p>The OpenAPI 3.1 document is at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.
            <span id="swagger-missing" hidden>The interactive view needs Swagger UI's files in the gateway's <code>GATEWAY_DOCS_DIR</code>:
            <code>streamhub up</code> installs them (PyPI <code>swagger-ui-py</code>).</span></p>
            <ul class="operations">
            \(rows)
            </ul>
            </div>
            <script src="/api/v1/docs/swagger-ui-bundle.js"></script>
            <script>
            if (window.SwaggerUIBundle) {
              window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
            } else {
              document.getElementById("swagger-missing").hidden = false;
            }
            </script>
            </body>
            </html>
            """
    }
}
