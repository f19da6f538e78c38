/// `Authorization: Bearer <credential>` as the gateway reads it on every request: the scheme in
/// any case, spaces and tabs around it ignored, one credential of at most 8,192 bytes with no space
/// inside. Byte-level, with no allocation but the answer.
public enum BearerCredential {
    public static let maximumBytes = 8192

    /// The credential, or nil for anything else (the gateway's 401).
    public static func parse(_ header: String) -> String? {
        var header = header
        return header.withUTF8 { bytes -> String? in
            func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
            var start = 0
            var end = bytes.count
            while start < end, isBlank(bytes[start]) { start += 1 }
            while end > start, isBlank(bytes[end - 1]) { end -= 1 }
            for expected in "bearer".utf8 {
                guard start < end, bytes[start] | 0x20 == expected else { return nil }
                start += 1
            }
            guard start < end, isBlank(bytes[start]) else { return nil }
            while start < end, isBlank(bytes[start]) { start += 1 }
            guard start < end, end - start <= Self.maximumBytes else { return nil }
            let credential = UnsafeBufferPointer(rebasing: bytes[start..<end])
            guard !credential.contains(0x20) else { return nil }
            return String(decoding: credential, as: UTF8.self)
        }
    }
}
