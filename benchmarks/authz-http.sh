#!/usr/bin/env bash
# Decisions per second of the authz service over loopback HTTP, single and batched.
#
#   benchmarks/authz-http.sh [SECONDS]
#
# Builds streamhub-authz in release mode, starts it on 127.0.0.1:18082 with a fresh SQLite
# store (mode on), grants 1,050 role assignments over 50 tenants, then drives
# POST /internal/v1/enforce (one decision per request) and /internal/v1/enforce/batch
# (100 decisions per request) with wrk (Debian package `wrk`), 2 threads, 32 connections.
# Requests cycle through 1,000 users, 50 tenants and 4 permissions.
set -euo pipefail
DURATION="${1:-10}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 2; }
swift build -c release --package-path "$ROOT" --product streamhub-authz >&2
BIN="$ROOT/.build/release/streamhub-authz"
WORK="$(mktemp -d)"
TOKEN="bench-internal-token-0123456789abcdef"
PORT=18082
STREAMHUB_INTERNAL_TOKEN="$TOKEN" STREAMHUB_DATA_DIR="$WORK" STREAMHUB_AUTHZ_ENFORCE=on PORT=$PORT LOG_LEVEL=warning \
  "$BIN" 2>"$WORK/authz.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/internal/v1/health" >/dev/null && break; sleep 0.1; done

# The assignments through the internal grant route identity uses (the public import would ask
# identity whether each tenant exists; this benchmark runs authz alone).
python3 - "$PORT" "$TOKEN" <<'PY'
import http.client, json, sys
port, token = int(sys.argv[1]), sys.argv[2]
roles = ["owner", "admin", "member", "viewer"]
conn = http.client.HTTPConnection("127.0.0.1", port)
def grant(subject, role, tenant):
    conn.request("POST", "/internal/v1/roles", body=json.dumps({"subject": subject, "role": role, "tenant": tenant}),
                 headers={"X-StreamHub-Internal-Token": token, "Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    if answer.status >= 300:
        raise SystemExit("grant answered %d" % answer.status)
for t in range(50):
    for u in range(t, 1000, 50):
        grant("user:%d" % u, roles[u % 4], "t%d" % t)
    grant("user:%d" % (t + 1000), "viewer", "t%d" % t)
PY

cat > "$WORK/single.lua" <<LUA
local perms = {{"app","read"},{"stream","write"},{"policy","write"},{"tenant","delete"}}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-StreamHub-Internal-Token"] = "$TOKEN"
request = function()
  n = n + 1
  local u = n % 1000
  local p = perms[(n % 4) + 1]
  return wrk.format(nil, "/internal/v1/enforce", nil,
    string.format('{"subject":"user:%d","tenant":"t%d","resource":"%s","action":"%s"}', u, u % 50, p[1], p[2]))
end
LUA
cat > "$WORK/batch.lua" <<LUA
local perms = {{"app","read"},{"stream","write"},{"policy","write"},{"tenant","delete"}}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-StreamHub-Internal-Token"] = "$TOKEN"
request = function()
  local items = {}
  for i = 1, 100 do
    n = n + 1
    local u = n % 1000
    local p = perms[(n % 4) + 1]
    items[i] = string.format('{"subject":"user:%d","tenant":"t%d","resource":"%s","action":"%s"}', u, u % 50, p[1], p[2])
  end
  return wrk.format(nil, "/internal/v1/enforce/batch", nil, '{"requests":[' .. table.concat(items, ",") .. ']}')
end
LUA
check=$(curl -fs -X POST "http://127.0.0.1:$PORT/internal/v1/enforce" -H "X-StreamHub-Internal-Token: $TOKEN" \
  -H "Content-Type: application/json" -d '{"subject":"user:1","tenant":"t1","resource":"app","action":"read"}')
echo "sanity: user:1 (admin in t1) app:read -> $check" >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); wrk on the same cores" >&2
single=$(wrk -t2 -c32 -d"${DURATION}s" -s "$WORK/single.lua" "http://127.0.0.1:$PORT" | awk '/Requests\/sec/ {print $2}')
batch=$(wrk -t2 -c32 -d"${DURATION}s" -s "$WORK/batch.lua" "http://127.0.0.1:$PORT" | awk '/Requests\/sec/ {print $2}')
printf 'single: %.0f decisions/s\nbatch(100): %.0f requests/s = %.0f decisions/s\n' "$single" "$batch" "$(echo "$batch * 100" | bc)"
grep -q '"level":"error"' "$WORK/authz.log" && { echo "errors in the service log:" >&2; grep '"level":"error"' "$WORK/authz.log" | head >&2; exit 1; } || true
