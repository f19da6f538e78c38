// The Casbin engine on operator-controlled text: a whole model, a matcher expression inside a
// standard model, or a policy CSV. Nothing may trap or hang; policy CSV lines read back equal
// after formatting.
import CasbinEngine
import Foundation

let modelTemplate = """
    [request_definition]
    r = sub, dom, obj, act

    [policy_definition]
    p = sub, dom, obj, act

    [role_definition]
    g = _, _, _

    [policy_effect]
    e = some(where (p.eft == allow))

    [matchers]
    m = %@
    """

let policy = """
    p, role:admin, t1, /apps/*, read
    p, alice, t1, data1, (read)|(write)
    g, alice, role:admin, t1
    """

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCasbin(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    switch data[0] % 3 {
    case 0:
        // A whole model, enforced once.
        if let model = try? CasbinModel(text: text), let enforcer = try? Enforcer(model: model) {
            _ = try? enforcer.enforce([.string("alice"), .string("t1"), .string("data1"), .string("read")])
        }
    case 1:
        // A matcher line, with a policy and a few requests.
        guard !text.contains("\n"), !text.contains("\r") else { return 0 }
        let modelText = modelTemplate.replacingOccurrences(of: "%@", with: text)
        guard let model = try? CasbinModel(text: modelText), let enforcer = try? Enforcer(model: model, policySource: { policy }) else {
            return 0
        }
        _ = try? enforcer.loadPolicy()
        for request in [["alice", "t1", "data1", "read"], ["bob", "t2", "/apps/x", "write"], ["", "", "", ""]] {
            _ = try? enforcer.enforce(request.map { .string($0) })
        }
    default:
        // Policy CSV: whatever parses formats back to the same line.
        guard let lines = try? PolicyCSV.parse(text) else { return 0 }
        for line in lines {
            let formatted = PolicyCSV.format(type: line.type, values: line.values)
            guard let again = try? PolicyCSV.parse(formatted), again.count == 1, again[0].type == line.type, again[0].values == line.values else {
                fatalError("policy line \(line) formatted as \(formatted.debugDescription) does not read back")
            }
        }
    }
    return 0
}
