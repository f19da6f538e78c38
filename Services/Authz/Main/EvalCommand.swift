import ArgumentParser
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
        let modelText: String
        do {
            modelText = try String(contentsOfFile: self.model, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read \(self.model): \(error.localizedDescription)")
        }
        let enforcer: Enforcer
        do {
            let casbinModel = try CasbinModel(text: modelText, file: self.model)
            var source: (@Sendable () throws -> String)?
            if let path = self.policy {
                source = { try String(contentsOfFile: path, encoding: .utf8) }
            }
            enforcer = try Enforcer(model: casbinModel, policySource: source, policySourceName: self.policy ?? "policy")
        } catch let error as CasbinError {
            throw ValidationError("\(error)")
        } catch {
            throw ValidationError("cannot read \(self.policy ?? ""): \(error.localizedDescription)")
        }
        while let line = readLine(strippingNewline: true) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            print(Self.answer(line, enforcer: enforcer, explain: self.explain))
        }
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
