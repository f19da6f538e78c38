import Foundation

/// Text a user wrote, as mail quotes it: on one line, at most ``nameLimit`` characters, and never a
/// link — a tenant named "URGENT: verify your account at https://evil.example" must not make our
/// mail carry the attacker's link or instructions that look like ours.
enum MailText {
    static let nameLimit = 60
    static let removedLink = "[link removed]"

    /// `value` in double quotes: control, format and line-separator characters become spaces,
    /// white space runs collapse, words that a mail client could turn into a link (a scheme, `www.`,
    /// an `@`, or a host name such as `evil.example`) become "[link removed]", inner double quotes
    /// become single ones, and past ``nameLimit`` characters it ends in "…".
    static func quoted(_ value: String) -> String {
        let flattened = String(
            String.UnicodeScalarView(
                value.unicodeScalars.map { scalar in
                    switch scalar.properties.generalCategory {
                    case .control, .format, .lineSeparator, .paragraphSeparator: " "
                    default: scalar == "\"" ? "'" : scalar
                    }
                }))
        // A combining mark first would join our opening quote (fuzzing found `"` + U+07F1), and
        // hide a word's start from the link check: gone before the words are read.
        let unmarked = flattened.unicodeScalars.drop(while: { Self.isMark($0) || $0.properties.isWhitespace })
        let words = String(String.UnicodeScalarView(unmarked)).split(whereSeparator: { $0.isWhitespace }).map {
            self.isLinkLike($0) ? self.removedLink : String($0)
        }
        var text = words.joined(separator: " ")
        if text.count > self.nameLimit { text = String(text.prefix(self.nameLimit - 1)).trimmingCharacters(in: .whitespaces) + "…" }
        return "\"\(text)\""
    }

    static func isMark(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: true
        default: false
        }
    }

    /// Whether a client might make `word` a link: `scheme:` followed by `//`, `www.`, an `@`, or a
    /// dot between a letter or digit and two letters (`evil.example`, `a.co`).
    static func isLinkLike(_ word: Substring) -> Bool {
        let lower = word.lowercased()
        if lower.contains("://") || lower.contains("www.") || lower.contains("@") || lower.hasPrefix("mailto:") { return true }
        let scalars = Array(lower.unicodeScalars)
        for index in scalars.indices.dropFirst() where scalars[index] == "." {
            let before = scalars[index - 1]
            guard before.properties.isAlphabetic || before.properties.numericType != nil else { continue }
            let next = scalars[(index + 1)...].prefix(2)
            if next.count == 2, next.allSatisfy({ $0.properties.isAlphabetic }) { return true }
        }
        return false
    }
}
