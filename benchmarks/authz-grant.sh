#!/usr/bin/env bash
# Role grants against a large policy, and how soon another replica decides with them.
#
#   STREAMHUB_BENCH_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
#     benchmarks/authz-grant.sh [RULES] [GRANTS]
#
# Builds streamhub-authz in release mode and starts two replicas on one fresh PostgreSQL database
# (created in STREAMHUB_BENCH_DATABASE_URL's server, dropped at the end). Imports RULES role
# assignments (default 100,000) over 100 tenants, then makes GRANTS (default 200) role grants one
# after another through POST /internal/v1/roles on replica A (what identity calls at sign-up) and,
# after each, asks replica B to decide for the new member until it allows. The RULES are seeded
# with psql straight into the store (both replicas then load them). Prints p50/p99/max of
# the grant's answer time and of the time until replica B decides with it.
set -euo pipefail
RULES="${1:-100000}"
GRANTS="${2:-200}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASE_URL="${STREAMHUB_BENCH_DATABASE_URL:?set STREAMHUB_BENCH_DATABASE_URL to a PostgreSQL server URL}"
swift build -c release --package-path "$ROOT" --product streamhub-authz >&2
BIN="$ROOT/.build/release/streamhub-authz"
WORK="$(mktemp -d)"
DB="bench_grants_$$"
psql -q "$BASE_URL" -c "CREATE DATABASE $DB" >/dev/null
URL="${BASE_URL%/*}/$DB"
TOKEN="bench-internal-token-0123456789abcdef"
start() { # port
  STREAMHUB_INTERNAL_TOKEN="$TOKEN" DATABASE_URL="$URL" STREAMHUB_AUTHZ_ENFORCE=on PORT=$1 LOG_LEVEL=warning "$BIN" >/dev/null 2>"$WORK/authz-$1.log" &
  echo $!
}
A=$(start 18182)
for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:18182/internal/v1/ready" >/dev/null && break; sleep 0.1; done
B=$(start 18183)
trap 'kill $A $B 2>/dev/null; wait $A $B 2>/dev/null; psql -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $DB" >/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:18183/internal/v1/ready" >/dev/null && break; sleep 0.1; done

python3 - "$RULES" "$GRANTS" "$TOKEN" "$WORK/seed.csv" "$URL" <<'PY'
import base64, http.client, json, statistics, subprocess, sys, time
rules, grants, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
principal = base64.urlsafe_b64encode(json.dumps({"kind": "apiToken", "scope": "global", "subject": "token:bench", "superadmin": False}).encode()).decode().rstrip("=")
a = http.client.HTTPConnection("127.0.0.1", 18182)
b = http.client.HTTPConnection("127.0.0.1", 18183)
def call(conn, method, path, body, content_type="application/json"):
    headers = {"X-StreamHub-Internal-Token": token, "X-StreamHub-Principal": principal, "Content-Type": content_type}
    conn.request(method, path, body=body, headers=headers)
    answer = conn.getresponse()
    data = answer.read()
    if answer.status >= 300:
        raise SystemExit("%s %s → %d %s" % (method, path, answer.status, data[:200]))
    return json.loads(data) if data else None
roles = ["owner", "admin", "member", "viewer"]
started = time.time()
per_tenant = rules // 100
# Seeded straight into the store (the import route checks each line against the policy, which is
# not what this measures); the version bump makes both replicas load it.
with open(sys.argv[4], "w") as seed:
    for t in range(100):
        for u in range(t * per_tenant, (t + 1) * per_tenant):
            seed.write('g,user:seed%d,%s,t%d,"","",""\n' % (u, roles[u % 4], t))
subprocess.run(["psql", "-q", sys.argv[5], "-c", "\\copy authz_rules (ptype, v0, v1, v2, v3, v4, v5) FROM '%s' CSV" % sys.argv[4]], check=True)
subprocess.run(["psql", "-q", sys.argv[5], "-c", "UPDATE authz_policy_version SET version = version + 1 WHERE id = 1"], check=True)
def version(conn):
    return call(conn, "GET", "/internal/v1/policy/version", None)["version"]
stored = int(subprocess.run(["psql", "-qtA", sys.argv[5], "-c", "SELECT version FROM authz_policy_version"], check=True, capture_output=True, text=True).stdout)
while version(a) != stored or version(b) != stored:
    time.sleep(0.2)
print("seeded %d rules; both replicas loaded them %.1f s after the start" % (per_tenant * 100, time.time() - started), file=sys.stderr)
time.sleep(2)
answer_ms, follow_ms = [], []
for n in range(grants):
    user = "user:new%d" % n
    t0 = time.perf_counter()
    call(a, "POST", "/internal/v1/roles", json.dumps({"subject": user, "role": "member", "tenant": "t%d" % (n % 100)}).encode())
    t1 = time.perf_counter()
    answer_ms.append((t1 - t0) * 1000)
    ask = json.dumps({"subject": user, "tenant": "t%d" % (n % 100), "resource": "app", "action": "write"}).encode()
    while True:
        decision = call(b, "POST", "/internal/v1/enforce", ask)
        if decision["allowed"]:
            break
        if time.perf_counter() - t1 > 10:
            raise SystemExit("replica B did not follow grant %d within 10 s" % n)
        time.sleep(0.002)
    follow_ms.append((time.perf_counter() - t1) * 1000)
def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
for name, values in (("grant answered", answer_ms), ("replica B decides with it", follow_ms)):
    print("%-26s p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms  (%d grants, %d rules)" % (name, q(values, 50), q(values, 99), max(values), len(values), per_tenant * 100))
PY
