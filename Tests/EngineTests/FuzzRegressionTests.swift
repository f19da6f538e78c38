import CasbinEngine
import Foundation
import Testing

/// Inputs the fuzz targets (`fuzz/targets/casbin.swift`) found, kept as tests.
@Suite("Fuzz regressions: the Casbin engine")
struct CasbinFuzzRegressionTests {
    /// The property the fuzzer checks: whatever parses formats back to the same rule.
    func roundTrips(_ text: String) throws -> Bool {
        try PolicyCSV.parse(text).allSatisfy { line in
            let again = try PolicyCSV.parse(PolicyCSV.format(type: line.type, values: line.values))
            return again.count == 1 && again[0].type == line.type && again[0].values == line.values
        }
    }

    @Test("policy CSV: a field that starts with #, is empty in first place, or has white space at an end is quoted, so it reads back")
    func formatQuotesWhatParsingWouldLose() throws {
        // Found by the fuzzer: a quoted first field beginning with "#" was written bare, and read back as a comment.
        #expect(try self.roundTrips("\"#\u{05}` z\",!\u{FFFD}\u{FFFD}\""))
        #expect(PolicyCSV.format(type: "#p", values: ["a"]) == "\"#p\", a")
        #expect(PolicyCSV.format(type: "p", values: [" padded ", "x\u{00A0}", "#not-first", ""]) == "p, \" padded \", \"x\u{00A0}\", #not-first, ")
        #expect(try self.roundTrips(#"p, " padded ", "tab\#t", "", "a ""quote"" here", "comma, inside""#))
        #expect(PolicyCSV.format(type: "p", values: ["alice", "data1", "read"]) == "p, alice, data1, read")
    }
}
