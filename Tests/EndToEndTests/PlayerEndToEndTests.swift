import AsyncHTTPClient
import Foundation
import Testing

extension RealExecutables {
    /// The public player through the gateway: pages, oEmbed, the SDK, byte ranges and validators on
    /// `/hls` (with `ffmpeg`'s sample stream), and — when `chromium` is installed and
    /// `STREAMHUB_CHROMIUM_PYTHON` names a Python with websocket-client (CI sets up all three) —
    /// headless Chromium playing the sample on `/play` past 1 s, with a screenshot kept in
    /// `$STREAMHUB_TEST_ARTIFACTS` (default `/tmp/streamhub-test-artifacts`).
    @Suite("Player end to end", .serialized)
    struct PlayerEndToEndTests {
        static let json = ("Content-Type", "application/json")

        static func tool(_ name: String) -> String? {
            for directory in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
                return "\(directory)/\(name)"
            }
            return nil
        }

        static let ffmpeg = tool("ffmpeg")
        static let chromium = tool("chromium") ?? tool("chromium-browser")
        /// A Python with PyPI websocket-client, to watch Chromium over the DevTools protocol.
        static let python = ProcessInfo.processInfo.environment["STREAMHUB_CHROMIUM_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

        func data(_ result: HTTPResult) throws -> [String: Any] {
            try #require(try result.json()["data"] as? [String: Any])
        }

        @Test("pages, oEmbed, SDK and HLS validators through the gateway; Chromium plays the sample stream on /play past 1 s")
        func player() async throws {
            try await Stack.with(extra: ["STREAMHUB_PUBLIC_URL": "https://streams.example.test"]) { stack, client in
                let base = stack.gatewayURL + "/api/v1"
                let root = ("Authorization", "Bearer " + (try await stack.seedToken(name: "root").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
                let signup = try await client.call(
                    base + "/auth/signup", method: "POST", headers: [Self.json], body: #"{"email":"player@example.com","password":"correct horse battery"}"#)
                let tenantId = try #require(try self.data(signup)["tenantId"] as? String)
                let appId = try #require(
                    try self.data(
                        try await client.call(base + "/apps", method: "POST", headers: [root, Self.json], body: #"{"name":"Player","tenantId":"\#(tenantId)"}"#)
                    )["id"] as? String)
                #expect(try await client.call(base + "/apps/\(appId)/streams", method: "POST", headers: [root, Self.json], body: #"{"room":"sample"}"#).status == 201)

                let page = try await client.call(stack.gatewayURL + "/play/\(appId)/sample")
                #expect(page.status == 200 && page.header("Content-Type") == "text/html; charset=utf-8")
                #expect(page.body.contains(#"data-app="\#(appId)""#) && page.body.contains(#"<script src="/assets/streamhub-player.js"></script>"#))
                #expect(page.body.contains("application/json+oembed") && !page.body.contains("<script>"))
                #expect(page.header("X-Frame-Options") == "SAMEORIGIN" && page.header("Content-Security-Policy")?.contains("frame-ancestors 'self'") == true)
                let embed = try await client.call(stack.gatewayURL + "/embed/\(appId)/sample?autoplay=1&muted=1")
                #expect(embed.status == 200 && embed.header("X-Frame-Options") == nil)
                #expect(embed.header("Content-Security-Policy")?.contains("frame-ancestors *") == true)
                #expect(embed.body.contains(#"data-autoplay="true" data-muted="true""#) && embed.body.contains("<video id=\"video\" controls playsinline muted autoplay>"))
                #expect(try await client.call(stack.gatewayURL + "/play/\(appId)/bad%3Croom").status == 404)
                let script = try await client.call(stack.gatewayURL + "/assets/streamhub-player.js")
                #expect(script.status == 200 && script.header("Content-Type") == "text/javascript; charset=utf-8" && script.body.contains("play-token"))
                let sdk = try await client.call(stack.gatewayURL + "/sdk/streamhub.js")
                #expect(sdk.status == 200 && sdk.body.contains("StreamHub.mount"))

                let pageURL = "https://streams.example.test/play/\(appId)/sample"
                let oembed = try await client.call(
                    base + "/oembed?url=" + (pageURL.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") + "&maxwidth=480")
                #expect(oembed.status == 200, "\(oembed.body)")
                let answer = try oembed.json()
                #expect(answer["version"] as? String == "1.0" && answer["type"] as? String == "video" && answer["width"] as? Int == 480)
                #expect((answer["html"] as? String)?.contains(#"src="https://streams.example.test/embed/\#(appId)/sample""#) == true)
                #expect(try await client.call(base + "/oembed?url=https%3A%2F%2Fevil.example%2Fplay%2Fa%2Fb").status == 404)
                #expect(try await client.call(base + "/oembed").status == 404)

                guard let ffmpeg = Self.ffmpeg else { return }
                let directory = stack.dataDir + "/data/media/hls/\(appId)/sample"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let made = try await Stack.run(
                    ffmpeg,
                    [
                        "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i",
                        "sine=frequency=440:sample_rate=48000", "-t", "6", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60",
                        "-c:a", "aac", "-b:a", "96k", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0", "-hls_playlist_type", "vod",
                        "-hls_segment_filename", directory + "/seg_%03d.ts", directory + "/index.m3u8",
                    ], environment: ProcessInfo.processInfo.environment)
                try #require(made.status == 0, "\(made.stderr)")

                // Segments through the gateway: long-cached, ranges, 304.
                let segment = try await client.call(stack.gatewayURL + "/hls/\(appId)/sample/seg_000.ts")
                #expect(segment.status == 200 && segment.header("Cache-Control") == "public, max-age=31536000, immutable")
                let etag = try #require(segment.header("ETag"))
                let partial = try await client.call(stack.gatewayURL + "/hls/\(appId)/sample/seg_000.ts", headers: [("Range", "bytes=0-187")])
                #expect(partial.status == 206 && partial.header("Content-Range")?.hasPrefix("bytes 0-187/") == true)
                let cached = try await client.call(stack.gatewayURL + "/hls/\(appId)/sample/seg_000.ts", headers: [("If-None-Match", etag)])
                #expect(cached.status == 304)
                #expect(try await client.call(stack.gatewayURL + "/hls/\(appId)/sample/index.m3u8").header("Cache-Control") == "no-cache")

                guard let chromium = Self.chromium, let python = Self.python else { return }
                let artifacts = ProcessInfo.processInfo.environment["STREAMHUB_TEST_ARTIFACTS"] ?? "/tmp/streamhub-test-artifacts"
                try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
                let watcher = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("interop/chromium_play.py").path
                let played = try await Stack.run(
                    python, [watcher, chromium, stack.gatewayURL + "/play/\(appId)/sample", artifacts + "/play.png"],
                    environment: ProcessInfo.processInfo.environment)
                print("chromium /play: \(played.stdout)")
                #expect(played.status == 0, "\(played.stdout)\n\(played.stderr.suffix(1500))\nmedia: \(stack.log("media").suffix(1500))")
                let seen = try #require(try JSONSerialization.jsonObject(with: Data(played.stdout.utf8)) as? [String: Any])
                #expect((seen["currentTime"] as? Double ?? 0) > 1 && seen["state"] as? String == "live", "\(seen)")
                #expect(FileManager.default.fileExists(atPath: artifacts + "/play.png"))
            }
        }
    }
}
