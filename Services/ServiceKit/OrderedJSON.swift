import NIOCore
import Shared

/// JSON objects written with their keys in a fixed order.
///
/// Foundation's `JSONEncoder` on Linux does not keep declaration order, and the overview shows
/// the error body and the health body in a precise order (`statusCode, message, error`), which
/// clients comparing text rely on.
public enum OrderedJSON {
    public enum Value {
        case string(String)
        case int(Int)
        case bool(Bool)
        case null
    }

    public static func object(_ fields: [(String, Value)]) -> ByteBuffer {
        var out = "{"
        for (index, (key, value)) in fields.enumerated() {
            if index > 0 { out += "," }
            Self.appendString(key, to: &out)
            out += ":"
            switch value {
            case .string(let text): Self.appendString(text, to: &out)
            case .int(let number): out += String(number)
            case .bool(let flag): out += flag ? "true" : "false"
            case .null: out += "null"
            }
        }
        out += "}"
        return ByteBuffer(string: out)
    }

    /// A JSON array of strings.
    public static func array(_ values: [String]) -> ByteBuffer {
        var out = "["
        for (index, value) in values.enumerated() {
            if index > 0 { out += "," }
            Self.appendString(value, to: &out)
        }
        out += "]"
        return ByteBuffer(string: out)
    }

    /// RFC 8259 string escaping.
    static func appendString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// `{"statusCode":…,"message":…,"error":…[,"retryAfterSeconds":…][,"totpRequired":true][,"permission":…]}`
    public static func encode(_ body: ErrorBody) -> ByteBuffer {
        var fields: [(String, Value)] = [("statusCode", .int(body.statusCode)), ("message", .string(body.message)), ("error", .string(body.error))]
        if let retry = body.retryAfterSeconds { fields.append(("retryAfterSeconds", .int(retry))) }
        if let totp = body.totpRequired { fields.append(("totpRequired", .bool(totp))) }
        if let permission = body.permission { fields.append(("permission", .string(permission))) }
        return Self.object(fields)
    }

    /// `{"status":…,"up":…,"version":…,"ts":…,"uptimeSeconds":…}`
    public static func encode(_ health: HealthStatus) -> ByteBuffer {
        Self.object([
            ("status", .string(health.status)), ("up", .bool(health.up)), ("version", .string(health.version)), ("ts", .string(health.ts)),
            ("uptimeSeconds", .int(health.uptimeSeconds)),
        ])
    }
}
