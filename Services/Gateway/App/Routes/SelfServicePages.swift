import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceKit

/// The pages a person needs to finish what a mail starts, served by the gateway itself (no
/// dashboard needed): `/login` (password, then the TOTP code when asked; a magic link; sign-up),
/// `/login/magic?token=` (spends the link, asks for the TOTP code when needed), `/login/reset`
/// (ask for a link; with `?token=`, the new password), `/login/verify?token=` (e-mail
/// verification), `/login/invite?token=` (accept signed in, or make the account) and `/account`
/// (the address and its state, TOTP enrolment with a QR code drawn in the page, recovery codes
/// shown once, the tenant's `sk_` tokens, sign out everywhere).
///
/// No inline script or style: one script and one stylesheet under `/login/assets/`, CSP
/// `default-src 'none'` with `'self'` for scripts, styles, images and the API; nothing from a third
/// party. The session lives in the tab's `sessionStorage`; after sign-in it goes to the dashboard
/// named by `STREAMHUB_DASHBOARD_URL` in the URL's fragment (`#session=…`, never sent to a server),
/// or the account page is shown.
struct SelfServicePages: Sendable {
    /// `STREAMHUB_DASHBOARD_URL`, or "" for none.
    let dashboardURL: String

    static let paths: [String: (title: String, page: String)] = [
        "/login": ("Sign in", "login"), "/login/magic": ("Signing in", "magic"), "/login/reset": ("Reset your password", "reset"),
        "/login/verify": ("Verify your e-mail address", "verify"), "/login/invite": ("Your invitation", "invite"), "/account": ("Your account", "account"),
    ]

