import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SQLKit
import Shared
import Synchronization
import ServiceKit
import ServiceStorage
import TestSupport
import Testing

/// PostgreSQL faults as storage code meets them: replicas migrating together, a unit of work that
/// would wait forever, a backend terminated by the administrator.
@Suite("Database faults", .enabled(if: TestDatabases.postgresEnabled), .serialized)
struct DatabaseFaultTests {
    struct PIDRow: Decodable { var pid: Int32 }

    func location(queryTimeout: Duration = .seconds(5)) async throws -> PostgresLocation {
        guard case .postgres(var location) = try await TestDatabases.freshLocation("postgres", name: "faults") else {
            throw StorageError.invalid("not PostgreSQL")
        }
        location.queryTimeout = queryTimeout
        return location
    }

    /// Like `location()` but the same schema (another replica of one service).
    func sibling(_ location: PostgresLocation, queryTimeout: Duration) -> PostgresLocation {
        var other = location
        other.queryTimeout = queryTimeout
        return other
    }

    static let migrator = Migrator(
        service: "faulty",
        migrations: [
            Migration(version: 1, name: "things") { _ in ["CREATE TABLE faulty_things (id TEXT PRIMARY KEY)"] },
            Migration(version: 2, name: "more") { _ in ["CREATE TABLE faulty_more (id TEXT PRIMARY KEY)"] },
        ])

    @Test("replicas starting together on a fresh database all migrate (the lock is taken before the bookkeeping table is created)")
    func replicasMigrateTogether() async throws {
        for _ in 0..<3 {
            let location = try await self.location()
            let outcomes = await withTaskGroup(of: String?.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        do {
                            try await DatabaseFactory.withDatabase(.postgres(location), logger: TestDatabases.logger) { database in
                                try await Self.migrator.migrate(database, logger: TestDatabases.logger)
                            }
                            return nil
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
            }
            #expect(outcomes.isEmpty, "\(outcomes)")
            let current = try await DatabaseFactory.withDatabase(.postgres(location), logger: TestDatabases.logger) { database in
                try await Self.migrator.isCurrent(database)
            }
            #expect(current)
        }
    }

    @Test("a unit of work waiting on the database past DATABASE_QUERY_TIMEOUT_S fails as unavailable within the bound; the store works on")
    func workHasADeadline() async throws {
        let location = try await self.location()
        try await DatabaseFactory.withDatabase(.postgres(location), logger: TestDatabases.logger) { holder in
            try await DatabaseFactory.withDatabase(.postgres(self.sibling(location, queryTimeout: .seconds(1))), logger: TestDatabases.logger) {
                waiter in
                try await holder.transaction { sql in
                    try await sql.raw("SELECT pg_advisory_xact_lock(4242)").run()
                    let started = ContinuousClock.now
                    // Without a deadline this waits as long as the holder's transaction: forever, in a fault.
                    await #expect(throws: StorageError.unavailable("The database did not answer in time; try again shortly")) {
                        try await waiter.transaction { sql in try await sql.raw("SELECT pg_advisory_xact_lock(4242)").run() }
                    }
                    let waited = ContinuousClock.now - started
                    #expect(waited >= .milliseconds(900) && waited < .seconds(3), "\(waited)")
                }
                // The closed connection left the pool; the next unit of work gets a fresh one.
                let one = try await waiter.withSQL { sql in try await sql.raw("SELECT 1 AS pid").first(decoding: PIDRow.self)?.pid }
                #expect(one == 1)
            }
        }
    }

