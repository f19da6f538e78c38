import Foundation

/// A value inside a matcher: what request fields, policy fields, literals and functions produce.
///
/// Numbers are doubles, as in Casbin's Go expression engine (govaluate), so `18` in a request
/// object and `18` in a rule compare equal.
public indirect enum CasbinValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    /// An ABAC attribute object (`r.obj.Owner`).
    case object([String: CasbinValue])
    case list([CasbinValue])
    case null

    public var description: String {
        switch self {
        case .string(let s): s
        case .number(let n): n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .bool(let b): String(b)
        case .object(let o): "{" + o.keys.sorted().map { "\($0): \(o[$0]!)" }.joined(separator: ", ") + "}"
        case .list(let l): "[" + l.map(\.description).joined(separator: ", ") + "]"
        case .null: "null"
        }
    }

    /// Builds a value from decoded JSON (`JSONSerialization` output).
    public init(json: Any) throws {
        if type(of: json) == Bool.self, let b = json as? Bool {
            self = .bool(b)
            return
        }
        switch json {
        case let s as String: self = .string(s)
        case let i as Int: self = .number(Double(i))
        case let d as Double: self = .number(d)
        case let n as NSNumber:
            // NSNumber may carry a JSON boolean; its type code tells.
            if String(cString: n.objCType) == "c" {
                self = .bool(n.boolValue)
            } else {
                self = .number(n.doubleValue)
            }
        case let o as [String: Any]: self = .object(try o.mapValues { try CasbinValue(json: $0) })
        case let a as [Any]: self = .list(try a.map { try CasbinValue(json: $0) })
        case is NSNull: self = .null
        default: throw CasbinError.invalidRequest("unsupported request value \(json)")
        }
    }
}

/// Everything that can go wrong loading or evaluating a model or policy.
public enum CasbinError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A model file problem: the file (or "model"), line and reason.
    case model(file: String, line: Int, reason: String)
    /// A policy file problem: the file, line and reason.
    case policy(file: String, line: Int, reason: String)
    /// A matcher that does not parse.
    case matcher(String)
    /// Evaluation failed (type error, bad function argument, depth limit).
    case evaluation(String)
    /// The request does not fit the model.
    case invalidRequest(String)
    /// A management operation was given bad arguments.
    case invalidOperation(String)

    public var description: String {
        switch self {
        case .model(let file, let line, let reason): "\(file):\(line): \(reason)"
        case .policy(let file, let line, let reason): "\(file):\(line): \(reason)"
        case .matcher(let reason): "matcher: \(reason)"
        case .evaluation(let reason): "evaluation: \(reason)"
        case .invalidRequest(let reason): "invalid request: \(reason)"
        case .invalidOperation(let reason): "invalid operation: \(reason)"
        }
    }
}
