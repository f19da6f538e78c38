import NIOCore
import ServiceKit
import Shared

/// The service's entry to ``EnforceBodyParser``: a request body's bytes in, a 400 in the NestJS
/// body for anything refused.
extension EnforceBodyParser {
    static func parseRequest(_ buffer: ByteBuffer) throws -> EnforceRequest {
        try Self.answering { try buffer.withUnsafeReadableBytes { bytes throws(Refusal) in try Self.parseRequest(bytes: bytes) } }
    }

    static func parseBatch(_ buffer: ByteBuffer) throws -> (requests: [EnforceRequest], explain: Bool) {
        try Self.answering { try buffer.withUnsafeReadableBytes { bytes throws(Refusal) in try Self.parseBatch(bytes: bytes) } }
    }

    static func answering<T>(_ parse: () throws -> T) throws -> T {
        do {
            return try parse()
        } catch let refusal as Refusal {
            throw ServiceError.badRequest(refusal.message)
        }
    }
}
