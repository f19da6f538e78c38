import AsyncHTTPClient
import Foundation
import NIOCore
import ServiceKit
import ServiceStorage
import Shared

/// What `streamhub up` sets up beside the services, once, under the data directory:
/// - Video.js (PyPI `js.videojs`, which bundles its HLS engine) at `<media>/assets/vendor/video.min.js`,
///   for players in browsers without native HLS, and Swagger UI (PyPI `swagger-ui-py`) in
///   `<data>/swagger-ui/` for `/api/v1/docs` — fetched with pip when missing, never from a CDN at
///   run time;
/// - a sample HLS stream made with ffmpeg at `<media>/samples/demo/`, and an app whose room `demo`
///   plays it, so `/play` has something to show.
/// Each step says what it did; without pip, network or ffmpeg it says what is missing and the rest
/// still runs.
enum WebAssets {
    static let videoJSVersion = "7.5.5"

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
            return "\(directory)/\(name)"
        }
        return nil
    }

    /// Runs a tool to completion; its output goes to `log`.
    static func run(_ executable: String, _ arguments: [String], log: String) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        do {
            try process.run()
        } catch {
            return false
        }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    static func ensureVideoJS(mediaRoot: String, logs: String) {
        Self.installFromPyPI(
            what: "Video.js", requirement: "js.videojs==\(Self.videoJSVersion)", unpacked: "js.videojs-\(Self.videoJSVersion)",
            files: ["js/videojs/resources/video.min.js"], into: mediaRoot + "/assets/vendor", logs: logs,
            without: "players use the browser's own HLS")
    }

    static let swaggerUIVersion = "25.7.1"

    /// Swagger UI 5 (PyPI `swagger-ui-py`, `swagger_ui/static/`) into the gateway's docs directory,
    /// so `/api/v1/docs` is interactive without a CDN.
    static func ensureSwaggerUI(into directory: String, logs: String) {
        Self.installFromPyPI(
            what: "Swagger UI", requirement: "swagger-ui-py==\(Self.swaggerUIVersion)", unpacked: "",
            files: ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png", "LICENSE"].map { "swagger_ui/static/" + $0 },
            into: directory, logs: logs, without: "/api/v1/docs lists the operations without the interactive view")
    }

    /// The one way third-party web assets arrive: `pip download` of a pinned PyPI package, unpacked
    /// (sdist or wheel) into a scratch directory, the named files copied into `directory`. Nothing
    /// happens when they are all there; each outcome is said in one line.
    static func installFromPyPI(what: String, requirement: String, unpacked: String, files: [String], into directory: String, logs: String, without: String) {
        let targets = files.map { directory + "/" + ($0 as NSString).lastPathComponent }
        if targets.allSatisfy(FileManager.default.fileExists(atPath:)) { return }
        guard let python = Self.which("python3") else {
            say("\(what) is not installed (no python3 to fetch PyPI \(requirement)); \(without).")
            return
        }
        let work = NSTemporaryDirectory() + "streamhub-assets-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let log = logs + "/setup-\(what.lowercased().replacingOccurrences(of: " ", with: "-")).log"
        guard Self.run(python, ["-m", "pip", "download", "-q", "--no-deps", "-d", work, requirement], log: log),
            let archive = try? FileManager.default.contentsOfDirectory(atPath: work).first
        else {
            say("\(what) is not installed (pip could not fetch \(requirement); see \(log)); \(without).")
            return
        }
        let unpackedOK =
            archive.hasSuffix(".whl")
            ? Self.run(python, ["-m", "zipfile", "-e", "\(work)/\(archive)", work + "/unpacked"], log: log)
            : Self.run("/bin/tar", ["xzf", "\(work)/\(archive)", "-C", work], log: log)
        let root = archive.hasSuffix(".whl") ? work + "/unpacked" : work + "/" + unpacked
        do {
            guard unpackedOK else { throw CLIFailure("could not unpack \(archive)") }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for (file, target) in zip(files, targets) {
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: root + "/" + file, toPath: target)
            }
            say("Installed \(what) (PyPI \(requirement)) in \(directory).")
        } catch {
            say("\(what) is not installed (\(error)); \(without).")
        }
    }

    /// Makes the sample stream when missing: true when it exists afterwards.
    static func ensureSampleStream(mediaRoot: String, logs: String) -> Bool {
        let directory = mediaRoot + "/samples/demo"
        if FileManager.default.fileExists(atPath: directory + "/index.m3u8") { return true }
        guard let ffmpeg = Self.which("ffmpeg") else {
            say("No sample stream: ffmpeg is not installed (apt-get install ffmpeg, then run streamhub up again).")
            return false
        }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let made = Self.run(
            ffmpeg,
            [
                "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i",
                "sine=frequency=440:sample_rate=48000", "-t", "30", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60",
                "-c:a", "aac", "-b:a", "96k", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0", "-hls_playlist_type", "vod",
                "-hls_segment_filename", directory + "/seg_%03d.ts", directory + "/index.m3u8",
            ], log: logs + "/setup-sample.log")
        if !made { say("No sample stream: ffmpeg failed (see \(logs)/setup-sample.log).") }
        return made
    }

    /// The sample app: a tenant of its own (`samples@streamhub.invalid`, a random password nobody
    /// holds), an app with a stream in room `demo`, and the sample copied to `/hls/<app>/demo/`.
    /// Remembered in `<data dir>/sample-app` so later runs reuse it. Returns the player URL.
    static func wireSampleApp(dataDir: String, mediaRoot: String, gateway: String, identityStore: StorageLocation, client: HTTPClient) async -> String? {
        let marker = dataDir + "/sample-app"
        if let app = try? String(contentsOfFile: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !app.isEmpty,
            FileManager.default.fileExists(atPath: mediaRoot + "/hls/\(app)/demo/index.m3u8")
        {
            return gateway + "/play/\(app)/demo"
        }
        do {
            let api = gateway + "/api/v1"
            var password = ""
            for _ in 0..<24 { password.append("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }
            let signup: [String: Any] = try await Self.call(
                client, api + "/auth/signup", body: ["email": "samples@streamhub.invalid", "password": password, "name": "Samples"], token: nil)
            guard let tenant = (signup["data"] as? [String: Any])?["tenantId"] as? String else {
                say("No sample app: sign-up of samples@streamhub.invalid failed (\(signup["message"] ?? "?")).")
                return nil
            }
            let token = try await TokenSeeder.mint(name: "streamhub up (sample app)", location: identityStore, create: false)
            let app: [String: Any] = try await Self.call(client, api + "/apps", body: ["name": "Samples", "tenantId": tenant], token: token)
            guard let appId = (app["data"] as? [String: Any])?["id"] as? String else {
                say("No sample app: \(app["message"] ?? "creating it failed").")
                return nil
            }
            _ = try await Self.call(client, api + "/apps/\(appId)/streams", body: ["room": "demo"], token: token)
            let target = mediaRoot + "/hls/\(appId)/demo"
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            for file in try FileManager.default.contentsOfDirectory(atPath: mediaRoot + "/samples/demo") {
                try? FileManager.default.copyItem(atPath: mediaRoot + "/samples/demo/" + file, toPath: target + "/" + file)
            }
            try appId.write(toFile: marker, atomically: true, encoding: .utf8)
            // The token served its purpose: revoke it rather than leave a global credential nobody holds.
            if let listed = try? await Self.get(client, api + "/tokens", token: token)["data"] as? [[String: Any]],
                let id = listed.first(where: { $0["name"] as? String == "streamhub up (sample app)" })?["id"] as? String
            {
                var request = HTTPClientRequest(url: api + "/tokens/\(id)")
                request.method = .DELETE
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                _ = try? await client.execute(request, timeout: .seconds(30))
            }
            return gateway + "/play/\(appId)/demo"
        } catch {
            say("No sample app: \(error).")
            return nil
        }
    }

    static func get(_ client: HTTPClient, _ url: String, token: String) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (try? JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any]) ?? [:]
    }

    static func call(_ client: HTTPClient, _ url: String, body: [String: String], token: String?) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (try? JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any]) ?? [:]
    }
}
