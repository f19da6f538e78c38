#!/usr/bin/env bash
# The gateway against nginx (issue 11, item 7), one run, the same small upstream GET three ways:
#   (a) straight to media: GET /api/v1/apps with the internal token and a forwarded principal;
#   (b) through nginx (Debian `nginx-light`) proxy_pass to media with keep-alive upstream
#       connections, adding those headers;
#   (c) through the gateway as a dashboard JWT user (a tenant owner: authz must decide, enforce on),
#       with the envelope — with the decision cache (port 18180) and without it (a second gateway,
#       GATEWAY_DECISION_CACHE_SIZE=0, port 18184).
# Then each again at half of its measured peak rate (wrk2-style pacing is not available: wrk's
# -c 4 gives a lighter load) to read the p99 the gateway adds.
#
#   benchmarks/gateway-http.sh [SECONDS]
#
# Release builds, loopback, wrk 2 threads / 32 connections, SECONDS (default 10) per run.
set -euo pipefail
DURATION="${1:-10}"
source "$(dirname "$0")/stack.sh"
start_stack
GATEWAY_DECISION_CACHE_SIZE=0 PORT=18184 "$BIN/streamhub-gateway" 2>"$WORK/gateway-nocache.log" &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:18184/internal/v1/ready" >/dev/null && break; sleep 0.1; done

SIGNUP=$(curl -fs -X POST "$API/auth/signup" -H 'Content-Type: application/json' \
  -d '{"email":"gw-bench@example.com","password":"correct horse battery"}')
JWT=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])' <<<"$SIGNUP")
TENANT=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["tenantId"])' <<<"$SIGNUP")
USER_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["user"]["id"])' <<<"$SIGNUP")
PRINCIPAL=$(printf '{"kind":"user","scope":"tenant","subject":"user:%s","tenantId":"%s","superadmin":false}' "$USER_ID" "$TENANT" \
  | base64 -w0 | tr '+/' '-_' | tr -d '=')

start_nginx "  upstream media { server 127.0.0.1:18183; keepalive 64; }
  server {
    listen 127.0.0.1:18191;
    location / {
      proxy_pass http://media;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header X-StreamHub-Internal-Token \"$STREAMHUB_INTERNAL_TOKEN\";
      proxy_set_header X-StreamHub-Principal \"$PRINCIPAL\";
    }
  }"
for _ in $(seq 1 50); do curl -fs -o /dev/null "http://127.0.0.1:18191/api/v1/apps" && break; sleep 0.1; done

echo "# $(date -u +%FT%TZ), ${DURATION}s per run, wrk -t2 -c32 (peak) and -t1 -c4 (light)"
for load in "-t2 -c32" "-t1 -c4"; do
  echo "## wrk $load"
  # shellcheck disable=SC2086
  WRK="wrk $load"
  run_load() { local label=$1; shift; local out; out=$($WRK -d"${DURATION}s" --latency "$@");
    printf '%-58s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$label" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
      "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" "$(awk '/Non-2xx/ {print $NF}' <<<"$out")"; }
  run_load "(a) media directly" -H "X-StreamHub-Internal-Token: $STREAMHUB_INTERNAL_TOKEN" -H "X-StreamHub-Principal: $PRINCIPAL" \
    "http://127.0.0.1:18183/api/v1/apps"
  run_load "(b) nginx proxy_pass, keep-alive upstream" "http://127.0.0.1:18191/api/v1/apps"
  run_load "(c) gateway, JWT user, authz on, decision cache" -H "Authorization: Bearer $JWT" "$API/apps"
  run_load "(c) gateway, JWT user, authz on, no decision cache" -H "Authorization: Bearer $JWT" "http://127.0.0.1:18184/api/v1/apps"
done
