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

    /// What each service needs set to start and work as deployed (beside defaults that suit
    /// containers): secrets, its upstreams, the public URL, and the mode it says at start.
    static let required: [String: Set<String>] = [
        "identity": [
            "STREAMHUB_INTERNAL_TOKEN", "STREAMHUB_JWT_SECRET", "DATABASE_URL", "STREAMHUB_PUBLIC_URL", "AUTHZ_URL", "MEDIA_URL", "HOST", "PORT",
            "STREAMHUB_AUTHZ_ENFORCE", "ADMIN_USER", "ADMIN_PASS",
        ],
        "authz": ["STREAMHUB_INTERNAL_TOKEN", "DATABASE_URL", "STREAMHUB_AUTHZ_ENFORCE", "IDENTITY_URL", "HOST", "PORT"],
        "media": [
            "STREAMHUB_INTERNAL_TOKEN", "DATABASE_URL", "STREAMHUB_CLUSTER_TOKEN", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "IDENTITY_URL",
            "STREAMHUB_PUBLIC_URL", "STREAMHUB_AUTHZ_ENFORCE", "HOST", "PORT",
        ],
        "gateway": [
            "STREAMHUB_INTERNAL_TOKEN", "STREAMHUB_JWT_SECRET", "STREAMHUB_PUBLIC_URL", "STREAMHUB_AUTHZ_ENFORCE", "IDENTITY_URL", "AUTHZ_URL",
            "MEDIA_URL", "HOST", "PORT",
        ],
    ]

    @Test("compose/compose.yaml sets every variable each service needs (the common block included)")
    func composeEnvironments() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("compose/compose.yaml"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func keys(from start: Int, indent: Int) -> Set<String> {
            var found: Set<String> = []
            for line in lines[start...].dropFirst() {
                let leading = line.prefix { $0 == " " }.count
                if !line.trimmingCharacters(in: .whitespaces).isEmpty, leading < indent { break }
                if leading == indent, let colon = line.firstIndex(of: ":") {
                    let key = line[line.index(line.startIndex, offsetBy: indent)..<colon]
                    if key.allSatisfy({ $0.isUppercase || $0 == "_" || $0.isNumber }) { found.insert(String(key)) }
                }
            }
            return found
        }
        let common = try #require(lines.firstIndex { $0.hasPrefix("x-common-env:") }.map { keys(from: $0, indent: 2) })
        for (service, needed) in Self.required {
            let start = try #require(lines.firstIndex(of: "  \(service):"), "\(service) is not in compose.yaml")
            let environment = try #require(lines[start...].firstIndex { $0 == "    environment:" })
            var set = keys(from: environment, indent: 6)
            if lines[environment + 1].contains("<<: *common-env") { set.formUnion(common) }
            #expect(needed.subtracting(set).isEmpty, "\(service) lacks \(needed.subtracting(set).sorted())")
        }
    }

    @Test("deploy/kubernetes/streamhub.yaml sets every variable each service needs, roles enforced")
    func kubernetesEnvironments() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("deploy/kubernetes/streamhub.yaml"), encoding: .utf8)
        for (service, needed) in Self.required {
            let document = try #require(
                text.components(separatedBy: "\n---\n").first { $0.contains("kind: Deployment") && $0.contains("command: [\"streamhub-\(service)\"]") },
                "no Deployment runs streamhub-\(service)")
            var set: Set<String> = []
            for line in document.split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                for prefix in ["- { name: ", "- name: "] where trimmed.hasPrefix(prefix) {
                    set.insert(String(trimmed.dropFirst(prefix.count).prefix { $0 != "," && $0 != " " }))
                }
            }
            #expect(needed.subtracting(set).isEmpty, "\(service) lacks \(needed.subtracting(set).sorted())")
            #expect(document.contains(#"- { name: STREAMHUB_AUTHZ_ENFORCE, value: "on" }"#), "\(service) does not enforce roles")
        }
    }
}
