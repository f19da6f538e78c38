import Crypto
import Foundation
import ServiceKit
import Shared

/// The LiveKit server and key pair (`LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`).
public struct LiveKitSettings: Sendable {
    public var url: String
    public var apiKey: String
    public var apiSecret: String
    /// Lifetime of play and publisher tokens, seconds.
    public var playTokenTTL: Int

    public init(url: String, apiKey: String, apiSecret: String, playTokenTTL: Int = 3600) {
        self.url = url
        self.apiKey = apiKey
        self.apiSecret = apiSecret
        self.playTokenTTL = playTokenTTL
    }
}

/// LiveKit access tokens: HS256 JWTs signed with the API secret, `iss` the API key, `sub` the
/// participant identity, `nbf`/`exp`, and a `video` grant. Every permission is written out —
/// LiveKit grants what a token leaves out — so a viewer's says `canPublish: false`.
public struct LiveKitTokens: Sendable {
    let settings: LiveKitSettings
    let key: SymmetricKey

    public init(settings: LiveKitSettings) {
        self.settings = settings
        self.key = SymmetricKey(data: Array(settings.apiSecret.utf8))
    }

    struct VideoGrant: Encodable {
        var room: String
        var roomJoin: Bool
        var canSubscribe: Bool
        var canPublish: Bool
        var canPublishData: Bool
    }

    struct Claims: Encodable {
        var iss: String
        var sub: String
        var jti: String
        var nbf: Int64
        var exp: Int64
        var name: String
        var video: VideoGrant
    }

    /// A subscribe-only token for a fresh random viewer (LiveKit drops a second join with the same identity).
    /// `url`: the node serving the room (default: `LIVEKIT_URL`).
    public func viewer(appId: String, room: String, url: String? = nil, now: Date) -> LiveKitGrant {
        self.mint(appId: appId, room: room, identity: "viewer-" + UUID().uuidString.lowercased(), publish: false, url: url, now: now)
    }

    /// A token that may publish into `room`.
    public func publisher(appId: String, room: String, identity: String, url: String? = nil, now: Date) -> LiveKitGrant {
        self.mint(appId: appId, room: room, identity: identity, publish: true, url: url, now: now)
    }

    /// The token's grant names the app's LiveKit room (``RoomName/livekit(appId:room:)``); the answer
    /// names the room as the app knows it.
    func mint(appId: String, room: String, identity: String, publish: Bool, url: String?, now: Date) -> LiveKitGrant {
        let issued = Int64(now.timeIntervalSince1970)
        let exp = issued + Int64(self.settings.playTokenTTL)
        let claims = Claims(
            iss: self.settings.apiKey, sub: identity, jti: identity, nbf: issued, exp: exp, name: identity,
            video: VideoGrant(room: RoomName.livekit(appId: appId, room: room), roomJoin: true, canSubscribe: true, canPublish: publish, canPublishData: publish))
        let header = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode((try? JSONEncoder().encode(claims)) ?? Data())
        let signature = HMAC<SHA256>.authenticationCode(for: Data("\(header).\(payload)".utf8), using: self.key)
        return LiveKitGrant(
            token: "\(header).\(payload).\(Base64URL.encode(Data(signature)))", url: url ?? self.settings.url, room: room, identity: identity,
            expiresAt: Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(exp))))
    }
}

