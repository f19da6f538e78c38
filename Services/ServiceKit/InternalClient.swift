import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOFoundationCompat
import Hummingbird
import Shared

/// The one way a service calls another service's JSON endpoints (`/internal/v1/…`).
///
/// Every call carries the internal token and the caller's request id, has a timeout, and fails in
/// one way: nothing listening → 503, no answer in time → 504, a non-2xx answer → that status with
/// the other service's error body unchanged, an unreadable success → 502. All of them are
/// ``ServiceError``s, so a handler can let them through to its client.
public struct InternalClient: Sendable {
    public let transport: any UpstreamClient
    let internalToken: String
    let timeout: Duration

    /// The largest answer read from another service.
    static var answerLimit: Int { 1 << 20 }

    public init(transport: any UpstreamClient, internalToken: String, timeout: Duration) {
        self.transport = transport
        self.internalToken = internalToken
        self.timeout = timeout
    }

    /// Sends `body` as JSON to `service` and decodes its JSON answer.
    ///
    /// - Parameters:
    ///   - service: the service's name, for error messages (`identity`).
    ///   - baseURL: where it listens, e.g. `http://127.0.0.1:8081`.
    ///   - path: path and query, starting with `/`.
    ///   - requestID: the request id of the call that causes this one.
    /// - Throws: ``ServiceError`` as described on the type.
    public func call<Body: Encodable, Answer: Decodable>(
        _ method: HTTPRequest.Method = .post, service: String, baseURL: String, path: String, body: Body?, requestID: String,
        idempotent: Bool? = nil, as: Answer.Type = Answer.self
    ) async throws -> Answer {
        var headers = HTTPFields()
        headers[.streamHubInternalToken] = self.internalToken
        headers[.requestID] = requestID
        var payload: ByteBuffer?
        if let body {
            headers[.contentType] = "application/json"
            payload = ByteBuffer(bytes: try JSONEncoder().encode(body))
        }
        let request = UpstreamRequest(method: method, baseURL: baseURL, pathAndQuery: path, headers: headers, body: payload, idempotent: idempotent)
        let (status, answer) = try await Self.mapFailures(service: service) {
            let response = try await self.transport.send(request, timeout: self.timeout)
            return (response.status, try await response.collect(Self.answerLimit))
        }
        guard (200..<300).contains(status.code) else {
            throw Self.passedOn(status: status, body: answer)
        }
        do {
            return try JSONDecoder().decode(Answer.self, from: Data(buffer: answer))
        } catch let error as DecodingError {
            // Names the JSON key or kind at fault, never the data.
            throw ServiceError(
                .badGateway,
                message: "The \(service) service sent an unreadable answer (\(NestErrorMiddleware<BasicRequestContext>.describe(error)), \(answer.readableBytes) bytes)")
        } catch {
            throw ServiceError(.badGateway, message: "The \(service) service sent an unreadable answer")
        }
    }

    /// Runs a call, turning transport failures into the one mapping: refused → 503, timeout → 504.
    public static func mapFailures<T>(service: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch UpstreamFailure.timeout {
            throw ServiceError(.gatewayTimeout, message: "The \(service) service did not answer in time")
        } catch UpstreamFailure.unavailable {
            throw ServiceError(.serviceUnavailable, message: "The \(service) service is unavailable")
        } catch is NIOTooManyBytesError {
            throw ServiceError(.badGateway, message: "The \(service) service sent an answer that is too large")
        }
    }

    /// Another service's error answer, passed on unchanged (its NestJS body when it sent one).
    static func passedOn(status: HTTPResponse.Status, body: ByteBuffer) -> ServiceError {
        if let decoded = try? JSONDecoder().decode(ErrorBody.self, from: Data(buffer: body)), decoded.statusCode == status.code {
            return ServiceError(status: status, body: decoded)
        }
        return ServiceError(status, message: ErrorBody.reasonPhrase(for: status.code))
    }
}
