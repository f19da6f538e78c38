/// The byte-level request reader of ``MediaRawFastPath``, on its own (Swift's standard library
/// only) so that `fuzz/run.sh` compiles it as is and fuzzes it against llhttp, the parser NIO
/// uses: whatever this reader answers, llhttp must read the same way.

/// The validators and range of a mount request.
struct MountConditions {
    var ifNoneMatch: String?
    var ifModifiedSince: String?
    var range: String?
    var ifRange: String?
}

/// A request as ``MediaRawFastPath`` reads it from bytes.
struct RawRequest {
    /// A head longer than this is not answered here.
    static let maxHead = 16 * 1024

    var isHead: Bool
    /// The target's path (without its query), never `%`-escaped.
    var path: String
    var keepAlive = true
    var requestID: String?
    var conditions = MountConditions()

    enum Parsed {
        /// The head has not ended yet.
        case incomplete
        /// Something this reader does not answer: NIO's parser and the router take it.
        case other
        /// A complete request without a body, `length` bytes long.
        case request(RawRequest, length: Int)
    }

    /// Token characters of a header name (RFC 9110 §5.6.2).
    static let tchar: [Bool] = (0..<256).map { byte in
        let c = UInt8(byte)
        return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "!#$&'*+-.^_`|~".utf8.contains(c)
    }
    /// Characters of a target answered here: unreserved, sub-delims, `:@/?` (no `%`, no `\`).
    static let targetChar: [Bool] = (0..<256).map { byte in
        let c = UInt8(byte)
        return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "-._~!$&'()*+,;=:@/?".utf8.contains(c)
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> Parsed {
        let count = bytes.count
        // The request line.
        var index = 0
        let isHead: Bool
        if count >= 4, bytes[0] == UInt8(ascii: "G"), bytes[1] == UInt8(ascii: "E"), bytes[2] == UInt8(ascii: "T"), bytes[3] == UInt8(ascii: " ") {
            isHead = false
            index = 4
        } else if count >= 5, bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "E"), bytes[2] == UInt8(ascii: "A"),
            bytes[3] == UInt8(ascii: "D"), bytes[4] == UInt8(ascii: " ")
        {
            isHead = true
            index = 5
        } else {
            let started = "GET ".utf8.starts(with: bytes) || "HEAD ".utf8.starts(with: bytes)
            return started ? .incomplete : .other
        }
        let targetStart = index
        var queryStart: Int?
        while index < count, bytes[index] != UInt8(ascii: " ") {
            let c = bytes[index]
            guard Self.targetChar[Int(c)] else { return .other }
            if c == UInt8(ascii: "?"), queryStart == nil { queryStart = index }
            index += 1
        }
        guard index < count else { return count > Self.maxHead ? .other : .incomplete }
        let pathEnd = queryStart ?? index
        guard pathEnd > targetStart, bytes[targetStart] == UInt8(ascii: "/") else { return .other }
        let path = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<pathEnd]), as: UTF8.self)
        index += 1
        let version = "HTTP/1.1\r\n".utf8
        guard count - index >= version.count else { return .incomplete }
        guard version.elementsEqual(bytes[index..<(index + version.count)]) else { return .other }
        index += version.count

        var request = RawRequest(isHead: isHead, path: path)
        var hosts = 0
        var lengths = 0
        var fields = 0
        while true {
            guard index + 1 < count else { return .incomplete }
            if bytes[index] == UInt8(ascii: "\r") {
                guard bytes[index + 1] == UInt8(ascii: "\n") else { return .other }
                index += 2
                break
            }
            fields += 1
            guard fields <= 100 else { return .other }
            let nameStart = index
            while index < count, Self.tchar[Int(bytes[index])] { index += 1 }
            guard index < count else { return .incomplete }
            guard index > nameStart, bytes[index] == UInt8(ascii: ":") else { return .other }
            let nameEnd = index
            index += 1
            while index < count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t") { index += 1 }
            let valueStart = index
            var valueEnd = index
            while index < count, bytes[index] != UInt8(ascii: "\r") {
                let c = bytes[index]
                guard (c >= 0x20 && c < 0x7F) || c == UInt8(ascii: "\t") else { return .other }
                index += 1
                if c != UInt8(ascii: " ") && c != UInt8(ascii: "\t") { valueEnd = index }
            }
            guard index + 1 < count else { return .incomplete }
            guard bytes[index + 1] == UInt8(ascii: "\n") else { return .other }
            index += 2
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameEnd])
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            func named(_ candidate: StaticString) -> Bool {
                guard candidate.utf8CodeUnitCount == name.count else { return false }
                let expected = UnsafeRawBufferPointer(start: candidate.utf8Start, count: candidate.utf8CodeUnitCount)
                return zip(name, expected).allSatisfy { ($0 | 0x20) == $1 }
            }
            func text() -> String { String(decoding: value, as: UTF8.self) }
            /// Sets a header that may appear once; false when it is repeated.
            func once(_ field: WritableKeyPath<RawRequest, String?>) -> Bool {
                guard request[keyPath: field] == nil else { return false }
                request[keyPath: field] = text()
                return true
            }
            switch name.count {
            case 4 where named("host"):
                hosts += 1
            case 5 where named("range"):
                guard once(\.conditions.range) else { return .other }
            case 8 where named("if-range"):
                guard once(\.conditions.ifRange) else { return .other }
            case 13 where named("if-none-match"):
                guard once(\.conditions.ifNoneMatch) else { return .other }
            case 17 where named("if-modified-since"):
                guard once(\.conditions.ifModifiedSince) else { return .other }
            case 12 where named("x-request-id"):
                guard once(\.requestID) else { return .other }
            case 14 where named("content-length"):
                lengths += 1
                guard lengths == 1, value.count == 1, value[0] == UInt8(ascii: "0") else { return .other }
            case 10 where named("connection"):
                for token in text().split(separator: ",") {
                    switch token.trimmingSpaces.lowercased() {
                    case "close": request.keepAlive = false
                    case "keep-alive": break
                    default: return .other
                    }
                }
            case 17 where named("transfer-encoding"), 7 where named("upgrade"), 6 where named("expect"):
                return .other
            default:
                break
            }
        }
        guard hosts == 1 else { return .other }
        return .request(request, length: index)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
