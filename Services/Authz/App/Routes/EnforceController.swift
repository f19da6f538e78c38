import CasbinEngine
import Foundation
import Hummingbird
import Logging
import ServiceKit
import Shared

/// `POST /internal/v1/enforce` and `/internal/v1/enforce/batch`, for every service holding the
/// internal token. Answers `{allowed, mode, enforced}` per request under `STREAMHUB_AUTHZ_ENFORCE`,
/// which authz alone owns: `off` evaluates nothing (allowed); `log` evaluates, logs and counts
/// would-be denials (not enforced); `on` evaluates, logs and counts denials and marks them enforced.
/// Callers act on `allowed` and `enforced` and never log or count a denial themselves.
public struct EnforceController: Sendable {
    let engine: PolicyEngine
    let mode: EnforcementMode

    let allowedCounter: MetricCounter
    let deniedCounter: MetricCounter
    let denialCounter: MetricCounter

    public init(engine: PolicyEngine, mode: EnforcementMode, metrics: ServiceMetrics) {
        self.engine = engine
        self.mode = mode
        self.allowedCounter = metrics.counter(.authzDecisions, labels: [("allowed", "true")])
        self.deniedCounter = metrics.counter(.authzDecisions, labels: [("allowed", "false")])
        self.denialCounter = metrics.counter(.authzDenials, labels: [("mode", mode.rawValue)])
    }

    static var maxBatch: Int { 10_000 }

    static var singleLimit: Int { 64 * 1024 }
    static var batchLimit: Int { 16 << 20 }

    /// Both routes, answered on the event loop (see ``EventLoopRoute``; also registered on the
    /// router for requests pipelined behind a router request): a decision is synchronous and
    /// short, so the hot path skips the task and the body stream per request.
    public var routes: [EventLoopRoute] {
        [
            EventLoopRoute(path: "/internal/v1/enforce", bodyLimit: Self.singleLimit) { request in
                try self.single(request.body, logger: request.logger)
            },
            EventLoopRoute(path: "/internal/v1/enforce/batch", bodyLimit: Self.batchLimit) { request in
                try self.batch(request.body, logger: request.logger)
            },
        ]
    }

    /// One decision: the JSON body of `POST /internal/v1/enforce`.
    func single(_ body: ByteBuffer, logger: @autoclosure () -> Logger) throws -> ByteBuffer {
        let request = try EnforceBodyParser.parseRequest(body)
        try Self.validate(request)
        return Self.encode(self.decide([request], explain: request.explain ?? false, logger: logger())[0])
    }

    /// Many decisions: the JSON body of `POST /internal/v1/enforce/batch`.
    func batch(_ body: ByteBuffer, logger: @autoclosure () -> Logger) throws -> ByteBuffer {
        let parsed = try EnforceBodyParser.parseBatch(body)
        guard parsed.requests.count <= Self.maxBatch else {
            throw ServiceError.badRequest("at most \(Self.maxBatch) requests per batch")
        }
        for item in parsed.requests { try Self.validate(item) }
        let results = self.decide(parsed.requests, explain: parsed.explain, logger: logger())
        var buffer = ByteBuffer()
        buffer.reserveCapacity(32 + results.count * 48)
        buffer.writeString(#"{"mode":""# + self.mode.rawValue + #"","results":["#)
        for (index, result) in results.enumerated() {
            if index > 0 { buffer.writeString(",") }
            var encoded = Self.encode(result)
            buffer.writeBuffer(&encoded)
        }
        buffer.writeString("]}")
        return buffer
    }

    /// `{"allowed":…,"mode":…,"enforced":…[,"explain":[…]]}`, written directly: decisions are the
    /// hot path and the shape is fixed.
    static func encode(_ decision: EnforceDecision) -> ByteBuffer {
        // The common answers are four fixed strings: no formatting per decision.
        if decision.explain == nil, let fixed = Self.fixed(decision) { return fixed }
        if decision.explain == nil {
            return ByteBuffer(
                string: #"{"allowed":"# + (decision.allowed ? "true" : "false") + #","mode":""# + decision.mode + #"","enforced":"#
                    + (decision.enforced ? "true" : "false") + "}")
        }
        var fields: [(String, OrderedJSON.Value)] = [
            ("allowed", .bool(decision.allowed)), ("mode", .string(decision.mode)), ("enforced", .bool(decision.enforced)),
        ]
        guard let explain = decision.explain else { return OrderedJSON.object(fields) }
        var buffer = OrderedJSON.object(fields)
        fields.removeAll()
        buffer.moveWriterIndex(to: buffer.writerIndex - 1)
        buffer.writeString(#","explain":"#)
        var list = OrderedJSON.array(explain)
        buffer.writeBuffer(&list)
        buffer.writeString("}")
        return buffer
    }

    static func fixed(_ decision: EnforceDecision) -> ByteBuffer? {
        switch (decision.allowed, decision.mode, decision.enforced) {
        case (true, "on", true): FixedDecisions.allowedOn
        case (false, "on", true): FixedDecisions.deniedOn
        case (true, "log", false): FixedDecisions.allowedLog
        case (false, "log", false): FixedDecisions.deniedLog
        default: nil
        }
    }

    static func validate(_ request: EnforceRequest) throws {
        for (name, value) in [("subject", request.subject), ("resource", request.resource), ("action", request.action)] where value.isEmpty {
            throw ServiceError.badRequest("\(name) must not be empty")
        }
        for value in [request.subject, request.tenant, request.resource, request.action] where value.utf8.count > 512 {
            throw ServiceError.badRequest("values are limited to 512 bytes")
        }
    }

    func decide(_ requests: [EnforceRequest], explain: Bool, logger: @autoclosure () -> Logger) -> [EnforceDecision] {
        guard self.mode != .off else {
            return requests.map { _ in EnforceDecision(allowed: true, mode: "off", enforced: false) }
        }
        let outcomes = self.engine.decide(
            batch: requests.map { [.string($0.subject), .string($0.tenant), .string($0.resource), .string($0.action)] })
        return zip(requests, outcomes).map { request, outcome in
            let decision: Decision
            switch outcome {
            case .success(let d): decision = d
            case .failure(let error):
                logger().error("policy evaluation failed", metadata: ["error": "\(error)"])
                decision = Decision(allowed: false, explain: [])
            }
            if !decision.allowed {
                // The one place a denial is logged and counted (the caller acts on the answer only).
                self.denialCounter.increment()
                logger().notice(
                    self.mode == .on ? "denied" : "would deny",
                    metadata: [
                        "subject": "\(request.subject)", "tenant": "\(request.tenant)", "permission": "\(request.resource):\(request.action)",
                        "mode": "\(self.mode.rawValue)",
                    ]
                )
            }
            (decision.allowed ? self.allowedCounter : self.deniedCounter).increment()
            return EnforceDecision(
                allowed: decision.allowed, mode: self.mode.rawValue, enforced: self.mode == .on, explain: explain ? decision.explain : nil
            )
        }
    }
}

/// Pre-encoded decisions (generic types cannot hold static stored properties).
enum FixedDecisions {
    static let allowedOn = ByteBuffer(string: #"{"allowed":true,"mode":"on","enforced":true}"#)
    static let deniedOn = ByteBuffer(string: #"{"allowed":false,"mode":"on","enforced":true}"#)
    static let allowedLog = ByteBuffer(string: #"{"allowed":true,"mode":"log","enforced":false}"#)
    static let deniedLog = ByteBuffer(string: #"{"allowed":false,"mode":"log","enforced":false}"#)
}
