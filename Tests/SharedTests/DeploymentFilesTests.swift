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

    func kubernetes(_ name: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent("deploy/kubernetes/" + name), encoding: .utf8)
    }

    @Test("Kubernetes: /metrics is scraped with the bearer token it needs, never by token-less annotations")
    func kubernetesMetricsCarryTheToken() throws {
        // prometheus.io/* annotations cannot send a token: every scrape would be a 403.
        #expect(!(try self.kubernetes("streamhub.yaml")).contains("prometheus.io/scrape"))
        let monitor = try self.kubernetes("monitoring.yaml")
        #expect(monitor.contains("kind: ServiceMonitor"))
        #expect(monitor.contains("bearerTokenSecret: { name: streamhub-secrets, key: METRICS_TOKEN }"))
        #expect(monitor.contains("path: /metrics") && monitor.contains("port: http"))
        #expect(monitor.contains("matchLabels: { app.kubernetes.io/name: streamhub }"))
        // Every Service it selects carries that label and names its port http; every service reads METRICS_TOKEN.
        let manifests = try self.kubernetes("streamhub.yaml").components(separatedBy: "\n---\n")
        let services = manifests.filter { $0.contains("kind: Service\n") }
        #expect(services.count == 4)
        for service in services {
            #expect(service.contains("app.kubernetes.io/name: streamhub") && service.contains("{ name: http, port:"), "\(service.prefix(120))")
        }
        for deployment in manifests where deployment.contains("kind: Deployment") {
            #expect(deployment.contains("key: METRICS_TOKEN"))
        }
        // The secret's example names the key.
        #expect(try self.kubernetes("secrets.env.example").contains("METRICS_TOKEN="))
    }

    @Test("Kubernetes: the Ingress reaches the gateway's Service only, on the host STREAMHUB_PUBLIC_URL names; the kustomization applies both with one image")
    func kubernetesIngressAndKustomization() throws {
        let ingress = try self.kubernetes("ingress.yaml")
        #expect(ingress.contains("kind: Ingress"))
        let backends = ingress.components(separatedBy: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("name: ") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(backends.contains("name: gateway"))
        for other in ["identity", "authz", "media"] { #expect(!backends.contains("name: \(other)")) }
        let manifests = try self.kubernetes("streamhub.yaml")
        let host = try #require(ingress.components(separatedBy: "host: ").dropFirst().first?.prefix { !$0.isWhitespace })
        #expect(manifests.contains(#"{ name: STREAMHUB_PUBLIC_URL, value: "https://\#(host)" }"#))
        let gatewayService = try #require(
            manifests.components(separatedBy: "\n---\n").first { $0.contains("kind: Service\n") && $0.contains("name: gateway\n") })
        #expect(gatewayService.contains("{ name: http, port: 8080"))
        let kustomization = try self.kubernetes("kustomization.yaml")
        for file in ["streamhub.yaml", "ingress.yaml"] {
            #expect(kustomization.contains("  - \(file)"))
            #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent("deploy/kubernetes/" + file).path))
        }
        // The image the kustomization rewrites is the one every Deployment runs.
        let images = Set(manifests.components(separatedBy: "\n").filter { $0.contains("image: ") }.map { $0.components(separatedBy: "image: ")[1] })
        #expect(images.count == 1)
        let image = try #require(images.first)
        #expect(kustomization.contains("- name: \(image.components(separatedBy: ":")[0])"))
    }

    @Test("Kubernetes: the first-token step execs a Deployment that runs identity, in an image that ships the streamhub CLI")
    func kubernetesSeedTokenStep() throws {
        let manifests = try self.kubernetes("streamhub.yaml")
        let step = "kubectl -n streamhub exec deploy/identity -- streamhub seed-token --name admin"
        #expect(manifests.contains(step))
        #expect(try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8).contains(step))
        let identity = try #require(manifests.components(separatedBy: "\n---\n").first { $0.contains("kind: Deployment") && $0.contains("name: identity\n") })
        #expect(identity.contains(#"command: ["streamhub-identity"]"#))
        #expect(identity.contains("name: DATABASE_URL"))
        let dockerfile = try String(contentsOf: Self.root.appendingPathComponent("compose/Dockerfile"), encoding: .utf8)
        #expect(dockerfile.contains(".build/release/streamhub /out/"))
    }
}
