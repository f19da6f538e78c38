import Foundation

// The request headers the media mounts read from any client (`Range`, `If-Modified-Since`,
// `If-Range`). Foundation only, so the fuzz harness (`fuzz/`) compiles this file as it is.

/// One `Range: bytes=…` header against a file of `size` bytes (RFC 9110 §14).
enum ByteRange: Equatable {
    case single(ClosedRange<Int>)
    /// Not a byte range we serve partially (another unit, several ranges, malformed): the whole file.
    case whole
    case unsatisfiable

    static func parse(_ header: String, size: Int) -> ByteRange {
        let value = header.trimmingCharacters(in: .whitespaces)
        guard value.lowercased().hasPrefix("bytes=") else { return .whole }
        let specs = value.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false)
        guard specs.count == 1, let spec = specs.first?.trimmingCharacters(in: .whitespaces), let dash = spec.firstIndex(of: "-") else {
            return .whole
        }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            // The last N bytes.
            guard let count = Int(last), count >= 0, last.allSatisfy(\.isNumber) else { return .whole }
            guard count > 0, size > 0 else { return .unsatisfiable }
            return .single(max(0, size - count)...(size - 1))
        }
        guard first.allSatisfy(\.isNumber), let start = Int(first) else { return .whole }
        guard start < size else { return .unsatisfiable }
        if last.isEmpty { return .single(start...(size - 1)) }
        guard last.allSatisfy(\.isNumber), let end = Int(last), end >= start else { return .whole }
        return .single(start...min(end, size - 1))
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only HTTP date format we send; formatted and
/// parsed with the C library (every file answer carries one: no `DateFormatter` per request).
enum HTTPDate {
    static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // The year always in four digits (strftime's %Y writes 533 for the year 533, which no
        // reader of IMF-fixdate, this one included, accepts).
        let year = min(max(Int(parts.tm_year) + 1900, 0), 9999)
        let weekday = Self.weekdays[Int(parts.tm_wday) % 7]
        return "\(weekday), \(Self.twoDigits(parts.tm_mday)) \(Self.months[Int(parts.tm_mon) % 12]) \(Self.fourDigits(year)) "
            + "\(Self.twoDigits(parts.tm_hour)):\(Self.twoDigits(parts.tm_min)):\(Self.twoDigits(parts.tm_sec)) GMT"
    }

    static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]

    static func twoDigits(_ value: Int32) -> String {
        value < 10 ? "0\(value)" : String(value)
    }

    static func fourDigits(_ value: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Parses an IMF-fixdate; anything else (another format, a sign, a year that is not four
    /// digits) is nil. Every field is read as bounded digits first, so no client value can overflow
    /// the arithmetic below (`-2147483648` as a year once trapped here).
    static func parse(_ text: String) -> Date? {
        let fields = text.trimmingCharacters(in: .whitespaces).split(separator: " ")
        guard fields.count == 6, fields[0].hasSuffix(","), fields[5] == "GMT", let day = Self.digits(fields[1], count: 2),
            let month = Self.months.firstIndex(of: String(fields[2])), let year = Self.digits(fields[3], count: 4)
        else { return nil }
        let clockFields = fields[4].split(separator: ":", omittingEmptySubsequences: false)
        let clock = clockFields.compactMap { Self.digits($0, count: 2) }
        guard clockFields.count == 3, clock.count == 3, (1...31).contains(day), (0...23).contains(clock[0]), (0...59).contains(clock[1]),
            (0...60).contains(clock[2])
        else {
            return nil
        }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = Int32(month)
        parts.tm_mday = day
        parts.tm_hour = clock[0]
        parts.tm_min = clock[1]
        parts.tm_sec = clock[2]
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    /// Exactly `count` ASCII digits, as a number.
    static func digits(_ text: Substring, count: Int) -> Int32? {
        guard text.utf8.count == count, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return text.utf8.reduce(Int32(0)) { $0 * 10 + Int32($1 - 0x30) }
    }
}
