import HTTPTypes
import Hummingbird
import Shared

/// Guards every non-health route of an internal service: the caller must present
/// `STREAMHUB_INTERNAL_TOKEN` in `X-StreamHub-Internal-Token`, compared in constant time.
public struct InternalTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    public init(token: String) {
        self.token = Array(token.utf8)
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try InternalToken.check(request.headers[.streamHubInternalToken], expected: self.token)
        return try await next(request, context)
    }
}

public enum InternalToken {
    /// The one check every internal route makes: the presented token equals `expected`, compared
    /// in constant time; else 401.
    public static func check(_ presented: String?, expected: [UInt8]) throws {
        guard let presented, ConstantTime.equals(Array(presented.utf8), expected) else {
            throw ServiceError(.unauthorized, message: "Missing or invalid internal token")
        }
    }
}
