#!/usr/bin/env bash
# CPU time per request of the proxy in front of media, read from /proc/<pid>/stat around each wrk
# run: nginx (`proxy_pass`, keep-alive upstream, the headers set) and the gateway (a dashboard
# JWT user, authz on, decision cache) on the same GET /api/v1/apps; media's own CPU per request
# beside it. Less noisy than requests/s on a shared machine: it counts work, not waiting.
# With BASE=<gateway binary>, that build runs too (port 18187), for an A/B of two gateway builds.
#
#   benchmarks/proxy-cpu.sh [SECONDS] [ROUNDS]
#
# Release builds, loopback, wrk -t2 -c32, SECONDS (default 5) per run, ROUNDS (default 5) rounds
# with the proxies back to back in each; prints every run and the means.
set -euo pipefail
DURATION="${1:-5}"
ROUNDS="${2:-5}"
source "$(dirname "$0")/stack.sh"
start_stack
bench_user proxy-cpu@example.com
start_nginx_media_proxy
TARGETS=("nginx:18191:$(pgrep -f "nginx: worker" | tr '\n' ' ')" "gateway:18180:$(pgrep -f "$BIN/streamhub-gateway" | head -1)")
if [ -n "${BASE:-}" ]; then
  PORT=18187 "$BASE" 2>"$WORK/gateway-base.log" &
  PIDS+=($!)
  TARGETS+=("base:18187:$!")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:18187/internal/v1/ready" >/dev/null && break; sleep 0.1; done
fi
MEDIA=$(pgrep -f "$BIN/streamhub-media" | head -1)
ticks() { local total=0; for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$total"; }
HZ=$(getconf CLK_TCK)
echo "# $(date -u +%FT%TZ), wrk -t2 -c32, ${DURATION}s per run, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  for target in "${TARGETS[@]}"; do
    IFS=: read -r name port pids <<<"$target"
    # shellcheck disable=SC2086
    p0=$(ticks $pids); m0=$(ticks "$MEDIA")
    out=$(wrk -t2 -c32 -d"${DURATION}s" -H "Authorization: Bearer $JWT" "http://127.0.0.1:$port/api/v1/apps")
    # shellcheck disable=SC2086
    p1=$(ticks $pids); m1=$(ticks "$MEDIA")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    printf '%-8s %10s req/s   proxy %4d µs/request   media %4d µs/request\n' "$name" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
      $(( (p1 - p0) * 1000000 / HZ / n )) $(( (m1 - m0) * 1000000 / HZ / n ))
  done
done | tee "$WORK/runs.txt"
awk '{ rps[$1] += $2; cpu[$1] += $5; n[$1]++ } END { for (k in n) printf "mean %-8s %10.0f req/s   proxy %4.0f µs/request\n", k, rps[k] / n[k], cpu[k] / n[k] }' "$WORK/runs.txt"
