import Foundation
import Hummingbird
import Shared

/// One thing a service needs before it can serve: its database, an upstream.
public struct ReadinessCheck: Sendable {
    public var name: String
    /// nil when ready, else what is missing.
    public var problem: @Sendable () async -> String?

    public init(name: String, problem: @escaping @Sendable () async -> String?) {
        self.name = name
        self.problem = problem
    }

    /// Runs `body`, answering "no answer within …" when it takes longer than `timeout`.
    public static func within(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> String?) async throws -> String? {
        try await withThrowingTaskGroup(of: String??.self) { group in
            group.addTask { .some(try await body()) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return .none
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let answer = first else {
                return "no answer within \(timeout.components.seconds) s"
            }
            return answer
        }
    }
}

/// The body of a ready answer: `{"ready":true,"checks":{"database":"ok"}}`.
public struct ReadinessStatus: Codable, Sendable, Equatable {
    public var ready: Bool
    public var checks: [String: String]
}

extension Router {
    /// `GET /internal/v1/ready`: 200 when every check passes, else 503 whose message names what is
    /// missing. Unlike `/internal/v1/health` (the process is up), this says the service can serve.
    public func addReadinessRoute(_ checks: [ReadinessCheck]) {
        self.get(RouterPath(RouteCatalog.internalPrefix + "/ready")) { _, _ -> Response in
            let results = await withTaskGroup(of: (String, String?).self) { group in
                for check in checks {
                    group.addTask { (check.name, await check.problem()) }
                }
                var results: [(String, String?)] = []
                for await result in group { results.append(result) }
                return results.sorted { $0.0 < $1.0 }
            }
            let problems = results.compactMap { name, problem in problem.map { "\(name): \($0)" } }
            guard problems.isEmpty else {
                throw ServiceError(.serviceUnavailable, message: "not ready: " + problems.joined(separator: "; "))
            }
            return try JSONResponse.make(
                ReadinessStatus(ready: true, checks: Dictionary(uniqueKeysWithValues: results.map { ($0.0, "ok") })))
        }
    }
}

/// Readiness of another service, asked over its own `/internal/v1/ready`.
public enum UpstreamReadiness {
    public static func check(_ name: String, baseURL: String, client: InternalClient) -> ReadinessCheck {
        ReadinessCheck(name: name) {
            do {
                let _: ReadinessStatus = try await client.call(
                    .get, service: name, baseURL: baseURL, path: RouteCatalog.internalPrefix + "/ready", body: Optional<ReadinessStatus>.none,
                    requestID: RequestIDs.resolve(nil))
                return nil
            } catch let error as ServiceError {
                return error.body.message
            } catch {
                return "\(error)"
            }
        }
    }
}
