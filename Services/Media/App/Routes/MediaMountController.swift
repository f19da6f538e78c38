import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import Shared

/// The root mounts (`/hls /samples /sdk /play /embed /assets`), served from `<media root>/<mount>/`.
/// A path that would leave its root, or any hidden segment, is a 404.
public struct MediaMountController<Context: ServiceRequestContextProtocol>: Sendable {
    let root: String
    let fileIO = FileIO()

    public init(root: String) {
        self.root = root
    }

    public func addRoutes(to router: Router<Context>) {
        for mount in RouteCatalog.mediaMounts {
            router.get(RouterPath(mount + "/**"), use: self.serve)
            router.head(RouterPath(mount + "/**"), use: self.serve)
            router.on(RouterPath(mount + "/**"), method: .options, use: self.options)
        }
    }

    /// The methods every mount answers (the gateway's 405 names the same).
    public static var allow: String { RouteCatalog.mediaMountMethods.joined(separator: ", ") }

    /// `OPTIONS` on a file: 204 with `Allow` and the CORS preflight answer (players on other origins
    /// fetch playlists and segments with `Range`).
    @Sendable func options(_ request: Request, context: Context) async throws -> Response {
        _ = try self.existingFile(request.uri.path)
        return Response(
            status: .noContent,
            headers: [
                .allow: Self.allow, .accessControlAllowOrigin: "*", .accessControlAllowMethods: Self.allow,
                .accessControlAllowHeaders: "Range", .accessControlMaxAge: "600",
            ])
    }

    /// The file a request path names.
    /// - Throws: ``ServiceError`` 404 when it is outside every mount or root, or is not a file.
    func existingFile(_ path: String) throws -> String {
        guard let file = self.resolve(path) else {
            throw ServiceError(.notFound, message: "Cannot GET \(path)")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw ServiceError(.notFound, message: "Cannot GET \(path)")
        }
        return file
    }

    /// The file a request path names, or nil when it is outside every mount or its root.
    public func resolve(_ path: String) -> String? {
        guard let mount = RouteCatalog.mediaMounts.first(where: { path.hasPrefix($0 + "/") }) else { return nil }
        let relative = path.dropFirst(mount.count + 1)
        guard let decoded = String(relative).removingPercentEncoding, !decoded.isEmpty else { return nil }
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: false)
        for segment in segments {
            if segment.isEmpty || segment.hasPrefix(".") || segment.contains("\\") || segment.contains("\0") { return nil }
        }
        return self.root + mount + "/" + segments.joined(separator: "/")
    }

    @Sendable func serve(_ request: Request, context: Context) async throws -> Response {
        let file = try self.existingFile(request.uri.path)
        let ext = (file as NSString).pathExtension.lowercased()
        var headers: HTTPFields = [.contentType: MediaContentType.byExtension[ext] ?? "application/octet-stream"]
        headers[.cacheControl] = ext == "m3u8" ? "no-cache" : "public, max-age=60"
        headers[.accessControlAllowOrigin] = "*"
        let attributes = try? FileManager.default.attributesOfItem(atPath: file)
        if let size = attributes?[.size] as? Int {
            headers[.contentLength] = String(size)
        }
        if request.method == .head {
            return Response(status: .ok, headers: headers)
        }
        let body = try await self.fileIO.loadFile(path: file, context: context)
        return Response(status: .ok, headers: headers, body: body)
    }
}

/// MIME types for the media mounts (FileMiddleware has no `.m3u8`/`.m4s`).
public enum MediaContentType {
    public static let byExtension: [String: String] = [
        "m3u8": "application/vnd.apple.mpegurl", "m4s": "video/iso.segment", "ts": "video/mp2t", "mp4": "video/mp4", "m4a": "audio/mp4",
        "aac": "audio/aac", "vtt": "text/vtt", "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
        "mjs": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "json": "application/json", "png": "image/png",
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "svg": "image/svg+xml", "ico": "image/x-icon", "txt": "text/plain; charset=utf-8",
        "wasm": "application/wasm", "map": "application/json",
    ]
}
