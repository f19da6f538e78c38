import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit
import Shared

/// The public player: `/play/:app/:room` (a page), `/embed/:app/:room` (the same player, frameable,
/// `?autoplay=1&muted=1`), the page script `/assets/streamhub-player.js`, the embeddable SDK
/// `/sdk/streamhub.js`, and oEmbed (`GET /api/v1/oembed?url=`). They are answered ahead of the
/// mounts' file lookup; every other path under the mounts is a file.
///
/// The pages carry no inline script (CSP `script-src 'self'`): the script reads the app and the
/// room from `data-` attributes, fetches a play token (a clear message when the app is unknown or
/// its playback is off), shows the room's status and plays `/hls/<app>/<room>/index.m3u8` — the
/// browser's own HLS where it has it, else Video.js when its file is installed under
/// `/assets/vendor/video.min.js` (PyPI `js.videojs`, put there at setup time, never a CDN).
public struct PlayerPages: Sendable {
    /// `STREAMHUB_PUBLIC_URL`: oEmbed answers absolute URLs on it.
    let publicURL: String

    public init(publicURL: String) {
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
    }

    enum Kind: String {
        case play, embed
    }

    /// `(kind, app, room)` when `path` is a player page: exactly `/play/<app>/<room>` or `/embed/<app>/<room>`.
    static func page(_ path: String) -> (Kind, String, String)? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count == 4, segments[0].isEmpty, let kind = Kind(rawValue: String(segments[1])) else { return nil }
        let app = String(segments[2])
        let room = String(segments[3])
        guard Identifier.problem(app) == nil, RoomName.isValid(room) else { return nil }
        return (kind, app, room)
    }

    /// The built-in answer for `path`, or nil to fall through to the mount's files.
    func response(for request: Request) -> Response? {
        let path = request.uri.path
        if let (kind, app, room) = Self.page(path) {
            return self.pageResponse(kind: kind, app: app, room: room, query: request.uri.queryParameters)
        }
        switch path {
        case "/assets/streamhub-player.js":
            return Self.script(PlayerScript.source)
        case "/sdk/streamhub.js":
            return Self.script(PlayerScript.sdk)
        default:
            return nil
        }
    }

    static func script(_ source: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "public, max-age=300", .accessControlAllowOrigin: "*"],
            body: .init(byteBuffer: ByteBuffer(string: source)))
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    func pageResponse(kind: Kind, app: String, room: String, query: Parameters) -> Response {
        let embed = kind == .embed
        let autoplay = !embed || ["1", "true"].contains(query.get("autoplay") ?? "")
        let muted = embed && ["1", "true"].contains(query.get("muted") ?? "")
        let title = "\(room) · StreamHub"
        let pageURL = "\(self.publicURL)/\(kind.rawValue)/\(app)/\(room)"
        let oembed = "\(self.publicURL)/api/v1/oembed?url=" + (pageURL.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        let html = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(Self.escape(title))</title>
            <link rel="alternate" type="application/json+oembed" href="\(Self.escape(oembed))" title="\(Self.escape(title))">
            <style>
            html, body { margin: 0; height: 100%; background: #000; color: #eee; font: 15px/1.4 system-ui, sans-serif; }
            main { display: flex; flex-direction: column; height: 100%; }
            video { flex: 1; width: 100%; min-height: 0; background: #000; }
            #status { padding: 6px 10px; font-size: 13px; color: #bbb; }
            #status[data-state="error"] { color: #f88; }
            #status[data-state="live"] { color: #8f8; }
            </style>
            </head>
            <body>
            <main id="streamhub-player" data-app="\(Self.escape(app))" data-room="\(Self.escape(room))" data-autoplay="\(autoplay)" data-muted="\(muted)">
            <video id="video" controls playsinline\(muted ? " muted" : "")\(autoplay ? " autoplay" : "")></video>
            <div id="status" role="status" data-state="loading">Loading…</div>
            </main>
            <script src="/assets/streamhub-player.js"></script>
            </body>
            </html>

            """
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .cacheControl: "no-cache",
        ]
        let ancestors = embed ? "*" : "'self'"
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; media-src 'self' blob:; connect-src 'self' ws: wss:; "
            + "img-src 'self' data:; frame-ancestors \(ancestors)"
        if !embed { headers[HTTPField.Name("X-Frame-Options")!] = "SAMEORIGIN" }
        headers[HTTPField.Name("Referrer-Policy")!] = "strict-origin-when-cross-origin"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// `GET /api/v1/oembed?url=<public URL>/(play|embed)/<app>/<room>[&maxwidth=&maxheight=]`:
    /// an oEmbed 1.0 `video` answer whose `html` frames `/embed`. Any other URL is a 404.
    @Sendable func oembed(_ request: Request, context: some RequestContext) async throws -> Response {
        guard let url = request.uri.queryParameters.get("url"), url.utf8.count <= 2048, url.hasPrefix(self.publicURL + "/") else {
            throw ServiceError.notFound("No StreamHub player at this URL")
        }
        var path = String(url.dropFirst(self.publicURL.count))
        if let query = path.firstIndex(of: "?") { path = String(path[..<query]) }
        guard let (_, app, room) = Self.page(path) else { throw ServiceError.notFound("No StreamHub player at this URL") }
        if let format = request.uri.queryParameters.get("format"), format != "json" {
            throw ServiceError(.notImplemented, message: "Only the json format is served")
        }
        let maxWidth = request.uri.queryParameters.get("maxwidth").flatMap(Int.init).map { max(1, min($0, 4096)) }
        let maxHeight = request.uri.queryParameters.get("maxheight").flatMap(Int.init).map { max(1, min($0, 4096)) }
        var width = min(maxWidth ?? 640, 640)
        var height = width * 9 / 16
        if let maxHeight, height > maxHeight {
            height = maxHeight
            width = height * 16 / 9
        }
        let src = "\(self.publicURL)/embed/\(app)/\(room)"
        let html =
            "<iframe src=\"\(Self.escape(src))\" width=\"\(width)\" height=\"\(height)\" frameborder=\"0\" allow=\"autoplay; fullscreen\" allowfullscreen></iframe>"
        return try JSONResponse.make(
            OEmbed(type: "video", version: "1.0", title: room, providerName: "StreamHub", providerURL: self.publicURL, html: html, width: width, height: height))
    }
}

/// The scripts served by ``PlayerPages``.
enum PlayerScript {
    /// The page script: play token → status → HLS, retrying while the stream has not started.
    static let source = #"""
        (function () {
          "use strict";
          var root = document.getElementById("streamhub-player");
          var video = document.getElementById("video");
          var status = document.getElementById("status");
          var app = root.dataset.app, room = root.dataset.room;
          var playlist = "/hls/" + encodeURIComponent(app) + "/" + encodeURIComponent(room) + "/index.m3u8";
          function say(state, text) { status.dataset.state = state; status.textContent = text; }
          function nativeHLS() { return video.canPlayType("application/vnd.apple.mpegurl") !== ""; }
          function withVideoJS(done) {
            if (window.videojs) { done(); return; }
            var s = document.createElement("script");
            s.src = "/assets/vendor/video.min.js";
            s.onload = done;
            s.onerror = function () { say("error", "This browser cannot play HLS by itself and the Video.js player is not installed on this server."); };
            document.head.appendChild(s);
          }
          function play() {
            if (nativeHLS()) {
              video.src = playlist;
              if (root.dataset.autoplay === "true") {
                // Browsers refuse unmuted autoplay without a gesture: then start muted (the controls unmute).
                video.play().catch(function () { video.muted = true; video.play().catch(function () {}); });
              }
            } else {
              withVideoJS(function () {
                var player = window.videojs(video, { autoplay: root.dataset.autoplay === "true" ? (root.dataset.muted === "true" ? "muted" : true) : false });
                player.src({ src: playlist, type: "application/x-mpegURL" });
              });
            }
            video.addEventListener("playing", function () { say("live", "Live · " + room); });
            video.addEventListener("timeupdate", function () { root.dataset.currentTime = video.currentTime.toFixed(2); });
            video.addEventListener("error", function () { say("error", "Playback failed; retrying…"); setTimeout(waitForStream, 5000); });
          }
          function waitForStream() {
            fetch(playlist, { method: "HEAD", cache: "no-store" }).then(function (r) {
              if (r.ok) { say("starting", "Starting " + room + "…"); play(); }
              else { say("waiting", "Waiting for " + room + " to go live…"); setTimeout(waitForStream, 5000); }
            }).catch(function () { setTimeout(waitForStream, 5000); });
          }
          fetch("/api/v1/apps/" + encodeURIComponent(app) + "/play-token/" + encodeURIComponent(room), { cache: "no-store" })
            .then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
            .then(function (answer) {
              if (answer.status === 200) { root.dataset.livekitUrl = answer.body.data.url; waitForStream(); }
              else if (answer.status === 403) { say("error", "Public playback is off for this app."); }
              else if (answer.status === 404) { say("error", "There is no stream called " + room + " here."); }
              else { say("error", "The stream cannot be played right now (" + answer.status + ")."); }
            })
            .catch(function () { say("error", "The server cannot be reached."); });
        })();
        """#

    /// The SDK: `StreamHub.mount(element, {app, room, base?, autoplay?, muted?})` frames the embed page.
    static let sdk = #"""
        /* StreamHub player SDK.
         *   <div id="player"></div>
         *   <script src="https://your-streamhub/sdk/streamhub.js"></script>
         *   <script>StreamHub.mount(document.getElementById("player"), { app: "APP_ID", room: "ROOM" });</script>
         * Options: base (the StreamHub URL; default: where this script came from), autoplay, muted,
         * width, height. Returns the iframe. StreamHub.playToken(app, room, base) resolves to the
         * play token answer {token, url, room, identity, expiresAt} for LiveKit's own client SDK. */
        (function (global) {
          "use strict";
          var current = document.currentScript && document.currentScript.src;
          var defaultBase = current ? new URL(current).origin : "";
          function base(b) { return (b || defaultBase).replace(/\/$/, ""); }
          function mount(element, options) {
            if (!element || !options || !options.app || !options.room) { throw new Error("StreamHub.mount(element, {app, room})"); }
            var query = [];
            if (options.autoplay) { query.push("autoplay=1"); }
            if (options.muted) { query.push("muted=1"); }
            var frame = document.createElement("iframe");
            frame.src = base(options.base) + "/embed/" + encodeURIComponent(options.app) + "/" + encodeURIComponent(options.room) + (query.length ? "?" + query.join("&") : "");
            frame.width = options.width || 640;
            frame.height = options.height || 360;
            frame.setAttribute("frameborder", "0");
            frame.setAttribute("allow", "autoplay; fullscreen");
            frame.allowFullscreen = true;
            element.appendChild(frame);
            return frame;
          }
          function playToken(app, room, b) {
            return fetch(base(b) + "/api/v1/apps/" + encodeURIComponent(app) + "/play-token/" + encodeURIComponent(room), { cache: "no-store" })
              .then(function (r) { return r.json().then(function (body) { if (!r.ok) { throw new Error(body.message || ("HTTP " + r.status)); } return body.data; }); });
          }
          global.StreamHub = { mount: mount, playToken: playToken };
        })(window);
        """#
}
