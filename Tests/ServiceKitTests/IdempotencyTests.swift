import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SQLKit
import ServiceKit
import ServiceStorage
import Shared
import Synchronization
import TestSupport
import Testing

/// A count shared by a test and its routes.
final class Counter: Sendable {
    let count = Mutex(0)
    var value: Int { self.count.withLock { $0 } }
    @discardableResult func add() -> Int {
        self.count.withLock { count in
            count += 1
            return count
        }
    }
}

/// `Idempotency-Key` as the contract decides it, on a service route backed by a real store.
@Suite("Idempotency-Key")
struct IdempotencyTests {
    static let token = String(repeating: "i", count: 40)
    static let migrator = Migrator(
        service: "idem",
        migrations: [
            Migration(version: 1, name: "keys") { _ in SQLIdempotencyStore.migration(prefix: "idem") },
            Migration(version: 2, name: "leases") { _ in SQLIdempotencyStore.leaseMigration(prefix: "idem") },
        ])

    /// A service whose `POST /api/v1/things` makes a thing (counted) and whose `POST /api/v1/fail`
    /// answers 503; `gate` holds `/api/v1/slow` until opened.
    func withService(
        _ backend: String,
        _ body: @escaping @Sendable (any TestClientProtocol, Counter, Counter, any Database) async throws -> Void
    ) async throws {
        let location = try await TestDatabases.freshLocation(backend, name: "idem")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            try await Self.migrator.migrate(database, logger: TestDatabases.logger)
            let made = Counter()
            let gate = Counter()
            let router = Router(context: ServiceRequestContext.self)
            router.addMiddleware { NestErrorMiddleware<ServiceRequestContext>() }
            let group = router.forwardedGroup(internalToken: Self.token, idempotency: SQLIdempotencyStore(database: database, prefix: "idem"))
            group.post("things") { request, _ -> Response in
                let sent = try await request.body.collect(upTo: 4096)
                let id = made.add()
                return Response(
                    status: .created, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"id":\#(id),"sent":\#(sent.readableBytes)}"#)))
            }
            group.post("fail") { _, _ -> Response in
                made.add()
                throw ServiceError(.serviceUnavailable, message: "down")
            }
            group.post("slow") { _, _ -> Response in
                while gate.value == 0 { try await Task.sleep(for: .milliseconds(20)) }
                return Response(status: .ok)
            }
            try await Application(router: router).test(.router) { client in try await body(client, made, gate, database) }
        }
    }

