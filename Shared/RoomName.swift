/// Room names: LiveKit's safe alphabet, 1 to 128 characters — anything else names no room here (404).
///
/// Rooms are named per app: the LiveKit room behind room `main` of app `A` is `A.main`, so two
/// tenants' rooms never collide and no tenant learns another's room names. App ids hold no `.`
/// (they are UUIDs), so the first `.` separates the two.
public enum RoomName {
    /// The LiveKit room of `room` in app `appId`.
    public static func livekit(appId: String, room: String) -> String {
        "\(appId).\(room)"
    }

    /// The app and room a LiveKit room name stands for; nil for a name not made by ``livekit(appId:room:)``.
    public static func split(_ livekitName: String) -> (appId: String, room: String)? {
        guard let dot = livekitName.firstIndex(of: ".") else { return nil }
        let appId = String(livekitName[..<dot])
        let room = String(livekitName[livekitName.index(after: dot)...])
        guard !appId.isEmpty, Self.isValid(room) else { return nil }
        return (appId, room)
    }

    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
            && name != "." && name != ".."
    }
}
