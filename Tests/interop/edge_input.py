"""Bad input at the gateway's edge, over raw sockets and http.client (stdlib only).

Usage: edge_input.py PORT BODY_TIMEOUT_S

Each case sends what a careless or hostile client sends and checks the answer: a status in the
NestJS body, and then either the same connection answering a health check (it stays usable) or
the server closing it cleanly (no reset before the answer was read). Prints one JSON line per
case; exits 1 when any case fails.
"""
import http.client
import json
import socket
import sys
import time

PORT = int(sys.argv[1])
BODY_TIMEOUT = float(sys.argv[2])
HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n"
failures = 0


def read_response(sock, timeout=10):
    """One HTTP/1.1 response (Content-Length framed): (status, headers, body), or None on EOF."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = int(headers.get("content-length", ["0"])[0])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def closed(sock):
    try:
        sock.settimeout(5)
        return sock.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return False


def case(name, request, status, after, message=None):
    """after: 'usable' (a health check on the same connection answers 200) or 'closed'."""
    global failures
    sock = socket.create_connection(("127.0.0.1", PORT))
    result = {"case": name}
    try:
        sock.sendall(request)
        answer = read_response(sock)
        if answer is None:
            result["error"] = "connection closed without an answer"
        else:
            got, headers, body = answer
            result["status"] = got
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {}
            ok = got == status and parsed.get("statusCode") == status and parsed.get("error")
            if message and message not in parsed.get("message", ""):
                ok = False
            if status == 401 and headers.get("www-authenticate") != ["Bearer"]:
                ok = False
            if after == "usable":
                sock.sendall(HEALTH)
                health = read_response(sock)
                result["then"] = health[0] if health else "closed"
                ok = ok and health is not None and health[0] == 200
            else:
                result["then"] = "closed" if closed(sock) else "open"
                ok = ok and result["then"] == "closed"
            if not ok:
                result["error"] = "expected %d then %s; body %r" % (status, after, body[:200])
    except OSError as error:
        result["error"] = "%s: %s" % (type(error).__name__, error)
    finally:
        sock.close()
    print(json.dumps(result))
    if "error" in result:
        failures += 1


def big_body(connection_close):
    """http.client sends the whole 8 MiB before reading, as most clients do: it must get the 413."""
    global failures
    result = {"case": "8 MiB body" + (" with Connection: close" if connection_close else "")}
    started = time.time()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        headers = {"Content-Type": "application/json"}
        if connection_close:
            headers["Connection"] = "close"
        connection.request("POST", "/api/v1/auth/login", body=b"a" * (8 << 20), headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read())
        result.update(status=response.status, seconds=round(time.time() - started, 2))
        if response.status != 413 or body.get("statusCode") != 413:
            result["error"] = "expected 413, got %r" % body
        connection.close()
    except OSError as error:
        result["error"] = "%s: %s" % (type(error).__name__, error)
    print(json.dumps(result))
    if "error" in result:
        failures += 1


def stalled_body():
    """A body that never arrives: 408 after the body timeout, connection closed."""
    global failures
    sock = socket.create_connection(("127.0.0.1", PORT))
    result = {"case": "stalled body"}
    started = time.time()
    try:
        sock.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"em")
        answer = read_response(sock, timeout=BODY_TIMEOUT + 10)
        result["seconds"] = round(time.time() - started, 2)
        result["status"] = answer[0] if answer else None
        if not answer or answer[0] != 408 or not (BODY_TIMEOUT - 0.5 <= result["seconds"] <= BODY_TIMEOUT + 3):
            result["error"] = "expected 408 after about %s s" % BODY_TIMEOUT
    except OSError as error:
        result["error"] = "%s: %s" % (type(error).__name__, error)
    finally:
        sock.close()
    print(json.dumps(result))
    if "error" in result:
        failures += 1


case("2000 headers", b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(2000)) + b"\r\n", 431, "closed")
case("one 200 KB header", b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n", 431, "closed")
case("9000-byte path", b"GET /api/v1/apps/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "usable")
case("invalid UTF-8 in the path", b"GET /api/v1/apps/%FF%FE HTTP/1.1\r\nHost: t\r\n\r\n", 400, "usable", "UTF-8")
case("invalid UTF-8 in the query", b"GET /api/v1/oembed?url=%C3%28 HTTP/1.1\r\nHost: t\r\n\r\n", 400, "usable", "UTF-8")
case("malformed percent-escape", b"GET /api/v1/apps/%G1 HTTP/1.1\r\nHost: t\r\n\r\n", 400, "usable")
case("raw bytes in the path", b"GET /api/v1/apps/\xff\xfe HTTP/1.1\r\nHost: t\r\n\r\n", 400, "closed")
case("two Content-Length", b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}", 400, "closed")
case("two Authorization headers", b"GET /api/v1/apps HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk_a\r\nAuthorization: Bearer sk_b\r\n\r\n", 401, "usable")
case("not HTTP", b"HELLO THERE\r\n\r\n", 400, "closed")
case("announced 8 MiB, Connection: close",
     b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % (8 << 20)
     + b"a" * (8 << 20), 413, "closed")
big_body(True)
big_body(False)
stalled_body()
sys.exit(1 if failures else 0)
