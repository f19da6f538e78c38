import Foundation
import IdentityApp
import ServiceStorage
import Synchronization
import TestSupport
import Testing

@Suite("Password hashing")
struct PasswordHasherTests {
    @Test("a burst of bcrypt hashes does not hold SQLite's queries (they share no threads): a query answers while the hashes still run")
    func burstDoesNotStarveTheStore() async throws {
        let hasher = PasswordHasher(cost: 12)
        let location = try await TestDatabases.freshLocation("sqlite", name: "hashing")
        try await DatabaseFactory.withDatabase(location, logger: TestDatabases.logger) { database in
            _ = try await database.withSQL { sql in try await sql.raw("SELECT 1 AS n").all() }
            let finished = Finished()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        _ = try await hasher.hash("password-\(index)")
                        finished.count.withLock { $0 += 1 }
                    }
                }
                try await Task.sleep(for: .milliseconds(50))  // the hashes hold every thread they can get
                _ = try await database.withSQL { sql in try await sql.raw("SELECT 1 AS n").all() }
                let done = finished.count.withLock { $0 }
                // 8 hashes of ~0.4 s on a pool of one thread per core: the query ran before they queued up
                // behind each other (on a shared pool it would have waited for 6 or 7 of them).
                #expect(done <= 2, "the query waited for \(done) hashes")
                try await group.waitForAll()
            }
            #expect(finished.count.withLock { $0 } == 8)
        }
    }
}

final class Finished: Sendable {
    let count = Mutex(0)
}
