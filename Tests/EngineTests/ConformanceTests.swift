import CasbinEngine
import Foundation
import Testing

/// Runs Casbin's conformance corpus: 953 cases answered by Go Casbin 2.60.0.
///
/// The corpus and its model/policy files are copied from the Casbin anchor kit (Casbin's own
/// example data, Apache-2.0, plus generated models); see `Casbin/ORIGIN.md`.
@Suite("Casbin conformance")
struct ConformanceTests {
    struct Case: Decodable {
        var id: String
        var model: String
        var policy: String?
        var request: [JSONValue]
        var expected: Bool
        var category: String
        var setup: [Operation]?
        var enforce_context: [String: String]?
        var filtered_adapter: Bool?
        var explain: [String]?
    }

    struct Operation: Decodable {
        var op: String
        var args: [JSONValue]?
    }

    static let root = Bundle.module.resourceURL!.appendingPathComponent("Casbin")

    static func loadCases(_ file: String) throws -> [Case] {
        let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
    }

    /// Runs one case; returns nil when Go's answer (and explanation) is reproduced, else why not.
    static func run(_ testCase: Case, checkExplain: Bool = true) -> String? {
        do {
            let examples = root.appendingPathComponent("examples")
            let modelText = try String(contentsOf: examples.appendingPathComponent(testCase.model), encoding: .utf8)
            let model = try CasbinModel(text: modelText, file: testCase.model)
            let policyPath = PolicyPath(testCase.policy.map { examples.appendingPathComponent($0).path })
            let enforcer = try Enforcer(model: model, policySource: policyPath.loader, policySourceName: testCase.policy ?? "empty")
            for operation in testCase.setup ?? [] {
                // Casbin's tests ignore errors from setup operations; so do we.
                _ = try? CasbinOperations.apply(operation.op, (operation.args ?? []).map(\.any), to: enforcer) { path in
                    policyPath.set(examples.appendingPathComponent(path).path)
                }
            }
            var context = EnforceContext.standard
            if let c = testCase.enforce_context {
                context = EnforceContext(rtype: c["rtype"] ?? "r", ptype: c["ptype"] ?? "p", etype: c["etype"] ?? "e", mtype: c["mtype"] ?? "m")
            }
            let request = try testCase.request.map { try CasbinValue(json: $0.any) }
            let decision: Decision
            do {
                decision = try enforcer.enforceEx(request, context: context)
            } catch {
                // Go's Enforce returns false with the error.
                decision = Decision(allowed: false, explain: [])
            }
            if decision.allowed != testCase.expected {
                return "\(testCase.id): expected \(testCase.expected), got \(decision.allowed)"
            }
            if checkExplain, let expected = testCase.explain, decision.explain != expected {
                return "\(testCase.id): explain expected \(expected), got \(decision.explain)"
            }
            return nil
        } catch {
            return "\(testCase.id): error \(error)"
        }
    }

    @Test("all 953 Go Casbin answers and explanations are reproduced")
    func corpus() throws {
        let cases = try Self.loadCases("conformance.jsonl")
        #expect(cases.count == 953)
        let failures = cases.compactMap { Self.run($0) }
        if !failures.isEmpty {
            let listing = Array(failures.prefix(80)).joined(separator: "\n")
            Issue.record("\(failures.count) of \(cases.count) cases differ from Go Casbin:\n\(listing)")
        }
    }

    @Test("where pycasbin differs from Go, we answer like Go")
    func pycasbinDifferences() throws {
        let all = Dictionary(try Self.loadCases("conformance.jsonl").map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let text = try String(contentsOf: Self.root.appendingPathComponent("conformance-pycasbin-diff.jsonl"), encoding: .utf8)
        var checked = 0
        for line in text.split(separator: "\n") {
            struct Diff: Decodable { var id: String }
            let id = try JSONDecoder().decode(Diff.self, from: Data(line.utf8)).id
            guard let testCase = all[id] else { continue }
            checked += 1
            #expect(Self.run(testCase) == nil)
        }
        #expect(checked > 0)
    }
}

/// A mutable policy file path shared by the loader and `SetAdapter`.
final class PolicyPath: @unchecked Sendable {
    let lock = NSLock()
    var path: String?

    init(_ path: String?) { self.path = path }

    func set(_ path: String) { self.lock.withLock { self.path = path } }

    var loader: @Sendable () throws -> String {
        { [self] in
            guard let path = self.lock.withLock({ self.path }) else { return "" }
            return try String(contentsOfFile: path, encoding: .utf8)
        }
    }
}

/// Any JSON value, decodable.
enum JSONValue: Decodable {
    case string(String), number(Double), int(Int), bool(Bool), object([String: JSONValue]), array([JSONValue]), null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int.self) {
            self = .int(i)
        } else if let d = try? container.decode(Double.self) {
            self = .number(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    var any: Any {
        switch self {
        case .string(let s): s
        case .number(let d): d
        case .int(let i): i
        case .bool(let b): b
        case .object(let o): o.mapValues(\.any)
        case .array(let a): a.map(\.any)
        case .null: NSNull()
        }
    }
}
