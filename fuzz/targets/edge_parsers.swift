// Parsers a client reaches without credentials: the route catalog matcher, the internal principal
// header (services decode it from the gateway), and the media mounts' Range and date headers.
import Foundation
import Shared

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEdgeParsers(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    switch data[0] % 4 {
    case 0:
        for method in ["GET", "HEAD", "POST", "DELETE", text] {
            switch RouteCatalog.match(method: method, path: text) {
            case .route(let route, let parameters):
                // Every parameter the pattern names is filled with a non-empty segment.
                for segment in route.path.split(separator: "/") where segment.first == ":" {
                    guard let value = parameters[String(segment.dropFirst())], !value.isEmpty, !value.contains("/") else {
                        fatalError("route \(route.path) matched \(text.debugDescription) without its parameter \(segment)")
                    }
                }
            case .methodNotAllowed(let allowed):
                guard !allowed.isEmpty else { fatalError("405 without Allow for \(text.debugDescription)") }
            case .notFound:
                break
            }
        }
        _ = RouteCatalog.mediaMount(of: text)
    case 1:
        // Whatever decodes re-encodes to a header that decodes to the same principal.
        if let principal = PrincipalHeader.decode(text) {
            guard PrincipalHeader.decode(PrincipalHeader.encode(principal)) == principal else {
                fatalError("principal \(principal) does not survive a round trip")
            }
        }
    case 2:
        let size = Int(data[0]) * 1000 + size
        switch ByteRange.parse(text, size: size) {
        case .single(let range):
            guard range.lowerBound >= 0, range.upperBound < size, range.lowerBound <= range.upperBound else {
                fatalError("range \(range) of \(text.debugDescription) is outside a file of \(size) bytes")
            }
        case .whole, .unsatisfiable:
            break
        }
    default:
        if let date = HTTPDate.parse(text) {
            // A parsed date formats to a date that parses to the same instant.
            guard HTTPDate.parse(HTTPDate.format(date)) == date else {
                fatalError("date \(text.debugDescription) → \(date) does not survive a round trip")
            }
        }
    }
    return 0
}