    static let securityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    /// The answer for a GET or HEAD of `path`, or nil when it is not one of the pages.
    func response(path: String) -> Response? {
        switch path {
        case "/login/assets/pages.js":
            return Self.asset(Self.script, type: "text/javascript; charset=utf-8")
        case "/login/assets/pages.css":
            return Self.asset(Self.stylesheet, type: "text/css; charset=utf-8")
        default:
            guard let (title, page) = Self.paths[path] else { return nil }
            return Response(
                status: .ok,
                headers: [
                    .contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .contentSecurityPolicy: Self.securityPolicy,
                    HTTPField.Name("X-Frame-Options")!: "DENY", HTTPField.Name("Referrer-Policy")!: "no-referrer",
                    HTTPField.Name("X-Content-Type-Options")!: "nosniff",
                ],
                body: .init(byteBuffer: ByteBuffer(string: self.html(title: title, page: page))))
        }
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "no-cache", HTTPField.Name("X-Content-Type-Options")!: "nosniff"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    func html(title: String, page: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>StreamHub — \(title)</title>
        <link rel="stylesheet" href="/login/assets/pages.css">
        <script src="/login/assets/pages.js" defer></script>
        </head>
        <body data-page="\(page)" data-dashboard="\(Self.escape(self.dashboardURL))">
        <main>
        <h1>StreamHub — \(title)</h1>
        <p id="status" role="status" aria-live="polite"></p>
        \(Self.sections[page] ?? "")
        </main>
        </body>
        </html>
        """
    }

    static let sections: [String: String] = [
        "login": """
            <form id="login-form">
            <label>E-mail <input name="email" id="login-email" type="email" autocomplete="username" required></label>
            <label>Password <input name="password" id="login-password" type="password" autocomplete="current-password" required></label>
            <label id="login-code" hidden>Authenticator code <input name="totpCode" id="login-code-input" inputmode="numeric" autocomplete="one-time-code"></label>
            <button type="submit" id="login-submit">Sign in</button>
            </form>
            <p><a href="/login/reset">Forgot your password?</a></p>
            <h2>Sign in with a link</h2>
            <form id="magic-form">
            <label>E-mail <input name="email" id="magic-email" type="email" required></label>
            <button type="submit" id="magic-submit">E-mail me a sign-in link</button>
            </form>
            <h2>New here?</h2>
            <form id="signup-form">
            <label>E-mail <input name="email" id="signup-email" type="email" autocomplete="username" required></label>
            <label>Password (at least 8 characters) <input name="password" id="signup-password" type="password" autocomplete="new-password" minlength="8" required></label>
            <button type="submit" id="signup-submit">Create an account</button>
            </form>
            """,
        "magic": """
            <form id="magic-code-form" hidden>
            <label>Authenticator code <input name="totpCode" id="magic-code-input" inputmode="numeric" autocomplete="one-time-code" required></label>
            <button type="submit" id="magic-code-submit">Sign in</button>
            </form>
            <p><a href="/login">Back to sign-in</a></p>
            """,
        "reset": """
            <form id="reset-request-form" hidden>
            <label>E-mail <input name="email" id="reset-email" type="email" required></label>
            <button type="submit" id="reset-request-submit">E-mail me a reset link</button>
            </form>
            <form id="reset-form" hidden>
            <label>New password (at least 8 characters) <input name="password" id="reset-password" type="password" autocomplete="new-password" minlength="8" required></label>
            <label>The same again <input name="repeat" id="reset-repeat" type="password" autocomplete="new-password" minlength="8" required></label>
            <button type="submit" id="reset-submit">Set the password</button>
            </form>
            <p id="reset-done" hidden><a href="/login">Sign in with it</a></p>
            """,
        "verify": """
            <p id="verify-next" hidden><a href="/account">Your account</a> · <a href="/login">Sign in</a></p>
            """,
        "invite": """
            <section id="invite-accept" hidden>
            <p>You are signed in: accept the invitation as yourself.</p>
            <button type="button" id="invite-accept-button">Accept the invitation</button>
            </section>
            <form id="invite-signup-form" hidden>
            <p>Make your account for the invited address, or <a id="invite-login" href="/login">sign in</a> if you have one.</p>
            <label>Your name (optional) <input name="name" id="invite-name" autocomplete="name"></label>
            <label>Password (at least 8 characters) <input name="password" id="invite-password" type="password" autocomplete="new-password" minlength="8" required></label>
            <button type="submit" id="invite-submit">Create the account and join</button>
            </form>
            """,
        "account": """
            <section id="account" hidden>
            <p>Signed in as <b id="account-email"></b>: e-mail address <span id="account-verified"></span>.
            <button type="button" id="account-resend" hidden>Send the verification link again</button></p>
            <p>Tenants: <span id="account-tenants"></span></p>
            <h2>Two-factor sign-in</h2>
            <button type="button" id="totp-start">Set up an authenticator app</button>
            <div id="totp-setup" hidden>
            <div id="totp-qr"></div>
            <p>Or enter this key by hand: <code id="totp-secret"></code></p>
            <form id="totp-confirm-form">
            <label>The code the app shows <input name="code" id="totp-code" inputmode="numeric" autocomplete="one-time-code" required></label>
            <button type="submit" id="totp-confirm">Turn on two-factor sign-in</button>
            </form>
            </div>
            <div id="recovery" hidden>
            <p>Recovery codes (each works once, shown only now):</p>
            <ul id="recovery-codes"></ul>
            </div>
            <section id="tokens-section" hidden>
            <h2>API tokens</h2>
            <ul id="tokens"></ul>
            <form id="token-form" hidden>
            <label>Name <input name="name" id="token-name" required></label>
            <label>App <select name="appId" id="token-app"></select></label>
            <button type="submit" id="token-submit">Make a token for this app</button>
            </form>
            <p id="token-created-box" hidden>New token (shown once): <code id="token-created"></code></p>
            </section>
            <h2>Sign out</h2>
            <button type="button" id="logout">Sign out everywhere</button>
            </section>
            """,
    ]

    static let stylesheet = #"""
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1b1d21; }
main { max-width: 34rem; margin: 3rem auto; padding: 2rem; background: #fff; border-radius: 8px; box-shadow: 0 1px 4px rgba(0, 0, 0, .12); }
h1 { margin-top: 0; font-size: 1.4rem; }
h2 { font-size: 1.1rem; margin-top: 2rem; }
form, section { margin: 1rem 0; }
label { display: block; margin: .5rem 0; }
input, select { display: block; width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; border: 1px solid #b9bec7; border-radius: 4px; }
button { margin-top: .5rem; padding: .5rem 1rem; font: inherit; border: 0; border-radius: 4px; background: #2f5bd3; color: #fff; cursor: pointer; }
button[disabled] { opacity: .6; }
#status { min-height: 1.5rem; }
#status[data-state=error] { color: #b00020; }
#status[data-state=ok] { color: #146c2e; }
code { word-break: break-all; background: #f0f1f4; padding: .1rem .3rem; border-radius: 3px; }
#totp-qr svg { display: block; margin: 1rem 0; }
[hidden] { display: none !important; }
"""#

    static let script = #"""
(function () {
  "use strict";
  // QR code (ISO/IEC 18004), byte mode, error correction level M, mask 0: the otpauth URI drawn
  // here, never sent anywhere. Returns the module matrix (true = dark).
  var QR = (function () {
    var ECC = [-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28];
    var BLOCKS = [-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49];
    function rawModules(ver) {
      var result = (16 * ver + 128) * ver + 64;
      if (ver >= 2) {
        var align = Math.floor(ver / 7) + 2;
        result -= (25 * align - 10) * align - 55;
        if (ver >= 7) result -= 36;
      }
      return result;
    }
    function dataCodewords(ver) { return Math.floor(rawModules(ver) / 8) - ECC[ver] * BLOCKS[ver]; }
    function gfMul(x, y) {
      var z = 0;
      for (var i = 7; i >= 0; i--) {
        z = (z << 1) ^ ((z >>> 7) * 0x11d);
        z ^= ((y >>> i) & 1) * x;
      }
      return z & 0xff;
    }
    function divisor(degree) {
      var result = [];
      for (var i = 0; i < degree - 1; i++) result.push(0);
      result.push(1);
      var root = 1;
      for (i = 0; i < degree; i++) {
        for (var j = 0; j < result.length; j++) {
          result[j] = gfMul(result[j], root);
          if (j + 1 < result.length) result[j] ^= result[j + 1];
        }
        root = gfMul(root, 0x02);
      }
      return result;
    }
    function remainder(data, div) {
      var result = div.map(function () { return 0; });
      data.forEach(function (b) {
        var factor = b ^ result.shift();
        result.push(0);
        div.forEach(function (coef, i) { result[i] ^= gfMul(coef, factor); });
      });
      return result;
    }
    function alignmentPositions(ver, size) {
      if (ver === 1) return [];
      var count = Math.floor(ver / 7) + 2;
      var step = Math.floor((ver * 8 + count * 3 + 5) / (count * 4 - 4)) * 2;
      var result = [6];
      for (var pos = size - 7; result.length < count; pos -= step) result.splice(1, 0, pos);
      return result;
    }
    function encode(text) {
      var bytes = Array.from(new TextEncoder().encode(text));
      var ver = 1;
      for (; ver <= 40; ver++) {
        var countBits = ver < 10 ? 8 : 16;
        if (4 + countBits + bytes.length * 8 <= dataCodewords(ver) * 8) break;
      }
      if (ver > 40) throw new Error("too long for a QR code");
      var bits = [];
      function put(value, length) { for (var i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1); }
      put(4, 4);
      put(bytes.length, ver < 10 ? 8 : 16);
      bytes.forEach(function (b) { put(b, 8); });
      var capacity = dataCodewords(ver) * 8;
      put(0, Math.min(4, capacity - bits.length));
      put(0, (8 - bits.length % 8) % 8);
      for (var pad = 0xec; bits.length < capacity; pad ^= 0xec ^ 0x11) put(pad, 8);
      var data = [];
      for (var i = 0; i < bits.length; i += 8) {
        var byte = 0;
        for (var k = 0; k < 8; k++) byte = (byte << 1) | bits[i + k];
        data.push(byte);
      }
      // Error correction, in blocks, interleaved.
      var blockCount = BLOCKS[ver], eccLength = ECC[ver];
      var raw = Math.floor(rawModules(ver) / 8);
      var shortBlocks = blockCount - raw % blockCount, shortLength = Math.floor(raw / blockCount);
      var div = divisor(eccLength), blocks = [];
      for (var b = 0, at = 0; b < blockCount; b++) {
        var chunk = data.slice(at, at + shortLength - eccLength + (b < shortBlocks ? 0 : 1));
        at += chunk.length;
        var ecc = remainder(chunk, div);
        if (b < shortBlocks) chunk.push(0);
        blocks.push(chunk.concat(ecc));
      }
      var codewords = [];
      for (i = 0; i < blocks[0].length; i++) {
        blocks.forEach(function (block, j) {
          if (i !== shortLength - eccLength || j >= shortBlocks) codewords.push(block[i]);
        });
      }
      // The matrix: function patterns, then the data, masked.
      var size = ver * 4 + 17;
      var modules = [], isFunction = [];
      for (i = 0; i < size; i++) { modules.push(new Array(size).fill(false)); isFunction.push(new Array(size).fill(false)); }
      function set(x, y, dark) { modules[y][x] = dark; isFunction[y][x] = true; }
      for (i = 0; i < size; i++) { set(6, i, i % 2 === 0); set(i, 6, i % 2 === 0); }
      [[3, 3], [size - 4, 3], [3, size - 4]].forEach(function (c) {
        for (var dy = -4; dy <= 4; dy++) for (var dx = -4; dx <= 4; dx++) {
          var d = Math.max(Math.abs(dx), Math.abs(dy)), xx = c[0] + dx, yy = c[1] + dy;
          if (xx >= 0 && xx < size && yy >= 0 && yy < size) set(xx, yy, d !== 2 && d !== 4);
        }
      });
      var positions = alignmentPositions(ver, size), last = positions.length - 1;
      positions.forEach(function (py, i2) {
        positions.forEach(function (px, j2) {
          if ((i2 === 0 && j2 === 0) || (i2 === 0 && j2 === last) || (i2 === last && j2 === 0)) return;
          for (var dy = -2; dy <= 2; dy++) for (var dx = -2; dx <= 2; dx++) set(px + dx, py + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
        });
      });
      // Format bits: level M (00), mask 0.
      var format = 0 << 3 | 0, rem = format;
      for (i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
      var fbits = ((format << 10) | rem) ^ 0x5412;
      function bit(value, i3) { return ((value >>> i3) & 1) !== 0; }
      for (i = 0; i <= 5; i++) set(8, i, bit(fbits, i));
      set(8, 7, bit(fbits, 6));
      set(8, 8, bit(fbits, 7));
      set(7, 8, bit(fbits, 8));
      for (i = 9; i < 15; i++) set(14 - i, 8, bit(fbits, i));
      for (i = 0; i < 8; i++) set(size - 1 - i, 8, bit(fbits, i));
      for (i = 8; i < 15; i++) set(8, size - 15 + i, bit(fbits, i));
      set(8, size - 8, true);
      if (ver >= 7) {
        var vrem = ver;
        for (i = 0; i < 12; i++) vrem = (vrem << 1) ^ ((vrem >>> 11) * 0x1f25);
        var vbits = ver << 12 | vrem;
        for (i = 0; i < 18; i++) {
          var a = size - 11 + i % 3, bb = Math.floor(i / 3);
          set(a, bb, bit(vbits, i));
          set(bb, a, bit(vbits, i));
        }
      }
      var n = 0;
      for (var right = size - 1; right >= 1; right -= 2) {
        if (right === 6) right = 5;
        for (var vert = 0; vert < size; vert++) {
          for (var j = 0; j < 2; j++) {
            var x = right - j, upward = ((right + 1) & 2) === 0, y = upward ? size - 1 - vert : vert;
            if (!isFunction[y][x] && n < codewords.length * 8) {
              modules[y][x] = bit(codewords[n >>> 3], 7 - (n & 7));
              n++;
            }
            if (!isFunction[y][x] && (x + y) % 2 === 0) modules[y][x] = !modules[y][x];
          }
        }
      }
      return modules;
    }
    return { encode: encode };
  })();

  // The self-service pages: one script for all of them (the page is <body data-page>). It talks
  // to /api/v1 on the same origin and keeps the session in this tab's sessionStorage only.
  var KEY = "streamhub.session";
  var page = document.body.dataset.page;
  var dashboard = document.body.dataset.dashboard || "";
  var params = new URLSearchParams(location.search);

  function $(id) { return document.getElementById(id); }
  function show(id, on) { var e = $(id); if (e) e.hidden = on === false; }
  function say(text, state) {
    var status = $("status");
    status.textContent = text;
    status.dataset.state = state || "info";
  }
  function session() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (e) { return null; }
  }
  function keep(answer) { sessionStorage.setItem(KEY, JSON.stringify({ token: answer.token, expiresAt: answer.expiresAt })); }
  function forget() { sessionStorage.removeItem(KEY); }

  function api(method, path, body, token) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch("/api/v1" + path, {
      method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", credentials: "omit"
    }).then(function (response) {
      return response.text().then(function (text) {
        var payload = null;
        try { payload = text ? JSON.parse(text) : null; } catch (e) { payload = null; }
        if (response.ok) return { ok: true, status: response.status, data: payload && "data" in payload ? payload.data : payload };
        var message = payload && payload.message ? (Array.isArray(payload.message) ? payload.message.join("; ") : payload.message) : "HTTP " + response.status;
        return { ok: false, status: response.status, error: payload || {}, message: message };
      });
    }, function () {
      return { ok: false, status: 0, error: {}, message: "The server cannot be reached; try again." };
    });
  }

  // Where a page sends a signed-in user: the `next` page of this site, the dashboard (which gets
  // the session in the URL's fragment, never sent to a server), or the account page.
  function signedIn(answer) {
    keep(answer);
    var next = params.get("next");
    if (next && next.charAt(0) === "/" && next.charAt(1) !== "/" && next.indexOf("\\") < 0) { location.assign(next); return; }
    if (dashboard) { location.assign(dashboard + "#session=" + encodeURIComponent(answer.token)); return; }
    location.assign("/account");
  }

  function form(id, handler) {
    var element = $(id);
    if (!element) return;
    element.addEventListener("submit", function (event) {
      event.preventDefault();
      var values = {};
      Array.prototype.forEach.call(element.elements, function (input) { if (input.name) values[input.name] = input.value; });
      var button = element.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      Promise.resolve(handler(values, element)).then(function () { if (button) button.disabled = false; });
    });
  }

  function needsCode(result) { return result.status === 401 && result.error && result.error.totpRequired === true; }

  var pages = {
    login: function () {
      if (params.get("signedOut") === "1") say("You are signed out everywhere.", "ok");
      form("login-form", function (v) {
        var body = { email: v.email, password: v.password };
        if (v.totpCode) body.totpCode = v.totpCode;
        return api("POST", "/auth/login", body).then(function (r) {
          if (r.ok) return signedIn(r.data);
          if (needsCode(r)) { show("login-code"); $("login-code-input").focus(); return say("Enter the code from your authenticator app (or a recovery code).", "info"); }
          say(r.message, "error");
        });
      });
      form("magic-form", function (v) {
        return api("POST", "/auth/magic-link", { email: v.email }).then(function (r) { say(r.ok ? r.data.message : r.message, r.ok ? "ok" : "error"); });
      });
      form("signup-form", function (v) {
        return api("POST", "/auth/signup", { email: v.email, password: v.password }).then(function (r) {
          if (r.ok && r.data && r.data.token) return signedIn(r.data);
          say(r.ok ? r.data.message : r.message, r.ok ? "ok" : "error");
        });
      });
    },

    magic: function () {
      var token = params.get("token") || "";
      function verify(code) {
        var body = { token: token };
        if (code) body.totpCode = code;
        return api("POST", "/auth/magic/verify", body).then(function (r) {
          if (r.ok) return signedIn(r.data);
          if (needsCode(r)) { show("magic-code-form"); $("magic-code-input").focus(); return say("This account uses two-factor sign-in: enter the code from your authenticator app (or a recovery code).", "info"); }
          say(r.message + " — ask for a new link on the sign-in page.", "error");
        });
      }
      if (!token) return say("This link has no token: ask for a new one on the sign-in page.", "error");
      say("Checking your link…");
      verify();
      form("magic-code-form", function (v) { return verify(v.totpCode); });
    },

    reset: function () {
      var token = params.get("token");
      show("reset-request-form", !token);
      show("reset-form", !!token);
      form("reset-request-form", function (v) {
        return api("POST", "/auth/reset-request", { email: v.email }).then(function (r) { say(r.ok ? r.data.message : r.message, r.ok ? "ok" : "error"); });
      });
      form("reset-form", function (v) {
        if (v.password !== v.repeat) return say("The two passwords differ.", "error");
        return api("POST", "/auth/reset", { token: token, password: v.password }).then(function (r) {
          if (r.ok) { forget(); show("reset-form", false); show("reset-done"); }
          say(r.ok ? r.data.message : r.message, r.ok ? "ok" : "error");
        });
      });
    },

    verify: function () {
      var token = params.get("token") || "";
      if (!token) return say("This link has no token: sign in and ask for a new one.", "error");
      say("Checking your link…");
      return api("POST", "/auth/verify", { token: token }).then(function (r) {
        say(r.ok ? r.data.message : r.message + " — sign in and ask for a new link.", r.ok ? "ok" : "error");
        show("verify-next");
      });
    },

    invite: function () {
      var token = params.get("token") || "";
      var current = session();
      $("invite-login").href = "/login?next=" + encodeURIComponent("/login/invite?token=" + token);
      if (current) {
        show("invite-accept");
        $("invite-accept-button").addEventListener("click", function () {
          api("POST", "/auth/invitations/accept", { token: token }, current.token).then(function (r) {
            if (r.ok) return signedIn(r.data);
            say(r.message, "error");
          });
        });
      } else {
        show("invite-signup-form");
      }
      form("invite-signup-form", function (v) {
        var body = { token: token, password: v.password };
        if (v.name) body.name = v.name;
        return api("POST", "/auth/invitations/signup", body).then(function (r) {
          if (r.ok) return signedIn(r.data);
          say(r.message, "error");
        });
      });
    },

    account: function () {
      var current = session();
      if (!current) { location.assign("/login?next=/account"); return; }
      var token = current.token;
      function load() {
        return api("GET", "/auth/me", undefined, token).then(function (r) {
          if (!r.ok) { forget(); location.assign("/login?next=/account"); return; }
          var user = r.data.user;
          $("account-email").textContent = user.email;
          $("account-verified").textContent = user.emailVerified ? "verified" : "not verified yet";
          $("account-verified").dataset.verified = user.emailVerified ? "true" : "false";
          show("account-resend", !user.emailVerified);
          $("account-tenants").textContent = (r.data.tenants || []).map(function (t) { return t.tenant.name + " (" + t.roles.join(", ") + ")"; }).join("; ") || "none";
          show("account");
          loadTokens();
        });
      }
      function loadTokens() {
        return api("GET", "/tokens", undefined, token).then(function (r) {
          var list = $("tokens");
          list.textContent = "";
          if (!r.ok) { show("tokens-section", false); return; }
          show("tokens-section");
          r.data.filter(function (t) { return !t.revokedAt; }).forEach(function (t) {
            var item = document.createElement("li");
            item.textContent = t.name + " — " + t.prefix + "… (" + t.scope + (t.appId ? " " + t.appId : "") + ") ";
            var revoke = document.createElement("button");
            revoke.type = "button";
            revoke.textContent = "Revoke";
            revoke.addEventListener("click", function () {
              api("DELETE", "/tokens/" + encodeURIComponent(t.id), undefined, token).then(function (x) { say(x.ok ? "Token revoked." : x.message, x.ok ? "ok" : "error"); loadTokens(); });
            });
            item.appendChild(revoke);
            list.appendChild(item);
          });
          api("GET", "/apps", undefined, token).then(function (apps) {
            var select = $("token-app");
            select.textContent = "";
            (apps.ok ? apps.data : []).forEach(function (app) {
              var option = document.createElement("option");
              option.value = app.id;
              option.textContent = app.name;
              select.appendChild(option);
            });
            show("token-form", apps.ok && apps.data.length > 0);
          });
        });
      }
      $("account-resend").addEventListener("click", function () {
        api("POST", "/auth/verify-request", { email: $("account-email").textContent }).then(function (r) { say(r.ok ? r.data.message : r.message, r.ok ? "ok" : "error"); });
      });
      $("totp-start").addEventListener("click", function () {
        api("POST", "/auth/totp/enroll", undefined, token).then(function (r) {
          if (!r.ok) return say(r.message, "error");
          drawQR($("totp-qr"), r.data.otpauthUrl);
          $("totp-secret").textContent = r.data.secret;
          show("totp-setup");
          say("Scan the code with your authenticator app, then enter the code it shows.", "info");
        });
      });
      form("totp-confirm-form", function (v) {
        return api("POST", "/auth/totp/confirm", { code: v.code }, token).then(function (r) {
          if (!r.ok) return say(r.message, "error");
          show("totp-setup", false);
          var list = $("recovery-codes");
          list.textContent = "";
          r.data.recoveryCodes.forEach(function (code) { var li = document.createElement("li"); li.textContent = code; list.appendChild(li); });
          show("recovery");
          say("Two-factor sign-in is on. Keep the recovery codes somewhere safe: they are shown only now.", "ok");
        });
      });
      form("token-form", function (v) {
        return api("POST", "/tokens", { name: v.name, scope: "app", appId: v.appId }, token).then(function (r) {
          if (!r.ok) return say(r.message, "error");
          $("token-created").textContent = r.data.token;
          show("token-created-box");
          say("Copy the token now: it is shown only once.", "ok");
          loadTokens();
        });
      });
      $("logout").addEventListener("click", function () {
        api("POST", "/auth/logout", undefined, token).then(function (r) {
          if (!r.ok) return say(r.message, "error");
          forget();
          location.assign("/login?signedOut=1");
        });
      });
      load();
    }
  };

  function drawQR(container, text) {
    var modules = QR.encode(text), size = modules.length, border = 4, ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + (size + border * 2) + " " + (size + border * 2));
    svg.setAttribute("width", String((size + border * 2) * 5));
    svg.setAttribute("height", String((size + border * 2) * 5));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "QR code for your authenticator app");
    var background = document.createElementNS(ns, "rect");
    background.setAttribute("width", "100%");
    background.setAttribute("height", "100%");
    background.setAttribute("fill", "#fff");
    svg.appendChild(background);
    var path = "";
    for (var y = 0; y < size; y++) for (var x = 0; x < size; x++) if (modules[y][x]) path += "M" + (x + border) + "," + (y + border) + "h1v1h-1z";
    var dark = document.createElementNS(ns, "path");
    dark.setAttribute("d", path);
    dark.setAttribute("fill", "#000");
    svg.appendChild(dark);
    container.textContent = "";
    container.appendChild(svg);
  }

  if (pages[page]) pages[page]();
})();
"""#
}
