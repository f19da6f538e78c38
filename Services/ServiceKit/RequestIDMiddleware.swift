import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Shared

extension HTTPField.Name {
    public static let requestID = HTTPField.Name(StreamHubHeader.requestID)!
    public static let streamHubInternalToken = HTTPField.Name(StreamHubHeader.internalToken)!
    public static let streamHubPrincipal = HTTPField.Name(StreamHubHeader.principal)!
    public static let streamHubClientIP = HTTPField.Name(StreamHubHeader.clientIP)!
    public static let clusterToken = HTTPField.Name(StreamHubHeader.clusterToken)!
}

/// Puts the request id into the context and into every log line of the request (`request_id`,
/// the one key: Hummingbird's own `hb.request.id` is dropped), and echoes it on the response.
///
/// The id comes from `X-Request-Id` when the caller sent a sane one (the gateway always does),
/// else a new one.
public struct RequestIDMiddleware<Context: ServiceRequestContextProtocol>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = RequestIDs.resolve(request.headers[.requestID])
        var context = context
        context.requestID = id
        context.logger[metadataKey: RequestIDs.logKey] = .string(id)
        context.logger[metadataKey: "hb.request.id"] = nil
        var response = try await next(request, context)
        response.headers[.requestID] = id
        return response
    }
}

/// Request ids: the caller's when sane, else a fresh one.
public enum RequestIDs {
    /// The one metadata key of the request id in every log line.
    public static let logKey = "request_id"

    /// A client-sent id is kept only if it is short and made of safe characters, so it cannot forge log lines.
    public static func acceptable(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= 128 else { return nil }
        let allowed = value.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x3A
        }
        return allowed ? value : nil
    }

    /// The caller's id when acceptable, else a new one.
    public static func resolve(_ value: String?) -> String {
        self.acceptable(value) ?? self.generate()
    }

    /// 128 bits from the system's generator as 32 lower-case hex digits: ids are echoed to clients
    /// and named in logs, so one must not tell the next (Hummingbird's own are a random prefix and
    /// a counter).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 32) { buffer in
            var index = 0
            for _ in 0..<2 {
                var word = generator.next()
                for _ in 0..<16 {
                    buffer[index] = digits[Int(word & 0xF)]
                    word >>= 4
                    index += 1
                }
            }
            return 32
        }
    }
}
