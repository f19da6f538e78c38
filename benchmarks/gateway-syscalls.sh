#!/usr/bin/env bash
# System calls the gateway makes per request (docs/benchmarks.md, session 8): the release stack,
# a dashboard JWT user reading /apps with wrk -t1 -c8 for 4 s while `strace -c -f` counts the
# gateway's calls. Needs strace (Debian `strace`).
#
#   benchmarks/gateway-syscalls.sh
set -euo pipefail
source "$(dirname "$0")/stack.sh"
start_stack >/dev/null
SIGNUP=$(curl -fs -X POST "$API/auth/signup" -H 'Content-Type: application/json' \
  -d '{"email":"gw-syscalls@example.com","password":"correct horse battery"}')
JWT=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])' <<<"$SIGNUP")
GATEWAY_PID=$(pgrep -f "$BIN/streamhub-gateway" | head -1)
# Warm up: principal, decision and pooled connections cached.
wrk -t1 -c8 -d3s -H "Authorization: Bearer $JWT" "$API/apps" >/dev/null
timeout -s INT 6 strace -c -f -p "$GATEWAY_PID" -o "$WORK/strace.txt" &
sleep 0.5
wrk -t1 -c8 -d4s -H "Authorization: Bearer $JWT" "$API/apps" | grep -E "requests in"
wait
head -12 "$WORK/strace.txt"
