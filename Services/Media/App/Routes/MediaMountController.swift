import Foundation

#if canImport(Glibc)
    import Glibc
#endif
import HTTPTypes
import Hummingbird
import NIOHTTP1
import ServiceKit
import Shared
import Synchronization

/// The root mounts (`/hls /samples /sdk /play /embed /assets`), served from `<media root>/<mount>/`.
/// A path that would leave its root, or any hidden segment, is a 404.
public struct MediaMountController<Context: ServiceRequestContextProtocol>: Sendable {
    let root: String
    /// `/play/:app/:room`, `/embed/:app/:room` and the built-in scripts, answered before any file.
    let pages: PlayerPages?
    let fileIO = FileIO()
    let mountRoots = MountRoots()
    let described = DescribedFiles()

    public init(root: String, pages: PlayerPages? = nil) {
        self.root = root
        self.pages = pages
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

    /// The file a request path names, with its `stat`.
    /// - Throws: ``ServiceError`` 404 when it is outside every mount or root (symlinks included), or is not a regular file.
    func existingFile(_ path: String) throws -> (path: String, stats: stat) {
        guard let file = self.resolve(path), let real = Self.realPath(file), let mount = RouteCatalog.mediaMounts.first(where: { path.hasPrefix($0 + "/") }),
            let mountRoot = self.mountRoot(mount), real.hasPrefix(mountRoot + "/")
        else {
            throw ServiceError(.notFound, message: "Cannot GET \(path)")
        }
        var stats = stat()
        guard stat(real, &stats) == 0, (stats.st_mode & S_IFMT) == S_IFREG else {
            throw ServiceError(.notFound, message: "Cannot GET \(path)")
        }
        return (real, stats)
    }

    /// The real path of a mount's directory, remembered once it exists (it is looked up on every request).
    func mountRoot(_ mount: String) -> String? {
        if let known = self.mountRoots[mount] { return known }
        guard let real = Self.realPath(self.root + mount) else { return nil }
        self.mountRoots.remember(mount, real)
        return real
    }

    /// The path with every symlink followed, or nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The file a request path names, or nil when it is outside every mount or its root.
    public func resolve(_ path: String) -> String? {
        guard let mount = RouteCatalog.mediaMounts.first(where: { path.hasPrefix($0 + "/") }) else { return nil }
        let relative = path.dropFirst(mount.count + 1)
        // An encoded slash, backslash or NUL names no file here.
        let lowered = relative.lowercased()
        if lowered.contains("%2f") || lowered.contains("%5c") || lowered.contains("%00") { return nil }
        guard let decoded = String(relative).removingPercentEncoding, !decoded.isEmpty else { return nil }
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: false)
        for segment in segments {
            if segment.isEmpty || segment.hasPrefix(".") || segment.contains("\\") || segment.contains("\0") { return nil }
        }
        return self.root + mount + "/" + segments.joined(separator: "/")
    }

    /// Segments never change once written: cached for a year. Playlists change every few seconds.
    static var immutableExtensions: Set<String> { ["ts", "m4s", "mp4", "aac", "m4a"] }

    /// What a file request is answered with, decided from the path and the conditional and range
    /// headers alone: shared by the router and the event-loop fast path (``MediaFastPath``).
    enum FileAnswer {
        /// The file (or the byte range of it); `range` nil for an empty file, `contentRange` set for
        /// a 206. Its headers are ``headers(range:contentRange:)`` of `described`.
        case file(path: String, status: HTTPResponse.Status, range: ClosedRange<Int>?, contentRange: String?, described: DescribedFile)
        /// A bodiless or fixed answer (304, 416).
        case fixed(status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer?)
    }

    /// The request headers ``plan(path:conditions:)`` reads.
    typealias Conditions = MountConditions

