import NIOCore
import ServiceKit
import Shared

/// Reads enforce bodies straight from bytes. Decisions are the service's hot path and
/// Foundation's `JSONDecoder` was a fifth of a batch's cost; the shapes are fixed and small.
/// Errors carry the same messages `decodeJSON` gives (`subject is required`, …).
enum EnforceBodyParser {
    indirect enum Value {
        case string(String)
        case number
        case bool(Bool)
        case null
        case array([Value])
        case object([(String, Value)])
    }

    struct Invalid: Error {
        var message: String
    }

    static func parseRequest(_ buffer: ByteBuffer) throws -> EnforceRequest {
        try self.request(from: self.parse(buffer), path: "body")
    }

    static func parseBatch(_ buffer: ByteBuffer) throws -> (requests: [EnforceRequest], explain: Bool) {
        guard case .object(let fields) = try self.parse(buffer) else { throw ServiceError.badRequest("body must be of type object") }
        var requests: [EnforceRequest]?
        var explain = false
        for (key, value) in fields {
            switch key {
            case "requests":
                guard case .array(let items) = value else { throw ServiceError.badRequest("requests must be of type Array") }
                requests = try items.enumerated().map { try self.request(from: $0.element, path: "requests.\($0.offset)") }
            case "explain":
                explain = try self.optionalBool(value, name: "explain") ?? explain
            default:
                continue
            }
        }
        guard let requests else { throw ServiceError.badRequest("requests is required") }
        return (requests, explain)
    }

    static func optionalBool(_ value: Value, name: String) throws -> Bool? {
        switch value {
        case .bool(let flag): return flag
        case .null: return nil
        default: throw ServiceError.badRequest("\(name) must be of type Bool")
        }
    }

    static func request(from value: Value, path: String) throws -> EnforceRequest {
        guard case .object(let fields) = value else { throw ServiceError.badRequest("\(path) must be of type object") }
        var strings: [String: String] = [:]
        var explain: Bool?
        for (key, value) in fields {
            switch key {
            case "subject", "tenant", "resource", "action":
                guard case .string(let s) = value else {
                    let where_ = path == "body" ? key : "\(path).\(key)"
                    throw ServiceError.badRequest("\(where_) must be of type String")
                }
                strings[key] = s
            case "explain":
                explain = try self.optionalBool(value, name: "explain") ?? explain
            default:
                continue
            }
        }
        for key in ["subject", "tenant", "resource", "action"] where strings[key] == nil {
            throw ServiceError.badRequest(path == "body" ? "\(key) is required" : "\(path).\(key) is required")
        }
        return EnforceRequest(
            subject: strings["subject"]!, tenant: strings["tenant"]!, resource: strings["resource"]!, action: strings["action"]!, explain: explain)
    }

    static func parse(_ buffer: ByteBuffer) throws -> Value {
        guard buffer.readableBytes > 0 else { throw ServiceError.badRequest("Request body is required") }
        return try buffer.withUnsafeReadableBytes { bytes in
            var reader = Reader(bytes: bytes)
            do {
                reader.skipWhitespace()
                let value = try reader.value(depth: 0)
                reader.skipWhitespace()
                guard reader.index == bytes.count else { throw Invalid(message: "trailing characters") }
                return value
            } catch is Invalid {
                throw ServiceError.badRequest("Request body is not valid JSON")
            }
        }
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

        mutating func value(depth: Int) throws -> Value {
            guard depth < 64 else { throw Invalid(message: "too deep") }
            guard index < bytes.count else { throw Invalid(message: "truncated") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var fields: [(String, Value)] = []
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(fields)
                }
                while true {
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Invalid(message: "expected a key") }
                    let key = try string()
                    skipWhitespace()
                    try expect(":")
                    skipWhitespace()
                    fields.append((key, try value(depth: depth + 1)))
                    skipWhitespace()
                    guard index < bytes.count else { throw Invalid(message: "truncated") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(fields) }
                    throw Invalid(message: "expected , or }")
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [Value] = []
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(items)
                }
                while true {
                    skipWhitespace()
                    items.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard index < bytes.count else { throw Invalid(message: "truncated") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                    throw Invalid(message: "expected , or ]")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            default:
                try number()
                return .number
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
