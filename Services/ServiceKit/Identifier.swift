import Foundation

/// The one grammar of every identifier a client or operator writes: subjects, roles, tenants,
/// resources, actions, names, app and room names (emails add their own rules on top).
///
/// An identifier is 1 to ``maxBytes`` bytes of UTF-8 with no control character (U+0000–U+001F,
/// U+007F–U+009F, U+2028, U+2029), no U+FFFD (what invalid UTF-8 decodes to) and no leading or
/// trailing white space. Anything else is a 400 naming the field: what is acknowledged is exactly
/// what is stored. Commas, quotes and other punctuation are allowed — Casbin CSV import quotes them
/// and every API path takes them the same way.
public enum Identifier {
    /// The longest identifier, in UTF-8 bytes.
    public static let maxBytes = 256

    /// - Returns: `value`, unchanged.
    /// - Throws: ``ServiceError`` 400 whose message names `field` and the rule broken.
    @discardableResult
    public static func validate(_ value: String, field: String, wildcard: Bool = false) throws -> String {
        if let problem = self.problem(value, wildcard: wildcard) {
            throw ServiceError.badRequest("\(field) \(problem)")
        }
        return value
    }

    /// What is wrong with `value`, or nil when it is a valid identifier.
    public static func problem(_ value: String, wildcard: Bool = false) -> String? {
        if value.isEmpty { return "must not be empty" }
        if value.utf8.count > self.maxBytes { return "must be at most \(self.maxBytes) bytes (got \(value.utf8.count))" }
        for scalar in value.unicodeScalars {
            switch scalar.value {
            case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029:
                return "must not contain control characters (found U+\(String(format: "%04X", scalar.value)))"
            case 0xFFFD:
                return "must be valid UTF-8"
            default: continue
            }
        }
        if let first = value.unicodeScalars.first, let last = value.unicodeScalars.last,
            first.properties.isWhitespace || last.properties.isWhitespace
        {
            return "must not begin or end with white space"
        }
        if !wildcard && value == "*" { return "must not be * (the wildcard is reserved)" }
        return nil
    }
}

/// Email addresses: normalised (trimmed, lower-cased) and then checked, so one address is one
/// account however it is typed.
public enum EmailAddress {
    /// The longest address (RFC 5321's path limit).
    public static let maxBytes = 254

    /// - Returns: the normalised address.
    /// - Throws: ``ServiceError`` 400 naming `field`.
    public static func normalize(_ value: String, field: String = "email") throws -> String {
        let normalized = value.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        try Identifier.validate(normalized, field: field)
        guard normalized.utf8.count <= self.maxBytes else {
            throw ServiceError.badRequest("\(field) must be at most \(self.maxBytes) bytes")
        }
        let parts = normalized.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
            !normalized.unicodeScalars.contains(where: { $0.properties.isWhitespace })
        else {
            throw ServiceError.badRequest("\(field) must be an email address like name@example.com")
        }
        return normalized
    }
}
