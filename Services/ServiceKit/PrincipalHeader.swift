import Foundation
import Shared

/// Encodes a ``Principal`` for the `X-StreamHub-Principal` header: base64url of its JSON.
public enum PrincipalHeader {
    public static func encode(_ principal: Principal) -> String {
        let data = (try? JSONEncoder().encode(principal)) ?? Data()
        return Base64URL.encode(data)
    }

    public static func decode(_ header: String) -> Principal? {
        guard header.utf8.count <= 4096, let data = Base64URL.decode(header) else { return nil }
        return try? JSONDecoder().decode(Principal.self, from: data)
    }
}

/// RFC 4648 §5 base64url without padding.
public enum Base64URL {
    public static func encode(_ data: some Collection<UInt8>) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: some StringProtocol) -> Data? {
        let valid = text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
        }
        guard valid else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let remainder = base64.utf8.count % 4
        if remainder == 1 { return nil }
        if remainder > 0 { base64 += String(repeating: "=", count: 4 - remainder) }
        return Data(base64Encoded: base64)
    }
}
