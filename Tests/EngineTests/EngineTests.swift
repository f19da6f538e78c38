import CasbinEngine
import Foundation
import Testing

@Suite("Engine errors and limits")
struct EngineErrorTests {
    static let rbac = """
        [request_definition]
        r = sub, obj, act

        [policy_definition]
        p = sub, obj, act

        [role_definition]
        g = _, _

        [policy_effect]
        e = some(where (p.eft == allow))

        [matchers]
        m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
        """

    @Test("bad models name the file, the line and the reason")
    func badModels() {
        #expect(throws: CasbinError.model(file: "m.conf", line: 1, reason: "unterminated section header [request_definition")) {
            try CasbinModel(text: "[request_definition\nr = sub", file: "m.conf")
        }
        #expect(throws: CasbinError.self) { try CasbinModel(text: "r = sub", file: "m.conf") }
        do {
            _ = try CasbinModel(text: Self.rbac.replacingOccurrences(of: "some(where (p.eft == allow))", with: "maybe()"), file: "x.conf")
            Issue.record("accepted an unknown effect")
        } catch let error as CasbinError {
            #expect(error.description == "x.conf:11: unsupported policy effect maybe()")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("bad policies name the line; a rule of the wrong size fails the decision, not the process")
    func badPolicies() throws {
        let model = try CasbinModel(text: Self.rbac)
        #expect(throws: CasbinError.policy(file: "p.csv", line: 2, reason: "unterminated quoted field")) {
            try Enforcer(model: model, policySource: { "p, alice, data1, read\np, \"bob, data2, read\n" }, policySourceName: "p.csv")
        }
        #expect(throws: CasbinError.policy(file: "p.csv", line: 1, reason: "policy type p9 is not defined in the model")) {
            try Enforcer(model: model, policySource: { "p9, a, b\n" }, policySourceName: "p.csv")
        }
        let enforcer = try Enforcer(model: model, policySource: { "p, alice, data1\n" })
        #expect(throws: CasbinError.self) { try enforcer.enforce([.string("alice"), .string("data1"), .string("read")]) }
        #expect(throws: CasbinError.self) { try enforcer.enforce([.string("alice")]) }
    }

    @Test("quoted CSV fields keep their commas")
    func quotedFields() throws {
        let lines = try PolicyCSV.parse(#"p, "keyMatch(r.obj, '/a/*')", "x ""y""", z"#)
        #expect(lines == [PolicyCSV.Line(type: "p", values: ["keyMatch(r.obj, '/a/*')", #"x "y""#, "z"], lineNumber: 1)])
    }

    @Test("matchers nested beyond the limit are refused, not a stack overflow")
    func depthLimit() throws {
        let deep = String(repeating: "(", count: 5000) + "r.sub == p.sub" + String(repeating: ")", count: 5000)
        let model = try CasbinModel(text: Self.rbac.replacingOccurrences(of: "g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act", with: deep))
        let enforcer = try Enforcer(model: model, policySource: { "p, a, b, c" })
        #expect(throws: CasbinError.self) { try enforcer.enforce([.string("a"), .string("b"), .string("c")]) }
    }

    @Test("roles are transitive to 10 links and no further")
    func roleDepth() throws {
        let chain = (0..<11).map { "g, u\($0), u\($0 + 1)" }.joined(separator: "\n")
        let enforcer = try Enforcer(model: try CasbinModel(text: Self.rbac), policySource: { "p, u10, d, r\np, u11, d, r\n" + chain })
        #expect(try enforcer.enforce([.string("u0"), .string("d"), .string("r")]))
        #expect(try enforcer.enforceEx([.string("u0"), .string("d"), .string("r")]).explain == ["u10", "d", "r"])
        #expect(try enforcer.enforce([.string("u1"), .string("d"), .string("r")]))
        let cycle = try Enforcer(model: try CasbinModel(text: Self.rbac), policySource: { "p, x, d, r\ng, a, b\ng, b, a" })
        #expect(try cycle.enforce([.string("a"), .string("d"), .string("r")]) == false)
    }

    @Test("ABAC values and eval() rules")
    func abac() throws {
        let model = try CasbinModel(
            text: """
                [request_definition]
                r = sub, obj, act
                [policy_definition]
                p = sub_rule, obj, act
                [policy_effect]
                e = some(where (p.eft == allow))
                [matchers]
                m = eval(p.sub_rule) && r.obj == p.obj && r.act == p.act
                """
        )
        let enforcer = try Enforcer(model: model, policySource: { #"p, "r.sub.Age > 18 && r.sub.Name != 'eve'", data1, read"# })
        let adult = try CasbinValue(json: ["Name": "alice", "Age": 30] as [String: Any])
        let child = try CasbinValue(json: ["Name": "bob", "Age": 12] as [String: Any])
        #expect(try enforcer.enforce([adult, .string("data1"), .string("read")]))
        #expect(try enforcer.enforce([child, .string("data1"), .string("read")]) == false)
        #expect(throws: CasbinError.self) { try enforcer.enforce([.string("plain"), .string("data1"), .string("read")]) }
    }
}

@Suite("Rule index")
struct RuleIndexTests {
    /// The same decisions with and without the index, on random RBAC and RBAC-with-domain policies.
    @Test("indexed decisions equal a full scan", arguments: [1, 2, 3, 4, 5])
    func indexMatchesScan(seed: UInt64) throws {
        var rng = SplitMix(seed: seed)
        let users = (0..<30).map { "u\($0)" }
        let roles = (0..<8).map { "r\($0)" }
        let objects = (0..<6).map { "o\($0)" }
        let actions = ["read", "write"]
        var lines: [String] = []
        for _ in 0..<200 {
            lines.append("p, \((users + roles)[rng.next(38)]), \(objects[rng.next(6)]), \(actions[rng.next(2)])")
        }
        for _ in 0..<60 {
            lines.append("g, \((users + roles)[rng.next(38)]), \(roles[rng.next(8)])")
        }
        let policy = lines.joined(separator: "\n")
        let indexed = try Enforcer(model: try CasbinModel(text: EngineErrorTests.rbac), policySource: { policy })
        // `(… || false)` hides the equality conjuncts from the index builder: a full scan.
        let scanned = try Enforcer(
            model: try CasbinModel(
                text: EngineErrorTests.rbac.replacingOccurrences(
                    of: "g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act", with: "(g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act) || false"
                )
            ),
            policySource: { policy }
        )
        for _ in 0..<400 {
            let request: [CasbinValue] = [.string((users + roles)[rng.next(38)]), .string(objects[rng.next(6)]), .string(actions[rng.next(2)])]
            let a = try indexed.enforceEx(request)
            let b = try scanned.enforceEx(request)
            #expect(a == b, "\(request): indexed \(a) scanned \(b)")
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next(_ bound: Int) -> Int {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}

@Suite("Engine bounds")
struct EngineBoundsTests {
    @Test("very long operator chains are refused")
    func longChains() throws {
        let chain = Array(repeating: "r.sub == p.sub", count: 3000).joined(separator: " && ")
        let model = try CasbinModel(
            text: EngineErrorTests.rbac.replacingOccurrences(of: "g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act", with: chain))
        let enforcer = try Enforcer(model: model, policySource: { "p, a, b, c" })
        #expect(throws: CasbinError.self) { try enforcer.enforce([.string("a"), .string("b"), .string("c")]) }
    }
}

@Suite("RBAC queries")
struct RBACQueryTests {
    static let domainModel = """
        [request_definition]
        r = sub, dom, obj, act
        [policy_definition]
        p = sub, dom, obj, act
        [role_definition]
        g = _, _, _
        [policy_effect]
        e = some(where (p.eft == allow))
        [matchers]
        m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
        """

    @Test("roles, implicit roles and implicit permissions, per domain")
    func queries() throws {
        let enforcer = try Enforcer(
            model: try CasbinModel(text: Self.domainModel),
            policySource: {
                """
                p, admin, t1, data1, write
                p, reader, t1, data1, read
                p, alice, t1, data2, read
                g, alice, admin, t1
                g, admin, reader, t1
                g, alice, reader, t2
                """
            }
        )
        #expect(enforcer.rolesForUser("alice", domain: "t1") == ["admin"])
        #expect(enforcer.implicitRolesForUser("alice", domain: "t1") == ["admin", "reader"])
        #expect(enforcer.implicitRolesForUser("alice", domain: "t2") == ["reader"])
        #expect(enforcer.usersForRole("admin", domain: "t1") == ["alice"])
        #expect(
            enforcer.implicitPermissionsForUser("alice", domain: "t1")
                == [["alice", "t1", "data2", "read"], ["admin", "t1", "data1", "write"], ["reader", "t1", "data1", "read"]]
        )
        #expect(enforcer.implicitPermissionsForUser("alice", domain: "t2").isEmpty)
        #expect(try enforcer.enforce([.string("alice"), .string("t1"), .string("data1"), .string("read")]))
        #expect(try enforcer.enforce([.string("alice"), .string("t2"), .string("data1"), .string("read")]) == false)
    }
}

@Suite("Rule index upkeep")
struct RuleIndexUpkeepTests {
    @Test("adding and removing rules at run time is seen by indexed decisions")
    func runtimeChanges() throws {
        let policy = (0..<40).map { "p, user\($0), data\($0), read" }.joined(separator: "\n")
        let enforcer = try Enforcer(model: try CasbinModel(text: EngineErrorTests.rbac), policySource: { policy })
        let request: [CasbinValue] = [.string("alice"), .string("data7"), .string("write")]
        #expect(try enforcer.enforce(request) == false)
        try enforcer.addPolicy("p", ["alice", "data7", "write"])
        #expect(try enforcer.enforceEx(request) == Decision(allowed: true, explain: ["alice", "data7", "write"]))
        try enforcer.addPolicy("g", ["bob", "alice"])
        #expect(try enforcer.enforce([.string("bob"), .string("data7"), .string("write")]))
        try enforcer.removePolicy("p", ["alice", "data7", "write"])
        #expect(try enforcer.enforce(request) == false)
        #expect(try enforcer.enforce([.string("user3"), .string("data3"), .string("read")]))
        try enforcer.removeFilteredPolicy("p", fieldIndex: 0, ["user3"])
        #expect(try enforcer.enforce([.string("user3"), .string("data3"), .string("read")]) == false)
        #expect(try enforcer.enforce([.string("user39"), .string("data39"), .string("read")]))
    }
}

@Suite("Rule set upkeep")
struct RuleSetUpkeepTests {
    @Test("hasPolicy, adds and removes agree with a plain set through 2,000 random changes (the set is kept, not rebuilt)")
    func membershipFollowsChanges() throws {
        let enforcer = try Enforcer(model: try CasbinModel(text: RBACQueryTests.domainModel))
        var reference = Set<[String]>()
        var random = SplitMix(seed: 7)
        for step in 0..<2_000 {
            let rule = ["user\(random.next(30))", ["owner", "admin", "viewer"][random.next(3)], "t\(random.next(4))"]
            if random.next(3) == 0 {
                #expect(try enforcer.removePolicy("g", rule) == reference.contains(rule), "step \(step)")
                reference.remove(rule)
            } else {
                #expect(try enforcer.addPolicy("g", rule) == !reference.contains(rule), "step \(step)")
                reference.insert(rule)
            }
            let probe = ["user\(random.next(30))", "admin", "t\(random.next(4))"]
            #expect(enforcer.hasPolicy("g", probe) == reference.contains(probe), "step \(step)")
        }
        #expect(Set(enforcer.policies("g")) == reference)
        #expect(enforcer.policies("g").count == reference.count)
        try enforcer.removeFilteredPolicy("g", fieldIndex: 2, ["t1"])
        reference = reference.filter { $0[2] != "t1" }
        for rule in reference { #expect(enforcer.hasPolicy("g", rule)) }
        #expect(enforcer.hasPolicy("g", ["user1", "admin", "t1"]) == false)
    }

    @Test("the subjects given a role in a domain follow adds and removes, domain by domain")
    func subjectsInDomain() throws {
        let enforcer = try Enforcer(model: try CasbinModel(text: RBACQueryTests.domainModel))
        try enforcer.addPolicy("g", ["alice", "admin", "t1"])
        try enforcer.addPolicy("g", ["admin", "viewer", "t1"])
        try enforcer.addPolicy("g", ["bob", "viewer", "t2"])
        #expect(Set(enforcer.subjectsWithRoles(inDomain: "t1")) == ["alice", "admin"])
        #expect(enforcer.subjectsWithRoles(inDomain: "t2") == ["bob"])
        try enforcer.removePolicy("g", ["alice", "admin", "t1"])
        #expect(enforcer.subjectsWithRoles(inDomain: "t1") == ["admin"])
        #expect(enforcer.subjectsWithRoles(inDomain: "t3").isEmpty)
    }
}
