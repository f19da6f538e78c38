// Text a client writes that we read or repeat: the Authorization header's Bearer credential (every
// request), names quoted into mail (MailText), and LiveKit room names split back into app and room
// (webhooks from LiveKit).
import Foundation
import Shared

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzText(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    switch data[0] % 3 {
    case 0:
        // A credential is one blank-free word of at most 8,192 bytes, and reads back the same.
        if let credential = BearerCredential.parse(text) {
            guard !credential.isEmpty, credential.utf8.count <= BearerCredential.maximumBytes, !credential.utf8.contains(0x20),
                credential.utf8.first != 0x09, credential.utf8.last != 0x09
            else { fatalError("credential \(credential.debugDescription) from \(text.debugDescription)") }
            guard BearerCredential.parse("Bearer " + credential) == credential else {
                fatalError("credential \(credential.debugDescription) does not read back")
            }
        }
    case 1:
        // Quoted: one line in double quotes, at most 60 characters inside, no control or format
        // characters, and no word a mail client could turn into a link.
        let quoted = MailText.quoted(text)
        let scalars = quoted.unicodeScalars
        guard scalars.count >= 2, scalars.first == "\"", scalars.last == "\"", quoted.first == "\"" else {
            fatalError("not quoted: \(quoted.debugDescription)")
        }
        let inner = String(String.UnicodeScalarView(scalars.dropFirst().dropLast()))
        guard inner.count <= MailText.nameLimit, !inner.contains("\"") else { fatalError("inner text \(inner.debugDescription)") }
        for scalar in inner.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator: fatalError("\(scalar.debugDescription) in \(quoted.debugDescription)")
            default: break
            }
        }
        let words = inner.split(whereSeparator: { $0.isWhitespace })
        for (index, word) in words.enumerated() where word != "[link" && word != "removed]" && MailText.isLinkLike(word) {
            // The last word may be a cut one ending in "…": a prefix of a safe word stays safe
            // unless the cut made it look like a link, which the check below would catch too.
            fatalError("link-like word \(word.debugDescription) (word \(index)) in \(quoted.debugDescription)")
        }
    default:
        // A room name made for an app splits back into that app and room; anything split names a valid room.
        if let (appId, room) = RoomName.split(text) {
            guard !appId.isEmpty, !appId.contains("."), RoomName.isValid(room) else { fatalError("split \(text.debugDescription) → \(appId), \(room)") }
            guard RoomName.livekit(appId: appId, room: room) == text else { fatalError("\(text.debugDescription) does not rebuild") }
        }
        let parts = text.split(separator: "/", maxSplits: 1)
        if parts.count == 2, !parts[0].isEmpty, !parts[0].contains("."), RoomName.isValid(String(parts[1])) {
            guard let (appId, room) = RoomName.split(RoomName.livekit(appId: String(parts[0]), room: String(parts[1]))),
                appId == parts[0], room == parts[1]
            else { fatalError("room \(parts[1]) of app \(parts[0]) does not split back") }
        }
    }
    return 0
}
