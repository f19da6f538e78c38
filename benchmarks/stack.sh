# Shared by the benchmark scripts (sourced): builds the release binaries, starts the four services
# on 127.0.0.1:18180-18183 with a fresh SQLite store in $WORK, and stops everything on exit.
#   source benchmarks/stack.sh; start_stack
# Sets BIN, WORK, API (the gateway's /api/v1) and the services' environment.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 2; }
for product in streamhub-gateway streamhub-identity streamhub-authz streamhub-media streamhub; do
  swift build -c release --package-path "$ROOT" --product "$product" >&2
done
BIN="$ROOT/.build/release"
WORK="$(mktemp -d)"
export STREAMHUB_INTERNAL_TOKEN="bench-internal-token-0123456789abcdef"
export STREAMHUB_JWT_SECRET="bench-jwt-secret-0123456789abcdefghij"
export STREAMHUB_CLUSTER_TOKEN="bench-cluster-token-0123456789abcdef"
export LIVEKIT_URL="ws://127.0.0.1:7880" LIVEKIT_API_KEY="APIbench" LIVEKIT_API_SECRET="bench-livekit-secret-0123456789abcdef"
export STREAMHUB_DATA_DIR="$WORK/data" STREAMHUB_AUTHZ_ENFORCE=on LOG_LEVEL=warning HOST=127.0.0.1
export STREAMHUB_PUBLIC_URL="http://127.0.0.1:18180"
export IDENTITY_URL="http://127.0.0.1:18181" AUTHZ_URL="http://127.0.0.1:18182" MEDIA_URL="http://127.0.0.1:18183"
API="http://127.0.0.1:18180/api/v1"
PIDS=()
cleanup() {
  rm -f "$WORK/hashing"
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
start_service() { # name port
  PORT=$2 "$BIN/streamhub-$1" 2>"$WORK/$1.log" &
  PIDS+=($!)
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$2/internal/v1/ready" >/dev/null && return; sleep 0.1; done
  echo "$1 did not become ready: $(tail -5 "$WORK/$1.log")" >&2; exit 1
}
start_stack() {
  start_service identity 18181; start_service authz 18182; start_service media 18183; start_service gateway 18180
}
# start_nginx HTTP-BLOCK: nginx (Debian `nginx-light`, 1 worker per core, no access log) with
# HTTP-BLOCK inside its `http {}`, files under $WORK/nginx; stopped on exit.
start_nginx() {
  local nginx; nginx=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$nginx" ] || { echo "install nginx-light (apt-get install nginx-light)" >&2; exit 2; }
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy; fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
$1
}
CONF
  "$nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/stderr.log" &
  PIDS+=($!)
}
# bench_user EMAIL: signs up a dashboard user (a tenant owner); sets JWT and PRINCIPAL (the
# X-StreamHub-Principal header the gateway forwards for that user).
bench_user() {
  local signup tenant user_id
  signup=$(curl -fs -X POST "$API/auth/signup" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"correct horse battery\"}")
  JWT=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])' <<<"$signup")
  tenant=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["tenantId"])' <<<"$signup")
  user_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["user"]["id"])' <<<"$signup")
  PRINCIPAL=$(printf '{"kind":"user","scope":"tenant","subject":"user:%s","tenantId":"%s","superadmin":false}' "$user_id" "$tenant" \
    | base64 -w0 | tr '+/' '-_' | tr -d '=')
}
# start_nginx_media_proxy: nginx on 127.0.0.1:18191, proxy_pass to media with keep-alive upstream
# connections and the headers the gateway would add for bench_user's user; waits until it answers.
start_nginx_media_proxy() {
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
}
# run LABEL WRK-ARGS… : one wrk run (2 threads, 32 connections, $DURATION s); prints req/s, MB/s, p99.
run() {
  local label=$1; shift
  local out rps p99 transfer errors
  out=$(wrk -t2 -c32 -d"${DURATION}s" --latency "$@")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  transfer=$(awk '/Transfer\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%-62s %10s req/s %10s/s   p99 %8s   non-2xx %s\n' "$label" "$rps" "$transfer" "$p99" "${errors:-0}"
}
