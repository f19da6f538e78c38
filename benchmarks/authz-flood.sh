#!/usr/bin/env bash
# Back-pressure check: one client pipelines enforce requests for 6 s and never reads the answers.
#
#   benchmarks/authz-flood.sh
#
# Builds streamhub-authz in release mode, starts it on 127.0.0.1:18088 with a fresh SQLite store,
# then prints how many requests the socket took before it stalled and how much the service's
# resident memory grew. With back-pressure the service stops reading once its answers back up,
# so both stay bounded however long the client keeps trying.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
swift build -c release --package-path "$ROOT" --product streamhub-authz >&2
WORK="$(mktemp -d)"
TOKEN="bench-internal-token-0123456789abcdef"
PORT=18088
STREAMHUB_INTERNAL_TOKEN="$TOKEN" STREAMHUB_DATA_DIR="$WORK" PORT=$PORT LOG_LEVEL=warning \
  "$ROOT/.build/release/streamhub-authz" 2>"$WORK/authz.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/internal/v1/health" >/dev/null && break; sleep 0.1; done
python3 - "$PID" "$PORT" "$TOKEN" <<'PY'
import socket, sys, time
pid, port, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def rss_kb():
    return int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")).split()[1])
body = b'{"subject":"user:1","tenant":"t1","resource":"app","action":"read"}'
request = (b"POST /internal/v1/enforce HTTP/1.1\r\nHost: x\r\nX-StreamHub-Internal-Token: " + token.encode()
           + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
chunk = request * 1000
client = socket.socket()
client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
client.connect(("127.0.0.1", port))
client.setblocking(False)
before = rss_kb()
sent, start = 0, time.time()
last = start
while time.time() - start < 6:
    try:
        sent += client.send(chunk)
        last = time.time()
    except BlockingIOError:
        time.sleep(0.01)
print(f"requests taken in 6 s without reading an answer: {sent // len(request)}; stalled for the last {time.time() - last:.1f} s")
print(f"service RSS: {before} kB before, {rss_kb()} kB after (+{rss_kb() - before} kB)")
client.close()
PY
