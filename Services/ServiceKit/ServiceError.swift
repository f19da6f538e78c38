import Foundation
import HTTPTypes
import Hummingbird
import Shared

/// An error a client sees, written as NestJS's default error body.
///
/// Every service throws this (or a Hummingbird `HTTPError`, which ``NestErrorMiddleware``
/// rewrites into the same shape).
public struct ServiceError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var body: ErrorBody
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, message: String, retryAfterSeconds: Int? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.body = ErrorBody(statusCode: status.code, message: message, retryAfterSeconds: retryAfterSeconds)
        self.headers = headers
    }

    public init(status: HTTPResponse.Status, body: ErrorBody, headers: HTTPFields = [:]) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    public var description: String { "\(self.status.code) \(self.body.message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Self.response(status: self.status, body: self.body, extraHeaders: self.headers)
    }

    /// Builds the JSON response for an error body.
    public static func response(status: HTTPResponse.Status, body: ErrorBody, extraHeaders: HTTPFields = [:]) -> Response {
        var headers = extraHeaders
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: OrderedJSON.encode(body)))
    }

    public static func badRequest(_ message: String) -> ServiceError { ServiceError(.badRequest, message: message) }
    public static func notFound(_ message: String) -> ServiceError { ServiceError(.notFound, message: message) }
    public static let unauthorized = ServiceError(status: .unauthorized, body: .unauthorized)
    public static let invalidApiToken = ServiceError(status: .unauthorized, body: .invalidApiToken)
}

/// An error of a lower layer (storage) that knows the client-facing error it stands for;
/// ``NestErrorMiddleware`` answers with it instead of a 500.
public protocol ServiceErrorConvertible: Error {
    var serviceError: ServiceError { get }
}
