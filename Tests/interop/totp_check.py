"""TOTP against pyotp, the reference implementation authenticator apps match.

Usage: totp_check.py GATEWAY_URL

Signs up through the gateway, enrols TOTP, and from then on computes every code with pyotp from
our otpauth:// URI alone. Prints one JSON line with the outcome of each step; exits 1 when any is
wrong.
"""
import json
import sys
import time
import uuid

import pyotp

from gateway_http import call


def main():
    api = sys.argv[1] + "/api/v1"
    email = "totp-%s@example.com" % uuid.uuid4().hex[:12]
    password = "correct horse battery"
    status, answer = call(api + "/auth/signup", "POST", {"email": email, "password": password})
    session = answer["data"]["token"]
    status, answer = call(api + "/auth/totp/enroll", "POST", {}, token=session)
    enrolment = answer["data"]
    totp = pyotp.parse_uri(enrolment["otpauthUrl"])
    results = {
        "uri_parsed": isinstance(totp, pyotp.TOTP) and totp.digits == 6 and totp.interval == 30
        and totp.secret == enrolment["secret"] and enrolment["otpauthUrl"].startswith("otpauth://totp/"),
    }
    # Steps from here: s-1 confirms, s signs in, s+1 renews the recovery codes (all within ±1 step).
    now = time.time()
    if now % 30 > 27:  # keep the three steps inside the server's window
        time.sleep(30 - now % 30 + 0.5)
        now = time.time()
    status, answer = call(api + "/auth/totp/confirm", "POST", {"code": totp.at(now - 30)}, token=session)
    results["confirmed"] = status == 200 and len(answer["data"]["recoveryCodes"]) == 10
    recovery = answer["data"]["recoveryCodes"] if status == 200 else []

    login = {"email": email, "password": password}
    status, answer = call(api + "/auth/login", "POST", login)
    results["code_required"] = status == 401 and answer.get("totpRequired") is True
    wrong = str((int(totp.at(now)) + 1) % 1000000).zfill(6)
    status, answer = call(api + "/auth/login", "POST", dict(login, totpCode=wrong))
    results["wrong_code_refused"] = status == 401 and answer.get("totpRequired") is True
    status, answer = call(api + "/auth/login", "POST", dict(login, totpCode=totp.at(now)))
    results["code_accepted"] = status == 200 and "token" in answer["data"]
    status, _ = call(api + "/auth/login", "POST", dict(login, totpCode=totp.at(now)))
    results["code_not_twice"] = status == 401
    status, _ = call(api + "/auth/login", "POST", dict(login, totpCode=totp.at(now - 30)))
    results["older_code_refused"] = status == 401
    status, _ = call(api + "/auth/login", "POST", dict(login, totpCode=recovery[0]))
    results["recovery_accepted"] = status == 200
    status, _ = call(api + "/auth/login", "POST", dict(login, totpCode=recovery[0]))
    results["recovery_single_use"] = status == 401
    status, answer = call(api + "/auth/totp/recovery-codes", "POST", {"code": totp.at(now + 30)}, token=session)
    results["recovery_renewed"] = status == 200 and len(answer["data"]["recoveryCodes"]) == 10
    fresh = answer["data"]["recoveryCodes"] if status == 200 else [""]
    status, _ = call(api + "/auth/login", "POST", dict(login, totpCode=fresh[0]))
    results["new_recovery_accepted"] = status == 200
    status, _ = call(api + "/auth/login", "POST", dict(login, totpCode=recovery[1]))
    results["old_recovery_void"] = status == 401
    # Five wrong codes so far (a wrong one, a reused one, an older one, a spent and a void recovery
    # code): the account's limit. Now even pyotp's current code is refused, with Retry-After.
    status, answer = call(api + "/auth/login", "POST", dict(login, totpCode=totp.now()))
    results["guesses_limited"] = status == 429 and (answer or {}).get("retryAfterSeconds", 0) > 0
    print(json.dumps({"ok": all(results.values()), "steps": results}, sort_keys=True))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
