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
#   benchmarks/gateway-http.sh [SECONDS] [ROUNDS]
#
# Release builds, loopback, wrk 2 threads / 32 connections, SECONDS (default 10) per run, ROUNDS
# (default 3) rounds of each measurement; the goals are read on the medians (a shared 2-core
# machine swings ±20 % between runs).
set -euo pipefail
DURATION="${1:-10}"
ROUNDS="${2:-3}"
source "$(dirname "$0")/stack.sh"
start_stack
GATEWAY_DECISION_CACHE_SIZE=0 PORT=18184 "$BIN/streamhub-gateway" 2>"$WORK/gateway-nocache.log" &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:18184/internal/v1/ready" >/dev/null && break; sleep 0.1; done

bench_user gw-bench@example.com
start_nginx_media_proxy

echo "# $(date -u +%FT%TZ), ${DURATION}s per run, $ROUNDS rounds; in a round the paths run back to back, so each share compares runs made moments apart"
# One wrk run: prints its line; sets RPS (requests/s) and P99 (ms).
run_load() { local label=$1; shift; local out; out=$(wrk -d"${DURATION}s" --latency "$@");
  printf '%-62s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$label" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" "$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
  RPS=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
  P99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else { sub(/s$/, "", v); v *= 1000 }; printf "%.2f", v }' <<<"$out"); }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
share() { awk -v c="$1" -v b="$2" 'BEGIN { printf "%d", (b > 0 ? 100 * c / b : 0) }'; }
DIRECT=(-H "X-StreamHub-Internal-Token: $STREAMHUB_INTERNAL_TOKEN" -H "X-StreamHub-Principal: $PRINCIPAL" "http://127.0.0.1:18183/api/v1/apps")
NGINX=("http://127.0.0.1:18191/api/v1/apps")
CACHED=(-H "Authorization: Bearer $JWT" "$API/apps")
UNCACHED=(-H "Authorization: Bearer $JWT" "http://127.0.0.1:18184/api/v1/apps")
SHARES_CACHED=""; SHARES_UNCACHED=""; PEAKS_CACHED=""; PEAKS_UNCACHED=""
for round in $(seq 1 "$ROUNDS"); do
  echo "## peak, round $round: wrk -t2 -c32"
  run_load "(a) media directly" -t2 -c32 "${DIRECT[@]}"
  run_load "(b) nginx proxy_pass, keep-alive upstream" -t2 -c32 "${NGINX[@]}"; NGINX_RPS=$RPS
  run_load "(c) gateway, JWT user, authz on, decision cache" -t2 -c32 "${CACHED[@]}"; PEAKS_CACHED+=" $RPS"
  SHARES_CACHED+=" $(share "$RPS" "$NGINX_RPS")"
  run_load "(c) gateway, JWT user, authz on, no decision cache" -t2 -c32 "${UNCACHED[@]}"; PEAKS_UNCACHED+=" $RPS"
  SHARES_UNCACHED+=" $(share "$RPS" "$NGINX_RPS")"
done
by_round() { echo $1 | sed "s/ /$2, /g; s/\$/$2/"; }
echo "## peak, share of nginx's requests/s by round: decision cache $(by_round "$SHARES_CACHED" " %"); no decision cache $(by_round "$SHARES_UNCACHED" " %")"
echo "## peak, median share of nginx: decision cache $(median <<<"$SHARES_CACHED") %, no decision cache $(median <<<"$SHARES_UNCACHED") %"
# The p99 the gateway adds: the same request rate (half of the gateway's median peak) with and
# without it, round by round.
PACED=(-t2 -c16 -s "$(dirname "$0")/paced.lua")
for mode in "decision cache" "no decision cache"; do
  if [ "$mode" = "decision cache" ]; then peaks=$PEAKS_CACHED; GATEWAY=("${CACHED[@]}"); else peaks=$PEAKS_UNCACHED; GATEWAY=("${UNCACHED[@]}"); fi
  rate=$(( $(median <<<"$peaks" | cut -d. -f1) / 2 )); [ "$rate" -gt 0 ] || rate=1
  ADDED=""; ADDED_NGINX=""
  for round in $(seq 1 "$ROUNDS"); do
    echo "## paced at $rate req/s (half of the gateway's median peak with $mode), round $round: wrk -t2 -c16 -s paced.lua"
    run_load "(a) media directly" "${PACED[@]}" "${DIRECT[@]}" -- "$rate" 16; a=$P99
    run_load "(b) nginx proxy_pass, keep-alive upstream" "${PACED[@]}" "${NGINX[@]}" -- "$rate" 16; b=$P99
    run_load "(c) gateway, JWT user, authz on, $mode" "${PACED[@]}" "${GATEWAY[@]}" -- "$rate" 16; c=$P99
    ADDED+=" $(awk -v c="$c" -v a="$a" 'BEGIN { printf "%.2f", c - a }')"
    ADDED_NGINX+=" $(awk -v b="$b" -v a="$a" 'BEGIN { printf "%.2f", b - a }')"
  done
  echo "## p99 added at $rate req/s ($mode), by round: gateway $(by_round "$ADDED" " ms"); nginx $(by_round "$ADDED_NGINX" " ms")"
  echo "## p99 added at $rate req/s ($mode), median: gateway $(median <<<"$ADDED") ms, nginx $(median <<<"$ADDED_NGINX") ms"
done
