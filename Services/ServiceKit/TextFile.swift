import Foundation

/// Reads an operator's text file (a model, a policy) with an error that says what is wrong in
/// plain words: `cannot read F: not a file`, not a Foundation error domain and code.
public enum TextFile {
    public struct ReadError: Error, CustomStringConvertible, Equatable {
        public var path: String
        public var reason: String
        public var description: String { "cannot read \(self.path): \(self.reason)" }
    }

    public static func read(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ReadError(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw ReadError(path: path, reason: "not a file") }
        guard FileManager.default.isReadableFile(atPath: path) else { throw ReadError(path: path, reason: "permission denied") }
        guard let data = FileManager.default.contents(atPath: path) else { throw ReadError(path: path, reason: "not a file") }
        guard let text = String(data: data, encoding: .utf8) else { throw ReadError(path: path, reason: "not UTF-8 text") }
        return text
    }
}
