// The media fast path's byte-level request reader (`RawRequest.parse`), differentially against
// llhttp — the parser NIO's HTTPRequestDecoder runs, compiled from swift-nio's own copy
// (CNIOLLHTTP, default strictness, as NIO uses it). Whatever the reader answers must be what NIO
// would read: a request it answers is a request llhttp reads completely from the same bytes, with
// the same method, target, validators, request id and keep-alive; a head it waits on is one
// llhttp has not finished either. Handing the bytes over (`.other`) is always allowed.
import CNIOLLHTTP

/// What llhttp saw of the first message in the bytes.
final class Seen {
    var url: [UInt8] = []
    var fields: [([UInt8], [UInt8])] = []
    var field: [UInt8] = []
    var value: [UInt8] = []
    var inValue = false
    var headersComplete = false
    var messageComplete = false
    var method: UInt8 = 0
    var bodyBytes = 0

    func finishField() {
        if self.inValue || !self.field.isEmpty { self.fields.append((self.field, self.value)) }
        self.field = []
        self.value = []
        self.inValue = false
    }
}

func seen(_ parser: UnsafeMutablePointer<llhttp_t>?) -> Seen {
    Unmanaged<Seen>.fromOpaque(parser!.pointee.data!).takeUnretainedValue()
}

func bytes(_ at: UnsafePointer<CChar>?, _ length: Int) -> [UInt8] {
    guard let at, length > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: at, count: length))
}

/// Runs llhttp over `input`; what it saw, and whether it refused the bytes.
func llhttp(_ input: UnsafeRawBufferPointer) -> (Seen, refused: Bool, keepAlive: Bool) {
    var settings = llhttp_settings_t()
    c_nio_llhttp_settings_init(&settings)
    settings.on_url = { parser, at, length in seen(parser).url += bytes(at, length); return 0 }
    settings.on_header_field = { parser, at, length in
        let s = seen(parser)
        if s.inValue { s.finishField() }
        s.field += bytes(at, length)
        return 0
    }
    settings.on_header_value = { parser, at, length in
        let s = seen(parser)
        s.inValue = true
        s.value += bytes(at, length)
        return 0
    }
    settings.on_headers_complete = { parser in
        let s = seen(parser)
        s.finishField()
        s.headersComplete = true
        s.method = parser!.pointee.method
        return 0
    }
    settings.on_body = { parser, _, length in seen(parser).bodyBytes += length; return 0 }
    settings.on_message_complete = { parser in
        seen(parser).messageComplete = true
        // One message is compared: stop here.
        return Int32(HPE_PAUSED.rawValue)
    }
    let state = Seen()
    var parser = llhttp_t()
    c_nio_llhttp_init(&parser, HTTP_REQUEST, &settings)
    parser.data = Unmanaged.passUnretained(state).toOpaque()
    let errno = withExtendedLifetime(state) {
        c_nio_llhttp_execute(&parser, input.baseAddress?.assumingMemoryBound(to: CChar.self), input.count)
    }
    let refused = errno != HPE_OK && errno != HPE_PAUSED
    return (state, refused, c_nio_llhttp_should_keep_alive(&parser) != 0)
}

func trimmed(_ value: [UInt8]) -> [UInt8] {
    var slice = value[...]
    while let first = slice.first, first == 0x20 || first == 0x09 { slice = slice.dropFirst() }
    while let last = slice.last, last == 0x20 || last == 0x09 { slice = slice.dropLast() }
    return Array(slice)
}

func lower(_ name: [UInt8]) -> [UInt8] { name.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 } }

func disagree(_ what: String, _ input: UnsafeRawBufferPointer) -> Never {
    fatalError("\(what) for \(String(decoding: input, as: UTF8.self).debugDescription)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRawRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    switch RawRequest.parse(input) {
    case .other:
        break
    case .incomplete:
        let (state, refused, _) = llhttp(input)
        if state.headersComplete && !refused { disagree("the reader waits on a head llhttp has read", input) }
    case .request(let request, let length):
        guard length > 0, length <= size else { disagree("length \(length) out of bounds", input) }
        let head = UnsafeRawBufferPointer(rebasing: input[0..<length])
        let (state, refused, keepAlive) = llhttp(head)
        guard !refused else { disagree("the reader answers a request llhttp refuses", input) }
        guard state.headersComplete, state.messageComplete, state.bodyBytes == 0 else {
            disagree("llhttp did not read one whole body-less request in the reader's \(length) bytes", input)
        }
        let method = request.isHead ? UInt8(HTTP_HEAD.rawValue) : UInt8(HTTP_GET.rawValue)
        guard state.method == method else { disagree("method differs", input) }
        let path = state.url.split(separator: UInt8(ascii: "?"), maxSplits: 1, omittingEmptySubsequences: false).first.map(Array.init) ?? []
        guard path == Array(request.path.utf8) else { disagree("target differs: \(request.path)", input) }
        guard keepAlive == request.keepAlive else { disagree("keep-alive differs (reader \(request.keepAlive))", input) }
        func value(_ name: String) -> String? {
            let values = state.fields.filter { lower($0.0) == Array(name.utf8) }.map { String(decoding: trimmed($0.1), as: UTF8.self) }
            guard values.count <= 1 else { disagree("\(name) repeated but answered", input) }
            return values.first
        }
        guard value("range") == request.conditions.range, value("if-range") == request.conditions.ifRange,
            value("if-none-match") == request.conditions.ifNoneMatch, value("if-modified-since") == request.conditions.ifModifiedSince,
            value("x-request-id") == request.requestID
        else { disagree("a header value differs", input) }
        guard state.fields.filter({ lower($0.0) == Array("host".utf8) }).count == 1 else { disagree("Host count differs", input) }
    }
    return 0
}
