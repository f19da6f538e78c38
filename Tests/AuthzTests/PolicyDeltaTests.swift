import CasbinEngine
import Foundation
import SQLKit
import ServiceStorage
import TestSupport
import Testing

@testable import AuthzApp

/// Replicas follow the policy by applying the changes made since their version (the change log),
/// not by reloading every rule; a gap in the log falls back to a full reload.
@Suite("Policy changes applied incrementally")
struct PolicyDeltaTests {
    func request(_ user: String) -> [CasbinValue] { [.string(user), .string("t1"), .string("app"), .string("write")] }

    @Test("a grant and a revoke reach another replica as two applied changes, not reloads; decisions follow", arguments: TestDatabases.backends)
    func applied(backend: String) async throws {
        try await AuthzServiceTests.withMigratedDatabase(backend) { database in
            let model = try CasbinModel(text: DefaultPolicy.model)
            let writer = try PolicyEngine(model: model, store: SQLPolicyStore(database: database))
            let replica = try PolicyEngine(model: model, store: SQLPolicyStore(database: database))
            #expect(try await writer.update(force: true) == .reloaded)
            #expect(try await replica.update(force: true) == .reloaded)
            #expect(try await replica.update() == .current)
            let grant = StoredRule(ptype: "g", values: ["user:zoe", "member", "t1"])
            _ = try await writer.apply([.add(grant)])
            #expect(try writer.decide(self.request("user:zoe")).allowed)
            #expect(try replica.decide(self.request("user:zoe")).allowed == false)
            #expect(try await replica.update() == .applied(changes: 1))
            #expect(try replica.decide(self.request("user:zoe")).allowed)
            #expect(replica.currentVersion == writer.currentVersion)
            // Several versions at once, in order: a grant, then its removal, then another grant.
            _ = try await writer.apply([.add(StoredRule(ptype: "g", values: ["user:amy", "member", "t1"]))])
            _ = try await writer.apply([.remove(grant)])
            _ = try await writer.apply([.add(StoredRule(ptype: "p", values: ["member", "t1", "report", "read"]))])
            #expect(try await replica.update() == .applied(changes: 3))
            #expect(try replica.decide(self.request("user:zoe")).allowed == false)
            #expect(try replica.decide(self.request("user:amy")).allowed)
            #expect(try replica.decide([.string("user:amy"), .string("t1"), .string("report"), .string("read")]).allowed)
            #expect(replica.rules("g").sorted { $0.joined() < $1.joined() } == writer.rules("g").sorted { $0.joined() < $1.joined() })
        }
    }

    @Test("a version the log does not cover (pruned, or changed by a migration) is a full reload, and the replica ends up equal", arguments: TestDatabases.backends)
    func gapReloads(backend: String) async throws {
        try await AuthzServiceTests.withMigratedDatabase(backend) { database in
            let model = try CasbinModel(text: DefaultPolicy.model)
            let writer = try PolicyEngine(model: model, store: SQLPolicyStore(database: database))
            let replica = try PolicyEngine(model: model, store: SQLPolicyStore(database: database))
            try await writer.refresh(force: true)
            try await replica.refresh(force: true)
            _ = try await writer.apply([.add(StoredRule(ptype: "g", values: ["user:bob", "member", "t1"]))])
            _ = try await writer.apply([.add(StoredRule(ptype: "g", values: ["user:cat", "member", "t1"]))])
            try await database.withSQL { sql in try await sql.raw("DELETE FROM authz_policy_log WHERE seq = 0 AND v0 = 'user:bob'").run() }
            #expect(try await replica.update() == .reloaded)
            #expect(try replica.decide(self.request("user:bob")).allowed)
            #expect(try replica.decide(self.request("user:cat")).allowed)
            #expect(replica.currentVersion == writer.currentVersion)
        }
    }
}
