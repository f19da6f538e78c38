// Differential: EnforceBodyParser (authz's hand-written reader of enforce bodies) either refuses a
// body or reads exactly what JSONDecoder reads from it.
import Foundation
import Shared

struct Batch: Decodable, Equatable {
    var requests: [EnforceRequest]
    var explain: Bool?
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnforceBody(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let copy = Data(bytes)
    if let single = try? EnforceBodyParser.parseRequest(bytes: bytes) {
        guard let decoded = try? JSONDecoder().decode(EnforceRequest.self, from: copy) else {
            fatalError("parser accepted a request JSONDecoder refuses: \(String(decoding: copy, as: UTF8.self).debugDescription)")
        }
        guard decoded == single else {
            fatalError("parser read \(single), JSONDecoder \(decoded): \(String(decoding: copy, as: UTF8.self).debugDescription)")
        }
    }
    if let batch = try? EnforceBodyParser.parseBatch(bytes: bytes) {
        guard let decoded = try? JSONDecoder().decode(Batch.self, from: copy) else {
            fatalError("parser accepted a batch JSONDecoder refuses: \(String(decoding: copy, as: UTF8.self).debugDescription)")
        }
        guard decoded.requests == batch.requests, (decoded.explain ?? false) == batch.explain else {
            fatalError("parser read \(batch), JSONDecoder \(decoded): \(String(decoding: copy, as: UTF8.self).debugDescription)")
        }
    }
    return 0
}
