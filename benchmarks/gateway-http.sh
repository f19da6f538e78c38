#!/usr/bin/env bash
# The gateway against nginx (issue 11, item 7), one run, the same small upstream GET three ways:
#   (a) straight to media: GET /api/v1/apps with the internal token and a forwarded principal;
#   (b) through nginx (Debian `nginx-light`) proxy_pass to media with keep-alive upstream
#       connections, adding those headers;
#   (c) through the gateway as a dashboard JWT user (a tenant owner: authz must decide, enforce on),
#       with the envelope — with the decision cache (port 18180) and without it (a second gateway,
#       GATEWAY_DECISION_CACHE_SIZE=0, port 18184).
# Then, paced at half of the gateway's measured peak (benchmarks/paced.lua: wrk2 is not packaged),
# (a), (b) and (c) at the same rate, to read the p99 the gateway adds.
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

echo "# $(date -u +%FT%TZ), ${DURATION}s per run, wrk -t2 -c32 (peak), then paced runs at half of the gateway's peak"
run_load() { local label=$1; shift; local out; out=$(wrk -d"${DURATION}s" --latency "$@");
  printf '%-62s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$label" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" "$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
  PEAK=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out"); }
DIRECT=(-H "X-StreamHub-Internal-Token: $STREAMHUB_INTERNAL_TOKEN" -H "X-StreamHub-Principal: $PRINCIPAL" "http://127.0.0.1:18183/api/v1/apps")
NGINX=("http://127.0.0.1:18191/api/v1/apps")
CACHED=(-H "Authorization: Bearer $JWT" "$API/apps")
UNCACHED=(-H "Authorization: Bearer $JWT" "http://127.0.0.1:18184/api/v1/apps")
echo "## peak: wrk -t2 -c32"
run_load "(a) media directly" -t2 -c32 "${DIRECT[@]}"
run_load "(b) nginx proxy_pass, keep-alive upstream" -t2 -c32 "${NGINX[@]}"
run_load "(c) gateway, JWT user, authz on, decision cache" -t2 -c32 "${CACHED[@]}"; PEAK_CACHED=$PEAK
run_load "(c) gateway, JWT user, authz on, no decision cache" -t2 -c32 "${UNCACHED[@]}"; PEAK_UNCACHED=$PEAK
# The p99 the gateway adds: the same request rate (half of the gateway's peak) with and without it.
PACED=(-t2 -c16 -s "$(dirname "$0")/paced.lua")
for pair in "decision cache:$PEAK_CACHED" "no decision cache:$PEAK_UNCACHED"; do
  rate=$(( ${pair##*:} / 2 )); [ "$rate" -gt 0 ] || rate=1
  echo "## paced at $rate req/s (half of the gateway's peak with ${pair%%:*}): wrk -t2 -c16 -s paced.lua"
  run_load "(a) media directly" "${PACED[@]}" "${DIRECT[@]}" -- "$rate" 16
  run_load "(b) nginx proxy_pass, keep-alive upstream" "${PACED[@]}" "${NGINX[@]}" -- "$rate" 16
  if [ "${pair%%:*}" = "decision cache" ]; then
    run_load "(c) gateway, JWT user, authz on, decision cache" "${PACED[@]}" "${CACHED[@]}" -- "$rate" 16
  else
    run_load "(c) gateway, JWT user, authz on, no decision cache" "${PACED[@]}" "${UNCACHED[@]}" -- "$rate" 16
  fi
done
