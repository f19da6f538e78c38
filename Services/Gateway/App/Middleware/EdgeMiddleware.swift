import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import Shared

/// What every answer of the public edge carries, and CORS for `/api/v1`.
///
/// - `X-Content-Type-Options: nosniff` on every answer; `WWW-Authenticate: Bearer` on every 401;
///   `Cache-Control: no-store` on API answers that set no caching of their own (they carry
///   credentials or per-caller data).
/// - CORS from the `STREAMHUB_CORS_ORIGINS` allowlist: a preflight is answered here, before any
///   credential is looked at; an allowed origin gets `Access-Control-Allow-Origin` with `Vary:
///   Origin`. Credentials are allowed only for listed origins, never with `*`.
///
/// Sits inside the error middleware's reach (errors are already NestJS answers when they get here).
public struct EdgeMiddleware<Context: ServiceRequestContextProtocol>: RouterMiddleware {
    let cors: CORSPolicy

    public init(cors: CORSPolicy) {
        self.cors = cors
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // RFC 9112 §3.2: a request without a Host, or with more than one, is a 400 — two readers
        // of one request must never disagree about where it goes. (HTTP/1.0 requests need one too.)
        guard request.head.authority != nil, request.headers[.secondHost] == nil else {
            throw ServiceError(.badRequest, message: "A request must carry exactly one Host header", headers: [.connection: "close"])
        }
        let isAPI = request.uri.path.hasPrefix(RouteCatalog.apiPrefix + "/") || request.uri.path == RouteCatalog.apiPrefix
        let origin = request.headers[.origin]
        var response: Response
        if isAPI, request.method == .options, let origin, request.headers[.accessControlRequestMethod] != nil {
            response = try self.preflight(path: request.uri.path, origin: origin)
        } else {
            response = try await next(request, context)
            if isAPI, let origin, let allowed = self.cors.allow(origin) {
                response.headers[.accessControlAllowOrigin] = allowed
                response.headers[.accessControlExposeHeaders] = "X-Request-Id, Retry-After, Idempotency-Replayed"
                if allowed != "*" { response.headers[.accessControlAllowCredentials] = "true" }
            }
            if isAPI, response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        }
        if isAPI, self.cors.isConfigured { response.headers[.vary] = "Origin" }
        response.headers[.xContentTypeOptions] = "nosniff"
        if response.status == .unauthorized, response.headers[.wwwAuthenticate] == nil {
            response.headers[.wwwAuthenticate] = "Bearer"
        }
        return response
    }

    func preflight(path: String, origin: String) throws -> Response {
        guard let allowed = self.cors.allow(origin) else {
            throw ServiceError(.forbidden, message: "Origin \(origin.prefix(200)) is not allowed")
        }
        let methods: [String]
        switch RouteCatalog.match(method: "OPTIONS", path: path) {
        case .methodNotAllowed(let allowed): methods = allowed
        case .route(let route, _): methods = [route.method]
        case .notFound: throw ServiceError(.notFound, message: "Cannot OPTIONS \(path)")
        }
        var headers: HTTPFields = [
            .accessControlAllowOrigin: allowed, .accessControlAllowMethods: (methods + ["OPTIONS"]).joined(separator: ", "),
            .accessControlAllowHeaders: "Authorization, Content-Type, X-Request-Id, Idempotency-Key", .accessControlMaxAge: "600",
            .cacheControl: "no-store",
        ]
        if allowed != "*" { headers[.accessControlAllowCredentials] = "true" }
        return Response(status: .noContent, headers: headers)
    }
}

/// `STREAMHUB_CORS_ORIGINS`: exact origins (`https://dash.example.com`), or `*` for any origin
/// without credentials. Empty: no cross-origin access.
public struct CORSPolicy: Sendable, Equatable {
    public var origins: Set<String>
    public var anyOrigin: Bool

    public init(origins: [String]) {
        self.anyOrigin = origins.contains("*")
        self.origins = Set(origins.filter { $0 != "*" }.map { $0.lowercased() })
    }

    var isConfigured: Bool { self.anyOrigin || !self.origins.isEmpty }

    /// The `Access-Control-Allow-Origin` value for `origin`, or nil when it is not allowed.
    func allow(_ origin: String) -> String? {
        if self.origins.contains(origin.lowercased()) { return origin }
        return self.anyOrigin ? "*" : nil
    }
}

/// `STREAMHUB_TRUSTED_PROXIES`: the CIDRs whose `X-Forwarded-For` is believed. The client IP
/// forwarded to services is the peer, or — when the peer is a trusted proxy — the right-most
/// address of `X-Forwarded-For` that is not itself a trusted proxy.
public struct TrustedProxies: Sendable, Equatable {
    struct Network: Sendable, Equatable {
        var address: [UInt8]
        var prefix: Int

        func contains(_ other: [UInt8]) -> Bool {
            guard other.count == self.address.count else { return false }
            var bits = self.prefix
            for (a, b) in zip(self.address, other) {
                guard bits > 0 else { return true }
                let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if a & mask != b & mask { return false }
                bits -= 8
            }
            return true
        }
    }

    var networks: [Network]

    /// - Throws: ``ConfigurationError`` naming a malformed CIDR.
    public init(cidrs: [String]) throws {
        self.networks = try cidrs.map { text in
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard let address = Self.parse(parts[0]) else {
                throw ConfigurationError("\(ConfigKey.trustedProxies): \"\(text)\" is not an IP address or CIDR")
            }
            let prefix = parts.count == 2 ? Int(parts[1]) : address.count * 8
            guard let prefix, (0...(address.count * 8)).contains(prefix) else {
                throw ConfigurationError("\(ConfigKey.trustedProxies): \"\(text)\" has a bad prefix length")
            }
            return Network(address: address, prefix: prefix)
        }
    }

    public static let none = try! TrustedProxies(cidrs: [])

    func trusts(_ ip: String) -> Bool {
        guard let bytes = Self.parse(ip) else { return false }
        return self.networks.contains { $0.contains(bytes) }
    }

    /// The client's address for a request from `peer` carrying `forwardedFor` headers.
    public func clientIP(peer: String?, forwardedFor: [String]) -> String? {
        guard let peer, self.trusts(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard Self.parse(hop) != nil else { return peer }
            if !self.trusts(hop) { return hop }
        }
        return hops.first ?? peer
    }

    /// IPv4 or IPv6 text → network-order bytes.
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

extension HTTPField.Name {
    /// A second `Host` stays among the fields when the first becomes the request's authority.
    static let secondHost = HTTPField.Name("Host")!
}