    /// - Throws: ``ServiceError`` 404 for a path outside the mounts, a hidden or missing file.
    func plan(path: String, conditions: Conditions) throws -> FileAnswer {
        let described = try self.describe(path)
        let (file, size, etag, modified) = (described.file, described.size, described.etag, described.modified)
        if Self.notModified(ifNoneMatch: conditions.ifNoneMatch, ifModifiedSince: conditions.ifModifiedSince, etag: etag, modified: modified) {
            var headers = described.headers
            headers[.contentType] = nil
            return .fixed(status: .notModified, headers: headers, body: nil)
        }
        var status = HTTPResponse.Status.ok
        var range: ClosedRange<Int>? = size > 0 ? 0...(size - 1) : nil
        var contentRange: String?
        // A range applies unless If-Range names another version; several ranges get the whole file.
        if let header = conditions.range, Self.ifRangeMatches(conditions.ifRange, etag: etag, modified: modified) {
            switch ByteRange.parse(header, size: size) {
            case .single(let requested):
                status = .partialContent
                range = requested
                contentRange = "bytes \(requested.lowerBound)-\(requested.upperBound)/\(size)"
            case .unsatisfiable:
                let body = OrderedJSON.encode(ErrorBody(statusCode: 416, message: "Range not satisfiable for a \(size)-byte file"))
                return .fixed(
                    status: .rangeNotSatisfiable,
                    headers: [
                        .contentRange: "bytes */\(size)", .accessControlAllowOrigin: "*", .contentType: "application/json; charset=utf-8",
                        .contentLength: String(body.readableBytes),
                    ],
                    body: body)
            case .whole:
                break
            }
        }
        return .file(path: file, status: status, range: range, contentRange: contentRange, described: described)
    }

    /// How long a path's resolution is reused; the file itself is `stat`ed on every request, so a
    /// changed playlist is seen at once.
    static var resolutionLifetime: Duration { .seconds(1) }

    func describe(_ path: String) throws -> DescribedFile {
        let now = ContinuousClock.now
        if let known = self.described[path], known.resolvedUntil > now {
            var stats = stat()
            if stat(known.file, &stats) == 0, (stats.st_mode & S_IFMT) == S_IFREG, Int(stats.st_size) == known.size,
                stats.st_mtim.tv_sec == known.mtime.tv_sec, stats.st_mtim.tv_nsec == known.mtime.tv_nsec
            {
                return known
            }
        }
        let (file, stats) = try self.existingFile(path)
        let ext = (file as NSString).pathExtension.lowercased()
        let size = Int(stats.st_size)
        let modified = Date(timeIntervalSince1970: TimeInterval(stats.st_mtim.tv_sec))
        let etag = "\"\(String(size, radix: 16))-\(String(stats.st_mtim.tv_sec, radix: 16))\(String(stats.st_mtim.tv_nsec, radix: 16))\""
        var headers: HTTPFields = [.contentType: MediaContentType.byExtension[ext] ?? "application/octet-stream"]
        headers[.cacheControl] =
            ext == "m3u8" ? "no-cache" : Self.immutableExtensions.contains(ext) ? "public, max-age=31536000, immutable" : "public, max-age=60"
        headers[.accessControlAllowOrigin] = "*"
        headers[.accessControlExposeHeaders] = "Content-Length, Content-Range, Accept-Ranges, ETag"
        headers[.acceptRanges] = "bytes"
        headers[.eTag] = etag
        headers[.lastModified] = HTTPDate.format(modified)
        var nioHeaders = HTTPHeaders()
        nioHeaders.reserveCapacity(headers.count + 6)
        for field in headers { nioHeaders.add(name: field.name.rawName, value: field.value) }
        let described = DescribedFile(
            file: file, size: size, mtime: stats.st_mtim, etag: etag, modified: modified, headers: headers, nioHeaders: nioHeaders,
            headerBlock: ByteBuffer(string: headers.map { "\($0.name.rawName): \($0.value)\r\n" }.joined()),
            sizeText: String(size), resolvedUntil: now + Self.resolutionLifetime)
        self.described.remember(path, described)
        return described
    }

