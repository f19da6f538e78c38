import Foundation
import NIOCore
import ServiceKit
import Shared
import Testing

@testable import AuthzApp

@Suite("Enforce body parser")
struct EnforceBodyParserTests {
    func parse(_ text: String) throws -> EnforceRequest {
        try EnforceBodyParser.parseRequest(ByteBuffer(string: text))
    }

    func message(_ text: String) -> String? {
        do {
            _ = try self.parse(text)
            return nil
        } catch let error as ServiceError {
            return error.body.message
        } catch {
            return "\(error)"
        }
    }

    @Test("whatever JSONEncoder writes reads back the same, escapes and Unicode included")
    func roundTrip() throws {
        let samples = [
            EnforceRequest(subject: "user:1", tenant: "t1", resource: "app", action: "read"),
            EnforceRequest(subject: "quote \" back \\ slash / tab \t nl \n", tenant: "été", resource: "😀 \u{01}", action: "", explain: true),
            EnforceRequest(subject: String(repeating: "x", count: 300), tenant: "", resource: "r", action: "a", explain: false),
        ]
        for sample in samples {
            #expect(try self.parse(String(decoding: try JSONEncoder().encode(sample), as: UTF8.self)) == sample)
        }
        #expect(
            try self.parse(#" { "action" : "a", "resource":"r","tenant":"\u0074\ud83d\ude00","subject":"s","extra":[1,{"x":null}] } "#)
                == EnforceRequest(subject: "s", tenant: "t😀", resource: "r", action: "a"))
    }

    @Test("bad bodies get the same clear messages as the Codable path")
    func errors() {
        #expect(self.message("") == "Request body is required")
        #expect(self.message("{") == "Request body is not valid JSON")
        #expect(self.message(#"{"subject":"s"} x"#) == "Request body is not valid JSON")
        #expect(self.message(#"{"subject":"\ud800"}"#) == "Request body is not valid JSON")
        #expect(self.message("{\"subject\":\"a\u{01}\"}") == "Request body is not valid JSON")
        #expect(self.message(#"{"subject":5,"tenant":"t","resource":"r","action":"a"}"#) == "subject must be a string")
        #expect(self.message(#"{"tenant":"t","resource":"r","action":"a"}"#) == "subject is required")
        #expect(self.message("[1]") == "body must be an object")
        // Found by the fuzzer: a member given twice was read as the last one, where JSONDecoder
        // keeps the first; an authorization request must mean one thing, so it is refused.
        #expect(self.message(#"{"subject":"s","tenant":"t","resource":"r","action":"a","action":"b"}"#) == "action is given more than once")
        #expect(
            (try? EnforceBodyParser.parseBatch(ByteBuffer(string: #"{"requests":[{"subject":"s","tenant":"t","resource":"r","action":"a","tenant":"u"}]}"#)))
                == nil)
        #expect(throws: ServiceError.self) {
            try EnforceBodyParser.parseBatch(ByteBuffer(string: #"{"requests":[],"requests":[{"subject":"s","tenant":"t","resource":"r","action":"a"}]}"#))
        }
        // Found by the fuzzer (fuzz/targets/enforce_body.swift): invalid UTF-8 in a string was
        // repaired to U+FFFD and accepted, where JSONDecoder refuses the body. In a read member or
        // a skipped one (which JSONDecoder lets through: stricter is allowed), it is refused now.
        for invalid in [[0xED, 0xED], [0xFF], [0xC3], [0xED, 0xA0, 0x80]] as [[UInt8]] {
            for template in [#"{"subject":"user:1%","tenant":"t","resource":"r","action":"a"}"#, #"{"subject":"s","tenant":"t","resource":"r","action":"a","x":"%"}"#] {
                let parts = template.split(separator: "%", omittingEmptySubsequences: false)
                let body = Array(parts[0].utf8) + invalid + Array(parts[1].utf8)
                #expect(throws: ServiceError.self) { try EnforceBodyParser.parseRequest(ByteBuffer(bytes: body)) }
                if template.contains("user:1") {
                    #expect(throws: (any Error).self) { try JSONDecoder().decode(EnforceRequest.self, from: Data(body)) }
                }
            }
        }
        #expect(self.message(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) == "Request body is not valid JSON")
    }

    @Test("batches name the failing element")
    func batch() throws {
        let parsed = try EnforceBodyParser.parseBatch(
            ByteBuffer(string: #"{"explain":true,"requests":[{"subject":"s","tenant":"t","resource":"r","action":"a"}]}"#))
        #expect(parsed.explain)
        #expect(parsed.requests == [EnforceRequest(subject: "s", tenant: "t", resource: "r", action: "a")])
        #expect(throws: ServiceError.self) { try EnforceBodyParser.parseBatch(ByteBuffer(string: #"{"requests":[{"subject":"s"}]}"#)) }
        let error = #expect(throws: ServiceError.self) {
            try EnforceBodyParser.parseBatch(
                ByteBuffer(string: #"{"requests":[{"subject":"s","tenant":"t","resource":"r","action":"a"},{"subject":1}]}"#))
        }
        #expect(error?.body.message == "requests.1.subject must be a string")
        #expect(throws: ServiceError.self) { try EnforceBodyParser.parseBatch(ByteBuffer(string: #"{"explain":true}"#)) }
    }
}
