import Foundation
import Shared
import Synchronization

/// Encodes a ``Principal`` for the `X-StreamHub-Principal` header: base64url of its JSON.
///
/// Both directions are memoized (a few thousand callers at most are live at once): the gateway
/// encodes the same principal for every request of a caller, and each service decodes the same
/// header text, so JSON and base64 run once per caller, not per request.
public enum PrincipalHeader {
    static let capacity = 10_000
    static let encoded = Mutex<[Principal: String]>([:])
    static let decoded = Mutex<[String: Principal]>([:])

    public static func encode(_ principal: Principal) -> String {
        if let known = Self.encoded.withLock({ $0[principal] }) { return known }
        let data = (try? JSONEncoder().encode(principal)) ?? Data()
        let header = Base64URL.encode(data)
        Self.encoded.withLock { memo in
            if memo.count >= Self.capacity { memo.removeAll(keepingCapacity: true) }
            memo[principal] = header
        }
        return header
    }

    public static func decode(_ header: String) -> Principal? {
        guard header.utf8.count <= 4096 else { return nil }
        if let known = Self.decoded.withLock({ $0[header] }) { return known }
        guard let data = Base64URL.decode(header), let principal = try? JSONDecoder().decode(Principal.self, from: data) else { return nil }
        Self.decoded.withLock { memo in
            if memo.count >= Self.capacity { memo.removeAll(keepingCapacity: true) }
            memo[header] = principal
        }
        return principal
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
