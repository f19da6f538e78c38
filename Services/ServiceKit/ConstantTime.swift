import Crypto

/// Lower-case hex SHA-256: how high-entropy secrets (API tokens) are stored and looked up.
public enum SecretDigest {
    public static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// Secret comparison whose running time does not depend on where the inputs differ.
public enum ConstantTime {
    /// Compares two byte strings in time that depends only on their lengths.
    public static func equals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        var difference: UInt8 = lhs.count == rhs.count ? 0 : 1
        // Always walk the expected length so a short guess takes as long as a long one.
        var left = lhs.makeIterator()
        var right = rhs.makeIterator()
        for _ in 0..<Swift.max(lhs.count, rhs.count) {
            let a = left.next() ?? 0
            let b = right.next() ?? 0
            difference |= a ^ b
        }
        return difference == 0
    }

    public static func equals(_ lhs: String, _ rhs: String) -> Bool {
        self.equals(Array(lhs.utf8), Array(rhs.utf8))
    }
}
