import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Shared

/// A first answer kept for an `Idempotency-Key`.
public struct StoredAnswer: Sendable, Equatable {
    public var status: Int
    public var contentType: String?
    public var body: String

    public init(status: Int, contentType: String?, body: String) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// What a key already stands for when a request carrying it arrives.
public enum IdempotencyClaim: Sendable, Equatable {
    /// First use (or its earlier run failed and was forgotten): run it.
    case fresh
    /// Answered before with the same request: replay that answer.
    case answered(StoredAnswer)
    /// The key was used with another request (another body, method or path).
    case otherRequest
    /// A request with this key is still running (`abandoned`: its lease ran out — the process
    /// running it died or lost its database — so its outcome is unknown).
    case running(abandoned: Bool)
}

/// A running key's lease: the process running the request renews it every ``renewEvery``; a key
/// whose lease ran out (``length`` without a renewal) is abandoned.
public enum IdempotencyLease {
    /// Milliseconds a claim or a renewal holds the key.
    public static let length: Int64 = 10_000
    /// How often the running request's process renews its lease.
    public static let renewEvery: Duration = .seconds(3)
}

/// Where a service keeps its idempotency keys (its own database, so every replica agrees).
public protocol IdempotencyStore: Sendable {
    /// Claims `key` of `scope` for a request whose digest is `request`, atomically.
    func claim(scope: String, key: String, request: String, at now: Int64) async throws -> IdempotencyClaim
    /// Keeps the answer of a claimed key.
    func complete(scope: String, key: String, answer: StoredAnswer, at now: Int64) async throws
    /// Forgets a claimed key (its run failed: a retry runs again).
    func release(scope: String, key: String) async throws
    /// Extends a running key's lease to `until` (milliseconds).
    func renew(scope: String, key: String, until: Int64) async throws
}

/// `Idempotency-Key` on every non-idempotent route (POST, PATCH) of a service, as the contract
/// decides: at most 255 printable ASCII characters; scoped to the caller (its principal, or its
/// address when anonymous); kept 24 h. A retry with the same key and request returns the first
/// answer (status and body) with `Idempotency-Replayed: true`; the same key with another request
/// is a 422; a retry while the first still runs is a 409. Answers of 5xx and thrown errors are not
/// kept: the write did not happen (or is unknown), and a retry runs again.
///
/// While a request runs, its process renews the key's lease (``IdempotencyLease``). A request whose
/// process died mid-way stops renewing: once the lease has run out (10 s) a retry is told the first
/// outcome is unknown (409) rather than run again, so a retry never makes a second app, token,
/// stream or invitation. Forgetting a failed run's key or keeping an answer is retried in the
/// background for 30 s when the database refuses it (a retry then runs again or is replayed, rather
/// than being told "unknown").
public struct IdempotencyMiddleware<Context: ServiceRequestContextProtocol>: RouterMiddleware {
    public static var header: HTTPField.Name { HTTPField.Name("Idempotency-Key")! }
    public static var replayed: HTTPField.Name { HTTPField.Name("Idempotency-Replayed")! }
    static var bodyLimit: Int { 1 << 20 }

    let store: any IdempotencyStore
    let timeSource: any TimeSource
    /// False while the store cannot be used (identity's database not migrated yet: break-glass
    /// logins must not depend on it); requests then go on without idempotency.
    let isAvailable: @Sendable () -> Bool

    public init(store: any IdempotencyStore, timeSource: any TimeSource = SystemTimeSource(), isAvailable: @escaping @Sendable () -> Bool = { true }) {
        self.store = store
        self.timeSource = timeSource
        self.isAvailable = isAvailable
    }

    /// A valid key: 1 to 255 printable ASCII characters (space to tilde).
    public static func isValid(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= 255 && key.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post || request.method == .patch, let key = request.headers[Self.header], self.isAvailable() else {
            return try await next(request, context)
        }
        guard request.headers[values: Self.header].count == 1, Self.isValid(key) else {
            throw ServiceError.badRequest("Idempotency-Key must be 1 to 255 printable ASCII characters, given once")
        }
        var request = request
        let body = try await request.collectBody(upTo: Self.bodyLimit)
        var digest = SHA256()
        digest.update(data: Data("\(request.method.rawValue) \(request.uri.path)?\(request.uri.query ?? "")\n".utf8))
        body.withUnsafeReadableBytes { digest.update(bufferPointer: $0) }
        let requestDigest = digest.finalize().map { String(format: "%02x", $0) }.joined()
        let scope = context.principal.isAnonymous ? "ip:" + (context.forwardedClientIP ?? context.clientIP ?? "unknown") : context.principal.subject
        let keyDigest = SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
        let now = Timestamp.millis(self.timeSource.now())
        switch try await self.store.claim(scope: scope, key: keyDigest, request: requestDigest, at: now) {
        case .answered(let answer):
            var headers: HTTPFields = [Self.replayed: "true"]
            if let contentType = answer.contentType { headers[.contentType] = contentType }
            return Response(
                status: HTTPResponse.Status(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        case .otherRequest:
            throw ServiceError(.unprocessableContent, message: "This Idempotency-Key was used with another request")
        case .running(let abandoned):
            throw ServiceError(
                .conflict,
                message: abandoned
                    ? "The first request with this Idempotency-Key did not finish; its outcome is unknown: check, then use a new key"
                    : "A request with this Idempotency-Key is still running; retry shortly")
        case .fresh:
            break
        }
        let store = self.store
        let timeSource = self.timeSource
        let renewal = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: IdempotencyLease.renewEvery)
                try? await store.renew(scope: scope, key: keyDigest, until: Timestamp.millis(timeSource.now()) + IdempotencyLease.length)
            }
        }
        defer { renewal.cancel() }
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            renewal.cancel()
            await Self.persist { try await store.release(scope: scope, key: keyDigest) }
            throw error
        }
        guard response.status.code < 500 else {
            renewal.cancel()
            await Self.persist { try await store.release(scope: scope, key: keyDigest) }
            return response
        }
        let collected = CollectedBody()
        let original = response.body
        try await original.write(CollectingWriter(into: collected))
        let answer = StoredAnswer(status: response.status.code, contentType: response.headers[.contentType], body: String(buffer: collected.buffer))
        renewal.cancel()
        await Self.persist { try await store.complete(scope: scope, key: keyDigest, answer: answer, at: Timestamp.millis(timeSource.now())) }
        var kept = response
        kept.body = .init(byteBuffer: collected.buffer)
        return kept
    }
}

extension IdempotencyMiddleware {
    /// Runs `write` once now; when the database refuses it, again in the background every second
    /// for 30 s (the answer does not wait for the database).
    static func persist(_ write: @escaping @Sendable () async throws -> Void) async {
        do {
            try await write()
        } catch {
            Task {
                for _ in 0..<30 {
                    try await Task.sleep(for: .seconds(1))
                    if (try? await write()) != nil { return }
                }
            }
        }
    }
}

/// Where ``CollectingWriter`` puts a response body (one request's, on one task).
final class CollectedBody: @unchecked Sendable {
    var buffer = ByteBuffer()
}

/// Collects a response body written by Hummingbird's writer interface.
struct CollectingWriter: ResponseBodyWriter {
    let into: CollectedBody

    mutating func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        self.into.buffer.writeBuffer(&buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
