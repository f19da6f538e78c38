import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceKit
import Shared
import Synchronization

/// How the gateway reads a request at the edge: the URI's length and encoding, and the body within
/// its limit and time.
enum EdgeInput {
    /// The longest request target (path and query) the gateway takes; longer is a 414.
    static let maxURIBytes = 8192
    /// After refusing an oversized body the gateway keeps reading (and dropping) what the client
    /// is still sending, for at most this long and this much, so the client reads the 413 instead
    /// of a connection reset — nginx's lingering close.
    static let lingerTime: Duration = .seconds(5)
    static let lingerBytes = 64 << 20

    /// - Throws: 414 for a target past ``maxURIBytes``; 400 when a percent-escape in the path or
    ///   query does not decode to UTF-8.
    static func checkTarget(_ target: String) throws {
        guard target.utf8.count <= Self.maxURIBytes else {
            throw ServiceError(.uriTooLong, message: "Request URI is longer than \(Self.maxURIBytes) bytes")
        }
        guard target.utf8.contains(UInt8(ascii: "%")) else { return }
        guard let decoded = Self.percentDecoded(target.utf8), String(validating: decoded, as: UTF8.self) != nil else {
            throw ServiceError.badRequest("Request path or query is not valid UTF-8 (or has a malformed percent-escape)")
        }
    }

    /// The bytes `%XX` escapes stand for; nil for a malformed escape.
    static func percentDecoded(_ bytes: String.UTF8View) -> [UInt8]? {
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            index = bytes.index(after: index)
            guard byte == UInt8(ascii: "%") else {
                decoded.append(byte)
                continue
            }
            guard index != bytes.endIndex, let high = hex(bytes[index]) else { return nil }
            index = bytes.index(after: index)
            guard index != bytes.endIndex, let low = hex(bytes[index]) else { return nil }
            index = bytes.index(after: index)
            decoded.append(high << 4 | low)
        }
        return decoded
    }

    enum Outcome: Sendable {
        case complete(ByteBuffer)
        case tooLarge
        case timedOut
        /// The body broke off: a chunk size that overflows or is not hex, a bare LF in a chunk
        /// extension, the connection ending mid-body. The client's fault: a 400, never a 5xx.
        case malformed
    }

    /// What the reader has seen, for the watchdog.
    final class Progress: Sendable {
        struct State {
            var deadline: ContinuousClock.Instant
            var oversized = false
        }

        let state: Mutex<State>

        init(deadline: ContinuousClock.Instant) { self.state = Mutex(State(deadline: deadline)) }
    }

    /// Reads `body` up to `limit` bytes. Past the limit (or at once when `refused`, the announced
    /// length being too large) it lingers: keeps reading and dropping for ``lingerTime`` or
    /// ``lingerBytes``, then answers `.tooLarge`. A body that does not arrive within `timeout`
    /// (`GATEWAY_BODY_TIMEOUT_S`) is `.timedOut`.
    static func read(_ body: RequestBody, limit: Int, timeout: Duration, refused: Bool) async throws -> Outcome {
        let progress = Progress(deadline: .now + (refused ? Self.lingerTime : timeout))
        progress.state.withLock { $0.oversized = refused }
        return try await withThrowingTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                var collected = ByteBuffer()
                var dropped = 0
                var oversized = refused
                var iterator = body.makeAsyncIterator()
                while true {
                    let next: ByteBuffer?
                    do {
                        next = try await iterator.next()
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        return .malformed
                    }
                    guard var chunk = next else { break }
                    if oversized {
                        dropped += chunk.readableBytes
                        if dropped > Self.lingerBytes { break }
                        continue
                    }
                    if collected.readableBytes + chunk.readableBytes > limit {
                        oversized = true
                        dropped = collected.readableBytes + chunk.readableBytes
                        collected = ByteBuffer()
                        progress.state.withLock { state in
                            state.oversized = true
                            state.deadline = .now + Self.lingerTime
                        }
                        continue
                    }
                    collected.writeBuffer(&chunk)
                }
                return oversized ? .tooLarge : .complete(collected)
            }
            group.addTask {
                // The watchdog: ends the read at the deadline (moved earlier once lingering starts).
                while true {
                    let (deadline, oversized) = progress.state.withLock { ($0.deadline, $0.oversized) }
                    if ContinuousClock.now >= deadline { return oversized ? .tooLarge : .timedOut }
                    try await Task.sleep(for: min(.milliseconds(100), deadline - .now))
                }
            }
            defer { group.cancelAll() }
            while let outcome = try await group.next() {
                if let outcome { return outcome }
            }
            return .timedOut
        }
    }
}
