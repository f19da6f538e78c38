import Foundation
import Testing

/// The user-facing image is built from `compose/Dockerfile` with the repository as its context:
/// every directory `Package.swift` names must be copied in, or `swift build` in the image fails
/// (it once did: `benchmarks/CasbinBench` was missing, and only CI's own images were built).
@Suite("Deployment files")
struct DeploymentFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("compose/Dockerfile copies every target directory Package.swift names, and the manifest before resolving")
    func dockerfileCopiesEveryTarget() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let dockerfile = try String(contentsOf: Self.root.appendingPathComponent("compose/Dockerfile"), encoding: .utf8)
        let paths = manifest.split(separator: "\n").compactMap { line -> String? in
            guard let range = line.range(of: #"path: ""#) else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "\"" })
        }
        #expect(paths.count >= 20)
        // `COPY <source> <destination>` lines of the build stage (not `--from=` copies).
        let copied = dockerfile.split(separator: "\n").filter { $0.hasPrefix("COPY ") && !$0.contains("--from=") }
            .compactMap { $0.split(separator: " ").dropFirst().first.map(String.init) }
        #expect(copied.contains("Package.swift"))
        for path in paths {
            #expect(copied.contains { path == $0 || path.hasPrefix($0 + "/") }, "\(path) is not copied into the image's build context")
            #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(path).path), "\(path) does not exist")
        }
    }
}
