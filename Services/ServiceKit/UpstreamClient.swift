import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Shared

/// A request one service sends to another (the gateway's forwarding, internal calls).
public struct UpstreamRequest: Sendable {
    public var method: HTTPRequest.Method
    /// Base URL of the service, e.g. `http://127.0.0.1:8083`.
    public var baseURL: String
    /// Path and query, starting with `/`.
    public var pathAndQuery: String
    public var headers: HTTPFields
    public var body: ByteBuffer?
    /// Whether the call may be sent again to another replica when it cannot reach the first
    /// (``ReplicatedUpstream``): GET, HEAD and OPTIONS by default; internal reads say so themselves.
    public var idempotent: Bool
    /// Whether the answer may be large and must stream to the caller (media files through the
    /// gateway) instead of being collected whole before the call returns.
    public var streamsAnswer: Bool

    public init(
        method: HTTPRequest.Method, baseURL: String, pathAndQuery: String, headers: HTTPFields, body: ByteBuffer?, idempotent: Bool? = nil,
        streamsAnswer: Bool = false
    ) {
        self.method = method
        self.baseURL = baseURL
        self.pathAndQuery = pathAndQuery
        self.headers = headers
        self.body = body
        self.idempotent = idempotent ?? (method == .get || method == .head || method == .options)
        self.streamsAnswer = streamsAnswer
    }
}

/// An upstream's answer; the body streams.
public struct UpstreamResponse: Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var body: ResponseBody
    /// Reads the whole body, at most `limit` bytes.
    public var collect: @Sendable (_ limit: Int) async throws -> ByteBuffer

    public init(
        status: HTTPResponse.Status, headers: HTTPFields, body: ResponseBody, collect: @escaping @Sendable (_ limit: Int) async throws -> ByteBuffer
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.collect = collect
    }
}

/// Why a call to another service failed.
public enum UpstreamFailure: Error, Sendable {
    /// Nothing listening, connection reset: 503.
    case unavailable(String)
    /// No answer within the timeout: 504.
    case timeout

    /// How the reason of an ``unavailable(_:)`` starts when the request never left (no connection).
    public static let notSentPrefix = "not sent: "
}

/// A process's only way to reach other services (one pool per process; tests inject fakes).
public protocol UpstreamClient: Sendable {
    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse
}

/// Keep-alive pooled HTTP/1.1 client. Calls to plain-`http` upstreams whose answers are collected
/// go over ``PooledHTTP1Client``'s connections; answers that stream (``UpstreamRequest/streamsAnswer``)
/// and anything else go through AsyncHTTPClient. Runs as a service so it shuts down cleanly.
public final class HTTPUpstreamClient: UpstreamClient, Service {
    let client: HTTPClient
    let pooled: PooledHTTP1Client

    public init(connectTimeout: Duration = .seconds(2)) {
        var configuration = HTTPClient.Configuration()
        // Fail fast when a service is down instead of retrying the connect until the deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.timeout.connect = .milliseconds(connectTimeout.components.seconds * 1000 + connectTimeout.components.attoseconds / 1_000_000_000_000_000)
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.pooled = PooledHTTP1Client(group: MultiThreadedEventLoopGroup.singleton, connectTimeout: TimeAmount(connectTimeout))
    }

    public func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        if !request.streamsAnswer, let target = self.pooled.target(request.baseURL) {
            return try await self.pooled.send(request, to: target, timeout: timeout)
        }
        var outgoing = HTTPClientRequest(url: request.baseURL + request.pathAndQuery)
        outgoing.method = NIOHTTP1.HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers {
            outgoing.headers.add(name: field.name.canonicalName, value: field.value)
        }
        if let body = request.body {
            outgoing.body = .bytes(body)
        }
        let response: HTTPClientResponse
        do {
            response = try await self.client.execute(
                outgoing, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw UpstreamFailure.timeout
        } catch {
            throw UpstreamFailure.unavailable((Self.neverConnected(error) ? UpstreamFailure.notSentPrefix : "") + String(describing: error))
        }
        var headers = HTTPFields()
        for (name, value) in response.headers {
            if let fieldName = HTTPField.Name(name) {
                headers.append(HTTPField(name: fieldName, value: value))
            }
        }
        let body = response.body
        return UpstreamResponse(
            status: HTTPResponse.Status(code: Int(response.status.code)),
            headers: headers,
            body: ResponseBody(asyncSequence: body),
            collect: { limit in
                do {
                    return try await body.collect(upTo: limit)
                } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
                    throw UpstreamFailure.timeout
                } catch let error as NIOTooManyBytesError {
                    throw error
                } catch {
                    throw UpstreamFailure.unavailable(String(describing: error))
                }
            }
        )
    }

    public func run() async throws {
        try? await gracefulShutdown()
        self.pooled.shutdown()
        try await self.client.shutdown()
    }

    /// Whether the call failed before a connection existed (refused, unreachable, connect timeout):
    /// the request was never sent, so sending it elsewhere is safe whatever its method.
    static func neverConnected(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let error = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) { return true }
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        return false
    }
}
