"""Dashboard sessions against PyJWT: ours decode with PyJWT, and PyJWT's forgeries are refused.

Usage: jwt_forgery.py GATEWAY_URL JWT_SECRET ISSUER

Signs up a fresh user through the gateway, decodes the session with PyJWT (HS256, the secret,
our audience and issuer), then presents forged and altered tokens to GET /api/v1/auth/me: every
one must be a 401, while the genuine token is a 200. Prints one JSON line with the outcome of each
case; exits 1 when any case is wrong.
"""
import base64
import hashlib
import hmac
import json
import sys
import time
import uuid

import jwt

from gateway_http import call


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header, payload, key):
    """A token signed with HMAC-SHA256 whatever its header says (alg confusion)."""
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def main():
    gateway, secret, issuer = sys.argv[1], sys.argv[2], sys.argv[3]
    email = "pyjwt-%s@example.com" % uuid.uuid4().hex[:12]
    status, answer = call(gateway + "/api/v1/auth/signup", "POST", {"email": email, "password": "correct horse battery"})
    if status != 201:
        print(json.dumps({"error": "signup answered %d: %s" % (status, answer)}))
        return 1
    token = answer["data"]["token"]
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience="streamhub-dashboard", issuer=issuer,
                        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
    header = jwt.get_unverified_header(token)
    results = {
        "decoded": header.get("alg") == "HS256" and claims["exp"] - claims["iat"] == 12 * 3600
        and claims["sub"] == answer["data"]["user"]["id"] and claims["tenantId"] == answer["data"]["tenantId"],
    }
    now = int(time.time())
    base = dict(claims)
    forged = {
        "alg_none": jwt.encode(base, None, algorithm="none"),
        "hs512": jwt.encode(base, secret, algorithm="HS512"),
        "hs384": jwt.encode(base, secret, algorithm="HS384"),
        "rs256_header_hmac_secret": hand_signed({"alg": "RS256", "typ": "JWT"}, base, secret),
        "expired": jwt.encode(dict(base, iat=now - 7200, exp=now - 3600), secret, algorithm="HS256"),
        "no_exp": jwt.encode({k: v for k, v in base.items() if k != "exp"}, secret, algorithm="HS256"),
        "wrong_aud": jwt.encode(dict(base, aud="someone-else"), secret, algorithm="HS256"),
        "no_aud": jwt.encode({k: v for k, v in base.items() if k != "aud"}, secret, algorithm="HS256"),
        "wrong_iss": jwt.encode(dict(base, iss="https://evil.example"), secret, algorithm="HS256"),
        "wrong_secret": jwt.encode(base, secret + "-not", algorithm="HS256"),
        "not_yet_valid": jwt.encode(dict(base, nbf=now + 3600), secret, algorithm="HS256"),
        "superadmin_tampered": token.split(".")[0] + "." + b64(json.dumps(dict(base, superadmin=True)).encode()) + "." + token.split(".")[2],
    }
    status, _ = call(gateway + "/api/v1/auth/me", token=token)
    results["genuine"] = status == 200
    for name, candidate in forged.items():
        status, body = call(gateway + "/api/v1/auth/me", token=candidate)
        results[name] = status == 401 and body.get("statusCode") == 401
    print(json.dumps({"ok": all(results.values()), "cases": results}, sort_keys=True))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