    func post(
        _ client: some TestClientProtocol, _ path: String, key: String?, body: String = #"{"name":"a"}"#, subject: String = "user:u1"
    ) async throws -> TestResponse {
        var headers: HTTPFields = [
            .streamHubInternalToken: Self.token, .contentType: "application/json",
            .streamHubPrincipal: PrincipalHeader.encode(Principal(kind: .user, scope: .tenant, subject: subject, tenantId: "t1")),
        ]
        if let key { headers[HTTPField.Name("Idempotency-Key")!] = key }
        return try await client.execute(uri: "/api/v1/" + path, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    @Test("a retry with the same key and body gets the first answer, replayed; another body is a 422; another caller has its own keys", arguments: TestDatabases.backends)
    func replay(backend: String) async throws {
        try await self.withService(backend) { client, made, _, _ in
            let first = try await self.post(client, "things", key: "k-1")
            #expect(first.status == .created)
            #expect(first.headers[HTTPField.Name("Idempotency-Replayed")!] == nil)
            let again = try await self.post(client, "things", key: "k-1")
            #expect(again.status == .created)
            #expect(String(buffer: again.body) == String(buffer: first.body))
            #expect(again.headers[HTTPField.Name("Idempotency-Replayed")!] == "true")
            #expect(again.headers[.contentType] == "application/json")
            #expect(made.value == 1)
            let other = try await self.post(client, "things", key: "k-1", body: #"{"name":"b"}"#)
            #expect(other.status == .unprocessableContent)
            #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: other.body)).message == "This Idempotency-Key was used with another request")
            // The same key from another caller is another key.
            #expect(try await self.post(client, "things", key: "k-1", subject: "user:u2").status == .created)
            // No key: no idempotency.
            _ = try await self.post(client, "things", key: nil)
            _ = try await self.post(client, "things", key: nil)
            #expect(made.value == 4)
        }
    }

    @Test("a 5xx answer is not kept (the retry runs again); a retry while the first runs is a 409; bad keys are a 400", arguments: TestDatabases.backends)
    func failuresAndRaces(backend: String) async throws {
        try await self.withService(backend) { client, made, gate, database in
            #expect(try await self.post(client, "fail", key: "f-1").status == .serviceUnavailable)
            #expect(try await self.post(client, "fail", key: "f-1").status == .serviceUnavailable)
            #expect(made.value == 2)
            async let slow = self.post(client, "slow", key: "s-1")
            struct Count: Decodable { var n: Int }
            try await Waiting.until(deadline: .seconds(5), "the slow request to claim its key") {
                try await database.withSQL { sql in
                    try await sql.raw("SELECT COUNT(*) AS n FROM idem_idempotency WHERE status IS NULL").first(decoding: Count.self)?.n ?? 0
                } == 1
            }
            let racing = try await self.post(client, "slow", key: "s-1")
            #expect(racing.status == .conflict)
            #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: racing.body)).message == "A request with this Idempotency-Key is still running; retry shortly")
            gate.add()
            #expect(try await slow.status == .ok)
            #expect(try await self.post(client, "slow", key: "s-1").headers[HTTPField.Name("Idempotency-Replayed")!] == "true")
            for key in ["", String(repeating: "k", count: 256), "caf\u{E9}", "tab\tkey"] {
                let refused = try await self.post(client, "things", key: key)
                #expect(refused.status == .badRequest, "\(key.debugDescription)")
            }
            #expect(try await self.post(client, "things", key: String(repeating: "k", count: 255)).status == .created)
        }
    }

    @Test("a key whose request never finished (its process died: its lease ran out) is answered 409 outcome unknown, never run again", arguments: TestDatabases.backends)
    func abandoned(backend: String) async throws {
        try await self.withService(backend) { client, made, _, database in
            let now = Timestamp.millis(Date())
            // A run claimed the key (scope user:u1) and died before answering: nobody renews its lease.
            let first = try await self.post(client, "things", key: "d-1")
            #expect(first.status == .created)
            try await database.withSQL { sql in
                try await sql.raw("UPDATE idem_idempotency SET status = NULL, body = NULL, lease_until = \(bind: now - 1)").run()
            }
            let retry = try await self.post(client, "things", key: "d-1")
            #expect(retry.status == .conflict)
            #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: retry.body)).message.contains("its outcome is unknown"))
            // A key claimed before leases existed: abandoned after 10 minutes.
            #expect(try await self.post(client, "things", key: "d-2").status == .created)
            try await database.withSQL { sql in
                try await sql.raw(
                    """
                    UPDATE idem_idempotency SET status = NULL, body = NULL, lease_until = NULL, \
                    created_at = \(bind: now - SQLIdempotencyStore.abandonAfter - 1000) WHERE status IS NOT NULL
                    """
                ).run()
            }
            #expect(try await self.post(client, "things", key: "d-2").status == .conflict)
            #expect(made.value == 2)
        }
    }

    @Test("a request still running renews its key's lease: a retry past the first lease is still told to wait, not 'unknown'", arguments: TestDatabases.backends)
    func leaseRenewed(backend: String) async throws {
        try await self.withService(backend) { client, _, gate, database in
            async let slow = self.post(client, "slow", key: "l-1")
            struct Lease: Decodable { var lease_until: Int64? }
            func lease() async throws -> Int64? {
                try await database.withSQL { sql in
                    try await sql.raw("SELECT lease_until FROM idem_idempotency WHERE status IS NULL").first(decoding: Lease.self)?.lease_until
                }
            }
            try await Waiting.until(deadline: .seconds(5), "the slow request to claim its key") { try await lease() != nil }
            let claimed = try #require(try await lease())
            try await Waiting.until(deadline: .seconds(8), "the lease to be renewed") { (try await lease() ?? 0) > claimed }
            // The renewed lease stands: still running, not abandoned.
            let racing = try await self.post(client, "slow", key: "l-1")
            #expect(racing.status == .conflict)
            #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: racing.body)).message.contains("still running"))
            gate.add()
            #expect(try await slow.status == .ok)
        }
    }
}
