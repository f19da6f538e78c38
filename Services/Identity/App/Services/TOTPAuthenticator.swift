import Crypto
import Foundation
import ServiceKit

/// RFC 6238 TOTP as authenticator apps speak it: HMAC-SHA-1, 6 digits, 30 s steps, a secret of 20
/// random bytes shown in base32. A code is accepted for the current step and one either side.
public struct TOTPAuthenticator: Sendable {
    public static let digits = 6
    public static let period: Int64 = 30
    public static let skew: Int64 = 1

    /// 20 random bytes (160 bits, RFC 4226's recommendation).
    public static func newSecret() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<20).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The time step of `date`.
    public static func step(_ date: Date) -> Int64 {
        Int64(date.timeIntervalSince1970.rounded(.down)) / Self.period
    }

    /// The code of `secret` at time step `step`, zero-padded.
    public static func code(secret: [UInt8], step: Int64) -> String {
        var counter = UInt64(step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Array($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let value = (UInt32(mac[offset] & 0x7F) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        let code = String(value % 1_000_000)
        return String(repeating: "0", count: Self.digits - code.count) + code
    }

    /// The step whose code `code` is, within ±1 step of `now`; nil when none (compared in constant time).
    public static func matchingStep(secret: [UInt8], code: String, now: Date) -> Int64? {
        let trimmed = code.filter { $0 != " " }
        guard trimmed.count == Self.digits, trimmed.allSatisfy(\.isASCII), trimmed.allSatisfy(\.isNumber) else { return nil }
        let current = Self.step(now)
        var found: Int64?
        for step in (current - Self.skew)...(current + Self.skew) where ConstantTime.equals(Self.code(secret: secret, step: step), trimmed) {
            found = found ?? step
        }
        return found
    }

    /// `otpauth://totp/StreamHub:<email>?secret=…&issuer=StreamHub&algorithm=SHA1&digits=6&period=30`.
    public static func uri(secret: [UInt8], account: String, issuer: String = "StreamHub") -> String {
        let label = "\(issuer):\(account)".addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: ":@"))) ?? account
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=\(issuer)&algorithm=SHA1&digits=\(Self.digits)&period=\(Self.period)"
    }
}

/// RFC 4648 base32 without padding (what authenticator apps read).
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(Self.alphabet[Int((buffer >> UInt32(bits - 5)) & 0x1F)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(Self.alphabet[Int((buffer << UInt32(5 - bits)) & 0x1F)]) }
        return String(decoding: output, as: UTF8.self)
    }
}

/// TOTP secrets must be readable to compute codes, so they are not hashed but sealed at rest:
/// AES-GCM under a key derived (HKDF-SHA256) from `STREAMHUB_JWT_SECRET`. A database dump alone
/// does not reveal them.
public struct SecretSealer: Sendable {
    let key: SymmetricKey

    public init(secret: String) {
        self.key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Array(secret.utf8)), info: Array("streamhub totp secret v1".utf8), outputByteCount: 32)
    }

    public func seal(_ plain: [UInt8]) throws -> String {
        guard let combined = try AES.GCM.seal(plain, using: self.key).combined else { throw CryptoKitError.incorrectParameterSize }
        return combined.base64EncodedString()
    }

    public func open(_ sealed: String) throws -> [UInt8] {
        guard let data = Data(base64Encoded: sealed) else { throw CryptoKitError.incorrectParameterSize }
        return Array(try AES.GCM.open(try AES.GCM.SealedBox(combined: data), using: self.key))
    }
}
