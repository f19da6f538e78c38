import Shared

/// Reads enforce bodies straight from bytes. Decisions are the service's hot path and
/// Foundation's `JSONDecoder` was a fifth of a batch's cost; the shapes are fixed and small.
/// Errors carry the same messages `decodeJSON` gives (`subject is required`, …).
///
/// This file needs only `Shared`, so the fuzz harness (`fuzz/`) compiles it as it is and checks it
/// against `JSONDecoder`; `EnforceBodyParser+ByteBuffer.swift` is the service's entry.
enum EnforceBodyParser {
    struct Invalid: Error {
        var message: String
    }

    /// A body refused, with the message the client reads (a 400).
    struct Refusal: Error, Equatable {
        var message: String
    }

    /// The keys the enforce bodies know, matched on the raw bytes (no `String` per key).
    enum Key: String {
        case subject, tenant, resource, action, explain, requests, other

        /// Records this key in `seen` (one bit per key, no allocation); false when it was there already.
        func mark(_ seen: inout UInt8) -> Bool {
            let bit: UInt8 = switch self {
            case .subject: 1
            case .tenant: 2
            case .resource: 4
            case .action: 8
            case .explain: 16
            case .requests: 32
            case .other: 64
            }
            defer { seen |= bit }
            return seen & bit == 0
        }
    }

    /// `POST /internal/v1/enforce`: one request object.
    static func parseRequest(bytes: UnsafeRawBufferPointer) throws(Refusal) -> EnforceRequest {
        try self.document(bytes) { reader, problem in
            guard reader.peek == UInt8(ascii: "{") else {
                try reader.skipValue(depth: 0)
                problem.note("body must be an object")
                return nil
            }
            return try reader.request(item: nil, problem: &problem)
        }
    }

    /// `POST /internal/v1/enforce/batch`: `{"requests":[…], "explain"?: bool}`.
    static func parseBatch(bytes: UnsafeRawBufferPointer) throws(Refusal) -> (requests: [EnforceRequest], explain: Bool) {
        try self.document(bytes) { reader, problem in
            guard reader.peek == UInt8(ascii: "{") else {
                try reader.skipValue(depth: 0)
                problem.note("body must be an object")
                return nil
            }
            var requests: [EnforceRequest]?
            var explain = false
            var seen: UInt8 = 0
            try reader.object(depth: 0) { reader, key in
                if key == .requests || key == .explain, !key.mark(&seen) { problem.note("\(key.rawValue) is given more than once") }
                switch key {
                case .requests:
                    guard reader.peek == UInt8(ascii: "[") else {
                        try reader.skipValue(depth: 1)
                        problem.note("requests must be an array")
                        return
                    }
                    var items: [EnforceRequest] = []
                    items.reserveCapacity(reader.remaining / 64)
                    try reader.array(depth: 1) { reader, position in
                        guard reader.peek == UInt8(ascii: "{") else {
                            try reader.skipValue(depth: 2)
                            problem.note("requests.\(position) must be an object")
                            return
                        }
                        if let item = try reader.request(item: position, problem: &problem) { items.append(item) }
                    }
                    requests = items
                case .explain:
                    explain = try reader.optionalBool(problem: &problem) ?? explain
                default:
                    try reader.skipValue(depth: 1)
                }
            }
            guard let requests else {
                problem.note("requests is required")
                return nil
            }
            return (requests, explain)
        }
    }

    /// The first client mistake in document order, reported only once the whole body proved to be
    /// JSON (a syntax error anywhere wins, as with a decoder that reads the whole body first).
    struct Problem {
        var message: String?

        mutating func note(_ message: @autoclosure () -> String) {
            if self.message == nil { self.message = message() }
        }
    }

