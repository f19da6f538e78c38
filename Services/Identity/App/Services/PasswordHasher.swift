import Crypto
import Foundation
import HummingbirdBcrypt
import NIOCore
import NIOPosix
import ServiceKit

/// Password rules and hashing: bcrypt (cost 12) of the password's SHA-256, on a thread pool of its own.
///
/// bcrypt reads only the first 72 bytes of its input, so two long passwords sharing those bytes
/// would both verify; hashing the SHA-256 (44 base64 characters) first makes every byte count.
/// bcrypt takes ~0.4 s at cost 12: it never runs on an event loop or the concurrency pool's
/// threads, and it has a thread pool of its own — SQLite runs every query on NIO's shared pool, so
/// a burst of logins there would hold the store for seconds (each hash queued in front of it).
public struct PasswordHasher: Sendable {
    /// One thread per core for bcrypt alone; started once, for the process's life.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, System.coreCount))
        pool.start()
        return pool
    }()

    public static let minimumCharacters = 8
    public static let maximumBytes = 1024
    let cost: UInt8
    /// A hash no password matches, verified against for unknown emails so a login costs the same
    /// time whether or not the account exists.
    let decoy: String

    public init(cost: UInt8 = 12) {
        self.cost = cost
        self.decoy = Bcrypt.hash(Self.prehash(UUID().uuidString), cost: cost)
    }

    /// - Throws: ``ServiceError`` 400 for a password that is too short or too long.
    public static func validate(_ password: String, field: String = "password") throws {
        guard password.count >= Self.minimumCharacters else {
            throw ServiceError.badRequest("\(field) must be at least \(Self.minimumCharacters) characters")
        }
        guard password.utf8.count <= Self.maximumBytes else {
            throw ServiceError.badRequest("\(field) must be at most \(Self.maximumBytes) bytes")
        }
    }

    static func prehash(_ password: String) -> String {
        Data(SHA256.hash(data: Data(password.utf8))).base64EncodedString()
    }

    public func hash(_ password: String) async throws -> String {
        let (input, cost) = (Self.prehash(password), self.cost)
        return try await Self.pool.runIfActive { Bcrypt.hash(input, cost: cost) }
    }

    /// Whether `password` matches `hash`; with no hash (unknown account) the decoy is checked, so
    /// the answer (false) takes as long as a wrong password.
    public func verify(_ password: String, hash: String?) async throws -> Bool {
        let input = Self.prehash(password)
        let stored = hash ?? self.decoy
        let matches = try await Self.pool.runIfActive { Bcrypt.verify(input, hash: stored) }
        return hash != nil && matches
    }
}
