import Foundation

/// HTTP/1.1 spoken over a plain socket, for tests that need exact bytes on the wire: pipelining,
/// requests split across writes, malformed input.
public enum RawHTTP {
    public struct Response: Sendable {
        public var status: Int
        /// Lower-cased names.
        public var headers: [String: String]
        public var bodyBytes: [UInt8]
        public var body: String { String(decoding: self.bodyBytes, as: UTF8.self) }
    }

    /// Sends `parts` on one connection to 127.0.0.1:`port` (each its own write, `pause` apart),
    /// reads until the server closes it or is silent for `silence`, splits the responses.
    /// `headAnswers` are the indices of the responses to `HEAD` requests (they carry no body).
    /// The socket is read on a thread of its own: a blocked read never holds one of the few
    /// threads of Swift's concurrency pool that the server under test may need.
    public static func exchange(
        port: Int, _ parts: [String], pause: TimeInterval = 0.05, headAnswers: Set<Int> = [], silence: Int = 5
    ) async throws -> (responses: [Response], closed: Bool) {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try self.blockingExchange(port: port, parts, pause: pause, headAnswers: headAnswers, silence: silence) })
            }.start()
        }
    }

    static func blockingExchange(
        port: Int, _ parts: [String], pause: TimeInterval, headAnswers: Set<Int>, silence: Int
    ) throws -> (responses: [Response], closed: Bool) {
        let fd = try self.connected(port: port)
        defer { close(fd) }
        var timeout = timeval(tv_sec: silence, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        for (index, part) in parts.enumerated() {
            if index > 0 { Thread.sleep(forTimeInterval: pause) }
            try self.sendAll(part, on: fd)
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var closed = false
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 {
                closed = true
                break
            }
            if count < 0 { break }  // silent: the server kept the connection open
            received += chunk[..<count]
        }
        return (try self.split(received, headAnswers: headAnswers), closed)
    }

    /// Connects to 127.0.0.1:`port`, writes `text` and closes at once, without reading a byte: a
    /// client that hangs up while its requests are still being answered.
    public static func sendAndHangUp(port: Int, _ text: String) throws {
        let fd = try self.connected(port: port)
        defer { close(fd) }
        try self.sendAll(text, on: fd)
    }

    /// A TCP socket connected to 127.0.0.1:`port`; the caller closes it.
    static func connected(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw Failure("connect to \(port)")
        }
        return fd
    }

    static func sendAll(_ text: String, on fd: Int32) throws {
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else { throw Failure("send") }
    }

    /// One request, text for `exchange`.
    public static func exchange(port: Int, _ text: String, headAnswers: Set<Int> = []) async throws -> (responses: [Response], closed: Bool) {
        try await self.exchange(port: port, [text], headAnswers: headAnswers)
    }

    public static func split(_ bytes: [UInt8], headAnswers: Set<Int> = []) throws -> [Response] {
        var responses: [Response] = []
        var rest = bytes[...]
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while !rest.isEmpty {
            guard let end = rest.indices.first(where: { rest[$0...].starts(with: separator) }) else { throw Failure("a response head without its end") }
            let lines = String(decoding: rest[..<end], as: UTF8.self).components(separatedBy: "\r\n")
            let status = Int(lines[0].split(separator: " ")[1]) ?? 0
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                headers[parts[0].lowercased()] = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
            }
            let length = headAnswers.contains(responses.count) ? 0 : Int(headers["content-length"] ?? "0") ?? 0
            let bodyStart = end + separator.count
            guard rest.endIndex >= bodyStart + length else { throw Failure("a body shorter than its Content-Length") }
            responses.append(Response(status: status, headers: headers, bodyBytes: Array(rest[bodyStart..<(bodyStart + length)])))
            rest = rest[(bodyStart + length)...]
        }
        return responses
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
