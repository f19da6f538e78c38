import CasbinEngine
import Foundation

// Casbin's standard Enforce scenarios through our engine, for `run-baseline.sh --extra-cmd`.
//
// Environment (set by run-baseline.sh): SCENARIOS, EXAMPLES, POLICIES, ONLY, OUT.
// Flags: --cold (drop role/index caches before every decision), --target-seconds S, --repeat N.
// Writes {"implementation", "results": [{"name", "ns_per_op_median", "first_request_result"}]}.

let environment = ProcessInfo.processInfo.environment
let arguments = CommandLine.arguments
let cold = arguments.contains("--cold")
func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}
let targetSeconds = Double(option("--target-seconds") ?? "") ?? 0.3
let repeats = Int(option("--repeat") ?? "") ?? 3
guard let scenariosPath = environment["SCENARIOS"], let examples = environment["EXAMPLES"], let out = environment["OUT"] else {
    FileHandle.standardError.write(Data("set SCENARIOS, EXAMPLES, POLICIES and OUT (see run-baseline.sh)\n".utf8))
    exit(2)
}
let policies = environment["POLICIES"]
let only = Set((environment["ONLY"] ?? "").split(separator: ",").map(String.init))

let document = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scenariosPath))) as! [String: Any]
var results: [[String: Any]] = []

func sizes17(_ generate: [String: Any]) -> [[CasbinValue]] {
    let roles = generate["roles"] as! Int
    let resources = generate["resources"] as! Int
    let users = generate["users"] as! Int
    return (0..<17).map { i in
        let user = (users / 17) * i
        let role = user % roles
        var resource = role % resources
        if i % 2 == 0 { resource = (resource + 1) % resources }
        return [.string("user-has-a-very-long-name-\(user)"), .string("data-has-a-very-long-name-\(resource)"), .string("read")]
    }
}

for scenario in document["scenarios"] as! [[String: Any]] {
    let name = scenario["name"] as! String
    if !only.isEmpty && !only.contains(name) { continue }
    let modelText = try String(contentsOfFile: examples + "/" + (scenario["model"] as! String), encoding: .utf8)
    var policyPath: String?
    if let policies, FileManager.default.fileExists(atPath: policies + "/\(name)_policy.csv") {
        policyPath = policies + "/\(name)_policy.csv"
    } else if let policy = scenario["policy"] as? String {
        policyPath = examples + "/" + policy
    }
    let loadStart = Date()
    let enforcer = try Enforcer(
        model: try CasbinModel(text: modelText, file: name),
        policySource: policyPath.map { path in { @Sendable in try String(contentsOfFile: path, encoding: .utf8) } }
    )
    for step in scenario["setup"] as? [[String: Any]] ?? [] {
        try CasbinOperations.apply(step["op"] as! String, step["args"] as? [Any] ?? [], to: enforcer)
    }
    let setupSeconds = Date().timeIntervalSince(loadStart)
    let requests: [[CasbinValue]]
    if let named = scenario["requests"] as? String, named == "rbac_sizes_17" {
        requests = sizes17(scenario["generate"] as! [String: Any])
    } else {
        requests = try (scenario["requests"] as! [[Any]]).map { try $0.map { try CasbinValue(json: $0) } }
    }
    let first = try enforcer.enforce(requests[0])
    // Calibrate the iteration count to the target time.
    var iterations = 1
    while true {
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<iterations {
            if cold { enforcer.invalidateCaches() }
            _ = try enforcer.enforce(requests[i % requests.count])
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if elapsed >= targetSeconds / 4 || iterations >= 1 << 26 {
            iterations = max(1, Int(Double(iterations) * targetSeconds / max(elapsed, 1e-9)))
            break
        }
        iterations *= 4
    }
    var runs: [Double] = []
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<iterations {
            if cold { enforcer.invalidateCaches() }
            _ = try enforcer.enforce(requests[i % requests.count])
        }
        runs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations))
    }
    let median = runs.sorted()[runs.count / 2]
    FileHandle.standardError.write(
        Data(
            "\(name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(String(format: "%12.0f", median)) ns/op  first=\(first ? "allow" : "deny")  (n=\(iterations) x\(repeats), setup \(String(format: "%.2f", setupSeconds))s)\n"
                .utf8)
    )
    results.append(["name": name, "ns_per_op_median": median, "first_request_result": first, "iterations": iterations, "setup_seconds": setupSeconds])
}

let implementation = cold ? "StreamHub Swift engine (cold caches)" : "StreamHub Swift engine"
let data = try JSONSerialization.data(
    withJSONObject: ["implementation": implementation, "results": results], options: [.prettyPrinted, .sortedKeys])
try data.write(to: URL(fileURLWithPath: out))