    @Sendable func serve(_ request: Request, context: Context) async throws -> Response {
        if let page = self.pages?.response(for: request) {
            return request.method == .head ? Response(status: page.status, headers: page.headers) : page
        }
        let conditions = Conditions(
            ifNoneMatch: request.headers[.ifNoneMatch], ifModifiedSince: request.headers[.ifModifiedSince], range: request.headers[.range],
            ifRange: request.headers[.ifRange])
        switch try self.plan(path: request.uri.path, conditions: conditions) {
        case .fixed(let status, let headers, let body):
            return Response(status: status, headers: headers, body: body.map { .init(byteBuffer: $0) } ?? .init())
        case .file(let file, let status, let range, let contentRange, let described):
            let headers = described.headers(range: range, contentRange: contentRange)
            guard request.method != .head, let range else {
                return Response(status: status, headers: headers)
            }
            // Streamed from disk in chunks: a large segment is never loaded whole.
            let body = try await self.fileIO.loadFile(path: file, range: range, context: context)
            return Response(status: status, headers: headers, body: body)
        }
    }

    /// `If-None-Match` (any listed ETag, weak or strong, or `*`), else `If-Modified-Since`.
    static func notModified(ifNoneMatch: String?, ifModifiedSince: String?, etag: String, modified: Date) -> Bool {
        if let match = ifNoneMatch {
            return match.split(separator: ",").contains { tag in
                let trimmed = tag.trimmingCharacters(in: .whitespaces)
                return trimmed == "*" || trimmed == etag || trimmed == "W/" + etag
            }
        }
        if let since = ifModifiedSince.flatMap(HTTPDate.parse) {
            return modified.timeIntervalSince1970.rounded(.down) <= since.timeIntervalSince1970
        }
        return false
    }

    static func ifRangeMatches(_ value: String?, etag: String, modified: Date) -> Bool {
        guard let value else { return true }
        if value.hasPrefix("\"") { return value == etag }
        return HTTPDate.parse(value).map { modified.timeIntervalSince1970.rounded(.down) <= $0.timeIntervalSince1970 } ?? false
    }
}

/// Mount directories' real paths by mount (shared by copies of the controller).
final class MountRoots: Sendable {
    let roots = Mutex<[String: String]>([:])

    subscript(mount: String) -> String? {
        get { self.roots.withLock { $0[mount] } }
    }

    func remember(_ mount: String, _ real: String) { self.roots.withLock { $0[mount] = real } }
}

/// A file's identity and the headers every answer about it carries.
struct DescribedFile: Sendable {
    var file: String
    var size: Int
    var mtime: timespec
    var etag: String
    var modified: Date
    var headers: HTTPFields
    /// The same headers for NIO, built once (the event-loop fast path adds the length and range).
    var nioHeaders: HTTPHeaders
    /// The same headers as the bytes of a response head (`Name: value` lines), for the raw fast path.
    var headerBlock: ByteBuffer
    /// `size` in decimal, the `Content-Length` of a whole-file answer.
    var sizeText: String
    /// Until when the path's resolution (realpath, containment) is trusted without redoing it.
    var resolvedUntil: ContinuousClock.Instant

    /// `Content-Length` of an answer with this range (nil: an empty file).
    func contentLength(range: ClosedRange<Int>?) -> String {
        guard let range else { return "0" }
        return range.count == self.size ? self.sizeText : String(range.count)
    }

    /// The headers of a file answer: the file's own, its length and, for a 206, its range.
    func headers(range: ClosedRange<Int>?, contentRange: String?) -> HTTPFields {
        var headers = self.headers
        headers[.contentLength] = self.contentLength(range: range)
        if let contentRange { headers[.contentRange] = contentRange }
        return headers
    }
}

/// Recently described files by request path, bounded (cleared past 10,000 paths).
final class DescribedFiles: Sendable {
    let files = Mutex<[String: DescribedFile]>([:])

    subscript(path: String) -> DescribedFile? {
        self.files.withLock { $0[path] }
    }

    func remember(_ path: String, _ described: DescribedFile) {
        self.files.withLock { files in
            if files.count >= 10_000 { files.removeAll(keepingCapacity: true) }
            files[path] = described
        }
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