    static func document<T>(_ bytes: UnsafeRawBufferPointer, _ body: (inout Reader, inout Problem) throws -> T?) throws(Refusal) -> T {
        guard bytes.count > 0 else { throw Refusal(message: "Request body is required") }
        // JSON text is UTF-8 (RFC 8259 §8.1), as JSONDecoder insists: one check of the whole body,
        // so no string (read, or skipped as an unknown member's) can carry invalid bytes.
        // Bodies are ASCII as a rule: only one with a byte past 0x7F pays for a full check.
        if bytes.contains(where: { $0 >= 0x80 }), String(validating: bytes, as: UTF8.self) == nil {
            throw Refusal(message: "Request body is not valid JSON")
        }
        var problem = Problem()
        var reader = Reader(bytes: bytes)
        let result: T?
        do {
            reader.skipWhitespace()
            guard reader.index < bytes.count else { throw Invalid(message: "empty") }
            let value = try body(&reader, &problem)
            reader.skipWhitespace()
            guard reader.index == bytes.count else { throw Invalid(message: "trailing characters") }
            result = value
        } catch {
            throw Refusal(message: "Request body is not valid JSON")
        }
        if let message = problem.message { throw Refusal(message: message) }
        guard let result else { throw Refusal(message: "Request body is not valid JSON") }
        return result
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        mutating func skipWhitespace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 { index += 1 }
        }