    @Test("a backend terminated by the administrator (57P01) mid-transaction is unavailable (503), not a 500; the store works on")
    func terminatedBackendIsUnavailable() async throws {
        let location = try await self.location()
        try await DatabaseFactory.withDatabase(.postgres(location), logger: TestDatabases.logger) { admin in
            try await DatabaseFactory.withDatabase(.postgres(location), logger: TestDatabases.logger) { victim in
                let started = ContinuousClock.now
                let error = await #expect(throws: StorageError.self) {
                    try await victim.transaction { sql in
                        let pid = try #require(try await sql.raw("SELECT pg_backend_pid() AS pid").first(decoding: PIDRow.self)?.pid)
                        _ = try await admin.withSQL { sql in try await sql.raw("SELECT pg_terminate_backend(\(bind: pid))").all() }
                        try await sql.raw("SELECT 1").run()
                    }
                }
                #expect(error == StorageError.unavailable("The database is not reachable; try again shortly"))
                #expect(error?.serviceError.status.code == 503)
                // At once, not at the deadline: the lost connection answers the caller.
                #expect(ContinuousClock.now - started < .seconds(2))
                try await Waiting.until(deadline: .seconds(5), "the pool to serve again") {
                    (try? await victim.withSQL { sql in try await sql.raw("SELECT 1 AS pid").first(decoding: PIDRow.self)?.pid }) == 1
                }
            }
        }
    }

    @Test("a database that refuses connections: the first unit fails at the lease bound (5 s), the next ones within about a second (known away)")
    func refusedIsFast() async throws {
        var location = try await self.location(queryTimeout: .seconds(5))
        // A port nothing listens on: every connection the pool tries is refused.
        location.port = 1
        let store = PostgresStore(location: location, logger: TestDatabases.logger)
        let pool = Task { try await store.run() }
        defer { pool.cancel() }
        func timed() async -> (Duration, (any Error)?) {
            let started = ContinuousClock.now
            do {
                _ = try await store.withSQL { sql in try await sql.raw("SELECT 1 AS pid").first(decoding: PIDRow.self) }
                return (ContinuousClock.now - started, nil)
            } catch {
                return (ContinuousClock.now - started, error)
            }
        }
        let (first, firstError) = await timed()
        #expect((firstError as? StorageError)?.serviceError.status.code == 503)
        #expect(first >= .seconds(4.5) && first < .seconds(7))
        for _ in 0..<3 {
            let (next, error) = await timed()
            #expect((error as? StorageError)?.serviceError.status.code == 503)
            // About a second (1.6 s seen on a loaded CI machine); without the fix each waits the full 5 s.
            #expect(next < .seconds(3), "\(next)")
        }
    }

    @Test("SQLSTATE classes 08, 53, 57 and 58 mean unavailable; others do not")
    func sqlStateClasses() {
        for state in ["57P01", "57P02", "57P03", "57014", "08006", "08003", "53300", "53100", "58030"] {
            #expect(PostgresStore.meansUnavailable(sqlState: state), "\(state)")
        }
        for state in ["23505", "42P01", "22001", "40001", ""] {
            #expect(!PostgresStore.meansUnavailable(sqlState: state), "\(state)")
        }
    }
}

@Suite("Unknown request members")
struct UnknownFieldTests {
    struct Update: Codable {
        struct Features: Codable { var publicPlayback: Bool? }
        var name: String?
        var features: Features?
        var tags: [Features]?
    }

    func first(_ json: String) throws -> String? {
        let data = Data(json.utf8)
        return UnknownFields.first(in: data, decoded: try JSONDecoder().decode(Update.self, from: data))
    }

    @Test("a member the type does not know is named, at any depth; known members and nulls pass")
    func named() throws {
        #expect(try self.first(#"{"publicPlayback":false}"#) == "publicPlayback")
        #expect(try self.first(#"{"features":{"publicPlayback":false,"extra":1}}"#) == "features.extra")
        #expect(try self.first(#"{"tags":[{"publicPlayback":true},{"x":1}]}"#) == "tags[1].x")
        #expect(try self.first(#"{"name":"a","features":{"publicPlayback":false}}"#) == nil)
        #expect(try self.first(#"{"name":null,"features":null}"#) == nil)
        #expect(try self.first(#"{}"#) == nil)
    }

    @Test("through a route: 400 in the NestJS body naming the member, and nothing done")
    func throughRoute() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.addMiddleware { NestErrorMiddleware<BasicRequestContext>() }
        let touched = Mutex(false)
        router.patch("apps/:app") { request, _ -> String in
            _ = try await request.decodeJSON(Update.self)
            touched.withLock { $0 = true }
            return "ok"
        }
        try await Application(router: router).test(.router) { client in
            let response = try await client.execute(
                uri: "/apps/a1", method: .patch, headers: [.contentType: "application/json"], body: ByteBuffer(string: #"{"publicPlayback":false}"#))
            #expect(response.status == .badRequest)
            let body = try JSONDecoder().decode(ErrorBody.self, from: Data(buffer: response.body))
            #expect(body.message == "property publicPlayback should not exist")
        }
        #expect(!touched.withLock { $0 })
    }
}

@Suite("Request ids")
struct GeneratedRequestIDTests {
    @Test("generated request ids are 32 hex digits, unique, and one does not tell the next (no shared prefix, no counter)")
    func unguessable() {
        let ids = (0..<2000).map { _ in RequestIDs.resolve(nil) }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.utf8.count == 32 && $0.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) } })
        // Hummingbird's ids shared a 16-digit random prefix and counted up in the rest.
        let sharedPrefixes = zip(ids, ids.dropFirst()).filter { $0.prefix(8) == $1.prefix(8) }.count
        #expect(sharedPrefixes < 3, "\(sharedPrefixes) consecutive ids share their first 8 digits")
        #expect(RequestIDs.resolve("client-id.1") == "client-id.1")
    }
}
