"""Headless Chromium goes through the self-service pages as a new user would.

Usage: chromium_pages.py CHROMIUM GATEWAY_URL OUTBOX_DIR SCREENSHOT_DIR

Sign-up on /login → the verification mail from the outbox → /login/verify → /account: TOTP set up
with the QR code the page draws (decoded with zbarimg when it is installed) and a code computed
from the key shown → recovery codes → sign out everywhere → a magic link from /login → the mail →
/login/magic asks for the TOTP code → signed in on /account. Prints one JSON line {steps}; exits 1
when a step failed.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import uuid

from headless_chromium import HeadlessPage


def totp(secret, at):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)


def mailed_token(outbox, email, kind, seen, timeout=20):
    """The token of the newest /login/<kind> link mailed to `email` that is not in `seen`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        names = sorted(n for n in os.listdir(outbox) if n.endswith(".eml")) if os.path.isdir(outbox) else []
        for name in reversed(names):
            with open(os.path.join(outbox, name), encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
            if "To: " + email not in lines:
                continue
            for line in lines:
                if "/login/%s?token=" % kind in line:
                    token = line.split("token=")[-1].strip()
                    if token not in seen:
                        seen.add(token)
                        return token
        time.sleep(0.2)
    return None


class Flow:
    def __init__(self, page, base):
        self.page, self.base = page, base

    def js(self, expression):
        return self.page.evaluate(expression)

    def until(self, expression, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.js(expression):
                    return True
            except Exception:
                pass
            time.sleep(0.2)
        return False

    def go(self, path):
        self.js("location.assign(%s)" % json.dumps(self.base + path))
        time.sleep(0.3)
        return self.until("document.readyState === 'complete' && !!document.getElementById('status')")

    def fill(self, values):
        for element, value in values.items():
            self.js("document.getElementById(%s).value = %s" % (json.dumps(element), json.dumps(value)))

    def submit(self, form):
        self.js("document.getElementById(%s).requestSubmit()" % json.dumps(form))

    def text(self, element):
        return self.js("(document.getElementById(%s) || {}).textContent || ''" % json.dumps(element))

    def visible(self, element):
        return "(function(){var e=document.getElementById(%s); return !!e && !e.hidden && e.offsetParent !== null;})()" % json.dumps(element)


def main():
    chromium, base, outbox, shots = sys.argv[1:5]
    email = "pages-%s@example.com" % uuid.uuid4().hex[:10]
    password = "correct horse battery"
    steps, seen = {}, set()
    with HeadlessPage(chromium, base + "/login", window="900,1400") as page:
        flow = Flow(page, base)
        steps["login_page"] = flow.until("document.readyState === 'complete' && !!document.getElementById('signup-form')")
        flow.fill({"signup-email": email, "signup-password": password})
        flow.submit("signup-form")
        steps["signed_up_to_account"] = flow.until(
            "location.pathname === '/account' && document.getElementById('account-email').textContent === %s" % json.dumps(email))
        steps["shown_unverified"] = flow.until("document.getElementById('account-verified').dataset.verified === 'false'")

        token = mailed_token(outbox, email, "verify", seen)
        steps["verification_mailed"] = token is not None
        flow.go("/login/verify?token=" + (token or ""))
        steps["verified"] = flow.until("document.getElementById('status').dataset.state === 'ok'") and \
            flow.text("status") == "Your e-mail address is verified."
        flow.go("/account")
        steps["shown_verified"] = flow.until("document.getElementById('account-verified').dataset.verified === 'true'")

        flow.js("document.getElementById('totp-start').click()")
        steps["totp_setup_shown"] = flow.until(flow.visible("totp-setup") + " && document.getElementById('totp-secret').textContent.length >= 16"
                                               + " && !!document.querySelector('#totp-qr svg path')")
        secret = flow.text("totp-secret")
        shot = page.screenshot(os.path.join(shots, "pages-totp.png"))
        zbar = shutil.which("zbarimg")
        if zbar and shot:
            decoded = subprocess.run([zbar, "-q", "--raw", shot], capture_output=True, text=True, timeout=30).stdout.strip()
            steps["qr_decodes_to_the_key"] = decoded.startswith("otpauth://totp/") and ("secret=" + secret) in decoded
        flow.fill({"totp-code": totp(secret, time.time())})
        flow.submit("totp-confirm-form")
        steps["recovery_codes_shown"] = flow.until(flow.visible("recovery") + " && document.querySelectorAll('#recovery-codes li').length === 10")

        flow.js("document.getElementById('logout').click()")
        steps["signed_out"] = flow.until("location.pathname === '/login' && location.search === '?signedOut=1'")
        steps["session_gone"] = flow.js("sessionStorage.getItem('streamhub.session') === null")

        flow.until("!!document.getElementById('magic-form')")
        flow.fill({"magic-email": email})
        flow.submit("magic-form")
        steps["magic_link_asked"] = flow.until("document.getElementById('status').dataset.state === 'ok'")
        token = mailed_token(outbox, email, "magic", seen)
        steps["magic_link_mailed"] = token is not None
        flow.go("/login/magic?token=" + (token or ""))
        steps["code_asked"] = flow.until(flow.visible("magic-code-form"))
        # The next step's code: accepted (one step of skew), and never the one spent above.
        flow.fill({"magic-code-input": totp(secret, time.time() + 30)})
        flow.submit("magic-code-form")
        steps["signed_in_with_link_and_code"] = flow.until(
            "location.pathname === '/account' && document.getElementById('account-email').textContent === %s" % json.dumps(email))
        page.screenshot(os.path.join(shots, "pages-account.png"))
    print(json.dumps({"steps": steps}))
    return 0 if all(steps.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