        mutating func expect(_ literal: StaticString) throws {
            let count = literal.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw Invalid(message: "truncated") }
            for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] { throw Invalid(message: "bad literal") }
            index += count
        }

        var peek: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }
        var remaining: Int { self.bytes.count - self.index }

        /// Reads `{…}`, handing each key and the reader (positioned at the value, which the
        /// closure must consume) to `field`.
        mutating func object(depth: Int, _ field: (inout Reader, Key) throws -> Void) throws {
            guard depth < 64 else { throw Invalid(message: "too deep") }
            index += 1
            skipWhitespace()
            if peek == UInt8(ascii: "}") {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                guard peek == UInt8(ascii: "\"") else { throw Invalid(message: "expected a key") }
                let key = try self.key()
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                guard index < bytes.count else { throw Invalid(message: "truncated") }
                try field(&self, key)
                skipWhitespace()
                guard let next = peek else { throw Invalid(message: "truncated") }
                index += 1
                if next == UInt8(ascii: ",") { continue }
                if next == UInt8(ascii: "}") { return }
                throw Invalid(message: "expected , or }")
            }
        }

        /// Reads `[…]`, handing each element's position to `element`, which must consume it.
        mutating func array(depth: Int, _ element: (inout Reader, Int) throws -> Void) throws {
            guard depth < 64 else { throw Invalid(message: "too deep") }
            index += 1
            skipWhitespace()
            if peek == UInt8(ascii: "]") {
                index += 1
                return
            }
            var position = 0
            while true {
                skipWhitespace()
                guard index < bytes.count else { throw Invalid(message: "truncated") }
                try element(&self, position)
                position += 1
                skipWhitespace()
                guard let next = peek else { throw Invalid(message: "truncated") }
                index += 1
                if next == UInt8(ascii: ",") { continue }
                if next == UInt8(ascii: "]") { return }
                throw Invalid(message: "expected , or ]")
            }
        }

        /// Checks any JSON value and moves past it.
        mutating func skipValue(depth: Int) throws {
            guard let first = peek else { throw Invalid(message: "truncated") }
            switch first {
            case UInt8(ascii: "{"): try object(depth: depth) { reader, _ in try reader.skipValue(depth: depth + 1) }
            case UInt8(ascii: "["): try array(depth: depth) { reader, _ in try reader.skipValue(depth: depth + 1) }
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "t"): try expect("true")
            case UInt8(ascii: "f"): try expect("false")
            case UInt8(ascii: "n"): try expect("null")
            default: try number()
            }
        }

        /// One enforce request object; nil (with the problem noted) when a field is missing or mistyped.
        mutating func request(item: Int?, problem: inout Problem) throws -> EnforceRequest? {
            var subject: String?
            var tenant: String?
            var resource: String?
            var action: String?
            var explain: Bool?
            // A mistyped or missing field is noted in `problem`; the first note is what the caller throws.
            func name(_ key: String) -> String { item.map { "requests.\($0).\(key)" } ?? key }
            // A member given twice is refused: readers disagree on which one counts (JSONDecoder
            // keeps one, this reader kept the other — found by the differential fuzzer), and an
            // authorization request must mean one thing.
            var seen: UInt8 = 0
            try self.object(depth: item == nil ? 0 : 2) { reader, key in
                if key != .other, !key.mark(&seen) { problem.note("\(name(key.rawValue)) is given more than once") }
                switch key {
                case .subject, .tenant, .resource, .action:
                    guard reader.peek == UInt8(ascii: "\"") else {
                        try reader.skipValue(depth: 3)
                        problem.note("\(name(key.rawValue)) must be a string")
                        return
                    }
                    let value = try reader.string()
                    switch key {
                    case .subject: subject = value
                    case .tenant: tenant = value
                    case .resource: resource = value
                    default: action = value
                    }
                case .explain:
                    explain = try reader.optionalBool(problem: &problem) ?? explain
                default:
                    try reader.skipValue(depth: 3)
                }
            }
            guard let subject else { problem.note("\(name("subject")) is required"); return nil }
            guard let tenant else { problem.note("\(name("tenant")) is required"); return nil }
            guard let resource else { problem.note("\(name("resource")) is required"); return nil }
            guard let action else { problem.note("\(name("action")) is required"); return nil }
            return EnforceRequest(subject: subject, tenant: tenant, resource: resource, action: action, explain: explain)
        }

        /// `true`, `false` or `null` (nil); anything else is noted as `explain must be a boolean`.
        mutating func optionalBool(problem: inout Problem) throws -> Bool? {
            switch peek {
            case UInt8(ascii: "t"):
                try expect("true")
                return true
            case UInt8(ascii: "f"):
                try expect("false")
                return false
            case UInt8(ascii: "n"):
                try expect("null")
                return nil
            default:
                try skipValue(depth: 3)
                problem.note("explain must be a boolean")
                return nil
            }
        }

        /// A key, compared on its raw bytes when it has no escapes.
        mutating func key() throws -> Key {
            let start = index + 1
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 { end += 1 }
            if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
                index = end + 1
                return Self.key(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
            }
            let text = try string()
            return text.utf8.withContiguousStorageIfAvailable { Self.key(UnsafeRawBufferPointer($0)) } ?? Self.key(Array(text.utf8))
        }

        static func key(_ raw: some Collection<UInt8>) -> Key {
            func equals(_ literal: StaticString) -> Bool {
                raw.count == literal.utf8CodeUnitCount
                    && raw.elementsEqual(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
            }
            switch raw.count {
            case 6: return equals("action") ? .action : equals("tenant") ? .tenant : .other
            case 7: return equals("subject") ? .subject : equals("explain") ? .explain : .other
            case 8: return equals("resource") ? .resource : equals("requests") ? .requests : .other
            default: return .other
            }
        }

        mutating func number() throws {
            let start = index
            if index < bytes.count && bytes[index] == UInt8(ascii: "-") { index += 1 }
            var digits = 0
            while index < bytes.count,
                (0x30...0x39).contains(bytes[index]) || bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: "e")
                    || bytes[index] == UInt8(ascii: "E") || bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")
            {
                index += 1
                digits += 1
            }
            guard digits > 0, index > start else { throw Invalid(message: "bad number") }
        }

        mutating func string() throws -> String {
            index += 1
            let start = index
            var plain = true
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    if plain {
                        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                        index += 1
                        return text
                    }
                    break
                }
                if byte < 0x20 { throw Invalid(message: "control character in string") }
                if byte == UInt8(ascii: "\\") {
                    plain = false
                    index += 2
                    continue
                }
                index += 1
            }
            guard !plain else { throw Invalid(message: "unterminated string") }
            // Slow path with escapes.
            index = start
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                if !raw.isEmpty {
                    scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                    raw.removeAll()
                }
            }
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    flush()
                    return String(scalars)
                }
                if byte < 0x20 { throw Invalid(message: "control character in string") }
                if byte != UInt8(ascii: "\\") {
                    raw.append(byte)
                    index += 1
                    continue
                }
                flush()
                guard index + 1 < bytes.count else { throw Invalid(message: "truncated escape") }
                let escape = bytes[index + 1]
                index += 2
                switch escape {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw Invalid(message: "lone surrogate")
                        }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw Invalid(message: "bad surrogate pair") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw Invalid(message: "bad escape") }
                    scalars.append(scalar)
                default:
                    throw Invalid(message: "bad escape")
                }
            }
            throw Invalid(message: "unterminated string")
        }

        mutating func hex4() throws -> UInt32 {
            guard index + 4 <= bytes.count else { throw Invalid(message: "truncated escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt32
                switch byte {
                case 0x30...0x39: digit = UInt32(byte - 0x30)
                case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
                default: throw Invalid(message: "bad hex")
                }
                value = value * 16 + digit
                index += 1
            }
            return value
        }
    }
}
