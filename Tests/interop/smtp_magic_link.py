"""Mail against aiosmtpd, a real SMTP server: the magic link and the reset link arrive over
STARTTLS with AUTH, and following them signs in and sets a new password.

Usage: smtp_magic_link.py GATEWAY_URL SMTP_PORT CERT_FILE KEY_FILE SMTP_USER SMTP_PASSWORD PUBLIC_URL

Identity was started with SMTP_HOST=127.0.0.1, SMTP_PORT, SMTP_SECURITY=starttls,
SMTP_CA_FILE=CERT_FILE and the user name and password. This script serves SMTP on that port
(refusing AUTH before TLS and any other credentials), then drives the gateway. Prints one JSON line
with the outcome of each step; exits 1 when any is wrong.
"""
import email
import email.policy
import json
import re
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from gateway_http import call


class Recorder:
    """Keeps every accepted message with what the session looked like when it was sent."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append({
                "tls": session.ssl is not None,
                "authenticated": session.authenticated,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message": email.message_from_bytes(envelope.original_content, policy=email.policy.default),
            })
        return "250 Message accepted for delivery"

    def wait_for(self, recipient, count, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                found = [m for m in self.messages if recipient in m["rcpt_tos"]]
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.1)
        return None


def main():
    gateway, port, cert, key, user, password, public_url = sys.argv[1:8]
    api = gateway + "/api/v1"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok)

    recorder = Recorder()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=int(port), tls_context=context, require_starttls=True,
        authenticator=authenticator, auth_require_tls=True, auth_required=True)
    controller.start()
    try:
        results = run(api, recorder, public_url)
    finally:
        controller.stop()
    print(json.dumps({"steps": results}))
    sys.exit(0 if all(results.values()) else 1)


def link_token(message, path):
    body = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"(\S+%s\?token=(\S+))" % re.escape(path), body)
    return (match.group(1), urllib.parse.unquote(match.group(2))) if match else (None, None)


def run(api, recorder, public_url):
    results = {}
    address = "smtp-%s@example.com" % uuid.uuid4().hex[:12]
    status, _ = call(api + "/auth/signup", "POST", {"email": address, "password": "first password 1"})
    results["signed_up"] = status == 201 or status == 200

    # Sign-up mails a verification link; magic links go to verified addresses only.
    mail = recorder.wait_for(address, 1)
    results["verification_mail_arrived"] = mail is not None
    if mail is None:
        return results
    url, token = link_token(mail["message"], "/login/verify")
    results["verification_link_points_at_pages"] = url is not None and url.startswith(public_url + "/login/verify?token=")
    status, _ = call(api + "/auth/verify", "POST", {"token": token})
    results["verification_link_verifies"] = status == 200

    status, answer = call(api + "/auth/magic-link", "POST", {"email": address})
    results["magic_link_accepted"] = status == 200
    mail = recorder.wait_for(address, 2)
    results["magic_mail_arrived"] = mail is not None
    if mail is None:
        return results
    results["over_starttls_with_auth"] = mail["tls"] and mail["authenticated"]
    message = mail["message"]
    results["headers"] = (
        message["To"] == address and "sign" in (message["Subject"] or "").lower()
        and message["Message-ID"] is not None and message["Date"] is not None
        and email.utils.parsedate_to_datetime(message["Date"]) is not None)
    url, token = link_token(message, "/login/magic")
    results["link_points_at_dashboard"] = url is not None and url.startswith(public_url + "/login/magic?token=")
    status, answer = call(api + "/auth/magic/verify", "POST", {"token": token})
    session = (answer or {}).get("data", {}).get("token") if status == 200 else None
    results["link_signs_in"] = session is not None
    status, answer = call(api + "/auth/me", token=session)
    results["session_is_the_user"] = status == 200 and answer["data"]["user"]["email"] == address
    status, _ = call(api + "/auth/magic/verify", "POST", {"token": token})
    results["link_single_use"] = status == 401

    status, _ = call(api + "/auth/reset-request", "POST", {"email": address})
    results["reset_accepted"] = status == 200
    mail = recorder.wait_for(address, 3)
    results["reset_mail_arrived"] = mail is not None
    if mail is None:
        return results
    url, token = link_token(mail["message"], "/login/reset")
    results["reset_link_points_at_dashboard"] = url is not None and url.startswith(public_url + "/login/reset?token=")
    status, _ = call(api + "/auth/reset", "POST", {"token": token, "password": "second password 2"})
    results["reset_sets_password"] = status == 200
    status, _ = call(api + "/auth/login", "POST", {"email": address, "password": "second password 2"})
    results["new_password_signs_in"] = status == 200
    status, _ = call(api + "/auth/login", "POST", {"email": address, "password": "first password 1"})
    results["old_password_refused"] = status == 401
    status, _ = call(api + "/auth/me", token=session)
    results["earlier_session_revoked"] = status == 401 or wait_revoked(api, session)
    return results


def wait_revoked(api, session, timeout=6):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, _ = call(api + "/auth/me", token=session)
        if status == 401:
            return True
        time.sleep(0.25)
    return False


if __name__ == "__main__":
    main()
