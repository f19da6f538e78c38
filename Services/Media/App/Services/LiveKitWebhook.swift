import Crypto
import Foundation
import ServiceKit
import Shared

/// Checks LiveKit's webhook signature the way LiveKit's own `WebhookReceiver` does: the
/// `Authorization` header is a bare JWT (no `Bearer `), HS256 with the API secret, `iss` the API
/// key, not expired and not before its `nbf`, whose `sha256` claim is the padded standard base64 of
/// SHA-256 over the bytes received (never over a re-encoding).
public struct LiveKitWebhookVerifier: Sendable {
    let apiKey: String
    let key: SymmetricKey
    /// Clock skew tolerated on `exp` and `nbf`.
    let leeway: TimeInterval

    public init(settings: LiveKitSettings, leeway: TimeInterval = 10) {
        self.apiKey = settings.apiKey
        self.key = SymmetricKey(data: Array(settings.apiSecret.utf8))
        self.leeway = leeway
    }

    struct Header: Decodable {
        var alg: String
    }

    struct Claims: Decodable {
        var iss: String?
        var exp: Double?
        var nbf: Double?
        var sha256: String?
    }

    /// - Throws: ``ServiceError`` 401 naming what is wrong (never the token itself).
    public func verify(authorization: String?, body: some Collection<UInt8>, now: Date) throws {
        guard let token = authorization?.trimmingCharacters(in: .whitespaces), !token.isEmpty else {
            throw Self.refused("Missing webhook signature (Authorization header)")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= 8192, parts.count == 3, let headerData = Base64URL.decode(parts[0]), let payload = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2])
        else {
            throw Self.refused("Webhook signature is not a JWT")
        }
        guard let header = try? JSONDecoder().decode(Header.self, from: headerData), header.alg == "HS256" else {
            throw Self.refused("Webhook signature must be HS256")
        }
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Data("\(parts[0]).\(parts[1])".utf8), using: self.key) else {
            throw Self.refused("Invalid webhook signature")
        }
        guard let claims = try? JSONDecoder().decode(Claims.self, from: payload) else { throw Self.refused("Invalid webhook signature") }
        guard claims.iss == self.apiKey else { throw Self.refused("Webhook signed for another API key") }
        let seconds = now.timeIntervalSince1970
        guard let exp = claims.exp, exp + self.leeway > seconds else { throw Self.refused("Webhook signature has expired") }
        if let nbf = claims.nbf, nbf - self.leeway > seconds { throw Self.refused("Webhook signature is not valid yet") }
        let digest = Data(SHA256.hash(data: Array(body))).base64EncodedString()
        guard let claimed = claims.sha256, ConstantTime.equals(claimed, digest) else {
            throw Self.refused("Webhook body does not match its signature")
        }
    }

    static func refused(_ message: String) -> ServiceError {
        ServiceError(.unauthorized, message: message)
    }
}

/// The parts of LiveKit's `WebhookEvent` (protobuf JSON: lowerCamel names, int64 as strings, zero
/// values omitted) that stream state depends on. Everything else is ignored.
public struct LiveKitEvent: Decodable, Sendable {
    public struct Room: Decodable, Sendable {
        public var sid: String?
        public var name: String?
    }

    public struct Permission: Decodable, Sendable {
        public var canPublish: Bool?
    }

    public struct Participant: Decodable, Sendable {
        public var sid: String?
        public var identity: String?
        public var permission: Permission?
    }

    public struct Track: Decodable, Sendable {
        public var sid: String?
    }

    public var event: String
    public var id: String?
    /// Seconds since 1970, as a string (int64) or a number.
    public var createdAt: Int64?
    public var room: Room?
    public var participant: Participant?
    public var track: Track?

    enum CodingKeys: String, CodingKey {
        case event, id, createdAt, room, participant, track
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.event = try container.decode(String.self, forKey: .event)
        self.id = try container.decodeIfPresent(String.self, forKey: .id)
        if let text = try? container.decodeIfPresent(String.self, forKey: .createdAt) {
            self.createdAt = Int64(text)
        } else {
            self.createdAt = try? container.decodeIfPresent(Int64.self, forKey: .createdAt)
        }
        self.room = try container.decodeIfPresent(Room.self, forKey: .room)
        self.participant = try container.decodeIfPresent(Participant.self, forKey: .participant)
        self.track = try container.decodeIfPresent(Track.self, forKey: .track)
    }

    /// A participant that only watches: one of our play-token viewers, or anyone whose permission
    /// LiveKit reports without `canPublish` (protobuf JSON omits false).
    public var isViewer: Bool {
        guard let participant = self.participant else { return false }
        if participant.identity?.hasPrefix("viewer-") == true { return true }
        if let permission = participant.permission { return permission.canPublish != true }
        return false
    }
}
