#!/usr/bin/env bash
# Identity's figures through the real stack over loopback HTTP (issue 8, item 10):
#   1. JWT-authenticated GETs per second through the gateway (GET /api/v1/apps: session check,
#      authz decision, media answers);
#   2. sk_ resolutions per second: cached (the same GET with an sk_ token: the gateway answers
#      the resolution from its 3 s cache) and uncached (identity's POST /internal/v1/tokens/resolve,
#      what the gateway calls on a miss: a digest and a database read each time);
#   3. p99 of GET /api/v1/health (gateway) and of identity's own /internal/v1/health, idle and
#      while 20 logins hash in parallel (bcrypt cost 12 on NIO's thread pool).
#
#   benchmarks/identity-http.sh [SECONDS]
#
# Builds the four services and the CLI in release mode, starts them on 127.0.0.1:1818x with a
# fresh SQLite store (enforce on), signs up one user and mints one global token. Load: wrk
# (Debian package `wrk`), 2 threads, 32 connections, SECONDS (default 10) per run.
set -euo pipefail
DURATION="${1:-10}"
source "$(dirname "$0")/stack.sh"
start_stack

SIGNUP=$(curl -fs -X POST "$API/auth/signup" -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"correct horse battery"}')
JWT=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])' <<<"$SIGNUP")
SK=$("$BIN/streamhub" seed-token --name bench)

cat >"$WORK/resolve.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-StreamHub-Internal-Token"] = "$STREAMHUB_INTERNAL_TOKEN"
wrk.body = '{"token":"$SK"}'
LUA

echo "# $(date -u +%FT%TZ), ${DURATION}s per run, wrk -t2 -c32"
run "JWT GET /api/v1/apps through the gateway" -H "Authorization: Bearer $JWT" "$API/apps"
run "sk_ GET /api/v1/apps through the gateway (cached resolution)" -H "Authorization: Bearer $SK" "$API/apps"
run "sk_ resolution at identity, uncached (POST tokens/resolve)" -s "$WORK/resolve.lua" "http://127.0.0.1:18181/internal/v1/tokens/resolve"
run "GET /api/v1/health (gateway), idle" "$API/health"
run "GET /internal/v1/health (identity), idle" "http://127.0.0.1:18181/internal/v1/health"

# 20 clients logging in back to back for as long as the flag file exists.
touch "$WORK/hashing"
: >"$WORK/logins"
for _ in $(seq 1 20); do
  (while [ -f "$WORK/hashing" ]; do
    curl -s -o /dev/null -w '%{http_code}\n' -X POST "$API/auth/login" -H 'Content-Type: application/json' \
      -d '{"email":"bench@example.com","password":"correct horse battery"}' >>"$WORK/logins"
  done) &
done
sleep 2
run "GET /api/v1/health (gateway), 20 logins hashing" "$API/health"
run "GET /internal/v1/health (identity), 20 logins hashing" "http://127.0.0.1:18181/internal/v1/health"
rm -f "$WORK/hashing"
sleep 3
echo "logins answered while measuring (status: count): $(sort "$WORK/logins" | uniq -c | awk '{printf "%s: %s  ", $2, $1}')"
