import ArgumentParser
import AuthzApp
import ServiceKit
import CasbinEngine
import Foundation

/// `streamhub-authz eval --model FILE [--policy FILE] [--explain]`: decide requests offline.
///
/// Reads one JSON array per line on stdin (strings, or objects for ABAC values) and writes one
/// JSON line per request: `{"allowed":…}` (+ `"explain":[…]`), or `{"error":"…"}` for a line that
/// cannot be decided; the rest go on.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streamhub-authz eval",
        abstract: "Evaluate Casbin requests from stdin against a model and policy, one JSON line each."
    )

    @Option(name: .long, help: "Casbin model file (.conf).")
    var model: String

    @Option(name: .long, help: "Casbin policy file (.csv).")
    var policy: String?

    @Flag(name: .long, help: "Add the rule that decided each request.")
    var explain = false

    func run() throws {
        // Checked the way the service checks a model before deciding with it.
        let casbinModel: CasbinModel
        do {
            casbinModel = try AuthzConfiguration.parseModel(path: self.model)
        } catch let error as ConfigurationError {
            Self.fail(error.description)
        }
        let enforcer: Enforcer
        do {
            var source: (@Sendable () throws -> String)?
            if let path = self.policy {
                let text = try TextFile.read(path)
                source = { text }
            }
            enforcer = try Enforcer(model: casbinModel, policySource: source, policySourceName: self.policy ?? "policy")
        } catch let error as TextFile.ReadError {
            Self.fail(error.description)
        } catch {
            Self.fail("\(error)")
        }
        while let line = readLine(strippingNewline: true) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            print(Self.answer(line, enforcer: enforcer, explain: self.explain))
        }
    }

    /// A model or policy the service would refuse: its message on stderr, exit 2, nothing evaluated.
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("streamhub-authz eval: \(message)\n".utf8))
        Foundation.exit(2)
    }

    static func answer(_ line: String, enforcer: Enforcer, explain: Bool) -> String {
        func json(_ object: [String: Any]) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        }
        do {
            guard let array = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) as? [Any] else {
                return json(["error": "a request must be a JSON array"])
            }
            let request = try array.map { try CasbinValue(json: $0) }
            let decision = try enforcer.enforceEx(request)
            var object: [String: Any] = ["allowed": decision.allowed]
            if explain { object["explain"] = decision.explain }
            return json(object)
        } catch let error as CasbinError {
            return json(["error": error.description])
        } catch {
            return json(["error": "invalid JSON: \(error.localizedDescription)"])
        }
    }
}
