import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Shared

/// First middleware of every router: whatever a handler throws, the client gets NestJS's error body.
///
/// - ``ServiceError`` is written as is.
/// - Hummingbird's `HTTPError` (route not found, body too large, bad JSON) keeps its status and message.
/// - A ``ServiceErrorConvertible`` (storage's errors: a duplicate, the database away) is the
///   error it stands for: 409, 503, ….
/// - `DecodingError` is a client mistake: 400.
/// - Anything else is logged at error level with the request id and answered 500 without details.
public struct NestErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServiceError {
            return ServiceError.response(status: error.status, body: error.body, extraHeaders: error.headers)
        } catch let error as HTTPError {
            let message: String
            if error.status == .notFound && error.body == nil {
                // NestJS's wording for an unmatched route.
                message = "Cannot \(request.method.rawValue) \(request.uri.path)"
            } else if error.status == .contentTooLarge {
                message = error.body ?? "Request body is too large"
            } else {
                message = error.body ?? ErrorBody.reasonPhrase(for: error.status.code)
            }
            var headers = error.headers
            headers[.contentType] = nil
            headers[.contentLength] = nil
            return ServiceError.response(
                status: error.status, body: ErrorBody(statusCode: error.status.code, message: message), extraHeaders: headers)
        } catch let error as any ServiceErrorConvertible {
            let mapped = error.serviceError
            if mapped.status == .serviceUnavailable {
                context.logger.warning("storage unavailable", metadata: ["error": "\(error)"])
            }
            return ServiceError.response(status: mapped.status, body: mapped.body, extraHeaders: mapped.headers)
        } catch let error as DecodingError {
            return ServiceError.response(status: .badRequest, body: ErrorBody(statusCode: 400, message: Self.describe(error)))
        } catch let error as any HTTPResponseError {
            let status = error.status
            return ServiceError.response(status: status, body: ErrorBody(statusCode: status.code, message: ErrorBody.reasonPhrase(for: status.code)))
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return ServiceError.response(status: .internalServerError, body: ErrorBody(statusCode: 500, message: "Internal server error"))
        }
    }

    /// What a Swift type is called in JSON, with its article: clients never see Swift type names.
    static func jsonKind(_ type: Any.Type) -> String {
        let name = String(describing: type)
        if name.hasPrefix("Dictionary") || name.hasPrefix("[") && name.contains(":") { return "an object" }
        if name.hasPrefix("Array") || name.hasPrefix("[") { return "an array" }
        switch name {
        case "String", "Substring", "Character": return "a string"
        case "Bool": return "a boolean"
        case "Int", "Int8", "Int16", "Int32", "Int64", "UInt", "UInt8", "UInt16", "UInt32", "UInt64": return "an integer"
        case "Double", "Float", "Decimal": return "a number"
        default: return "an object"
        }
    }

    /// A short, client-safe description of a JSON decoding failure.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let joined = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return joined.isEmpty ? "body" : joined
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return parent == "body" ? "\(key.stringValue) is required" : "\(parent).\(key.stringValue) is required"
        case .typeMismatch(let type, let context):
            return "\(path(context)) must be \(Self.jsonKind(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context)) must be \(Self.jsonKind(type)), not null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "Request body is not valid JSON" : "\(path(context)) is invalid"
        @unknown default:
            return "Request body is invalid"
        }
    }
}
