#!/usr/bin/env bash
# The compose stack under podman, as an operator runs it: up on PostgreSQL, a smoke test through
# the published gateway port, scaled to two replicas of identity, authz and media, the smoke test
# again, then down with the same files. Needs the images of build-images.sh.
#   compose/ci/smoke.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
COMPOSE_DIR="$(cd "$HERE/.." && pwd)"
PORT="${GATEWAY_PORT:-18280}"
ENV_FILE="$(mktemp /tmp/streamhub-compose-env.XXXXXX)"
secret() { head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 48; }
cat >"$ENV_FILE" <<ENV
STREAMHUB_INTERNAL_TOKEN=$(secret)
STREAMHUB_JWT_SECRET=$(secret)
STREAMHUB_CLUSTER_TOKEN=$(secret)
POSTGRES_PASSWORD=$(secret)
LIVEKIT_API_KEY=APIci
LIVEKIT_API_SECRET=$(secret)
LIVEKIT_URL=ws://127.0.0.1:7880
STREAMHUB_AUTHZ_ENFORCE=on
GATEWAY_PORT=$PORT
STREAMHUB_PUBLIC_URL=http://127.0.0.1:$PORT
LOG_LEVEL=info
ENV
PROJECT=streamhub-ci
BASE=(-p "$PROJECT" -f "$COMPOSE_DIR/compose.yaml" -f "$HERE/compose.ci.yaml")
SCALED=("${BASE[@]}" -f "$HERE/compose.scale.yaml")
compose() { podman-compose --env-file "$ENV_FILE" "$@"; }
FILES=("${BASE[@]}")
down() { [ -n "${KEEP_STACK:-}" ] && return; compose "${FILES[@]}" down -v >/dev/null 2>&1 || true; rm -f "$ENV_FILE"; }
trap down EXIT
API="http://127.0.0.1:$PORT/api/v1"
fail() { echo "smoke: $*" >&2; for s in postgres identity authz media gateway mailpit; do
  echo "--- $s" >&2; podman logs --tail 30 "$(podman ps -a -q --filter "label=io.podman.compose.service=$s" | awk 'NR==1')" 2>&1 | cut -c1-300 >&2 || true; done; exit 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# The newest link to /login/<kind> in mail to $1 that the catcher logged (waits up to 60 s).
caught() {
  local email=$1 kind=$2 catcher link=""
  catcher=$(podman ps -q --filter "label=io.podman.compose.service=mailpit" | awk 'NR==1')
  for _ in $(seq 1 60); do
    link=$(podman logs "$catcher" 2>&1 | python3 -c "
import re,sys
text=sys.stdin.read(); at=text.rfind('$email')
found=re.findall(r'/login/$kind\?token=([A-Za-z0-9_-]+)', text[at:]) if at >= 0 else []
print(found[-1] if found else '')")
    [ -n "$link" ] && { echo "$link"; return 0; }
    sleep 1
  done
  return 1
}

smoke() {
  local round=$1
  # Ready: the gateway answers and every upstream is ready (podman runs no health checks).
  for _ in $(seq 1 180); do curl -fs "http://127.0.0.1:$PORT/internal/v1/ready" >/dev/null 2>&1 && break; sleep 1; done
  curl -fs "$API/health" | grep '"status":"ok"' >/dev/null || fail "round $round: gateway not healthy"
  local identity token
  identity=$(podman ps -q --filter "label=io.podman.compose.service=identity" | awk 'NR==1')
  token=$(podman exec "$identity" streamhub seed-token --name "ci-$round") || fail "seed-token"
  curl -fs "$API/apps" -H "Authorization: Bearer $token" | grep '"error":null' >/dev/null || fail "round $round: apps with the seeded token"
  local email="smoke-$round-$RANDOM@example.com" signup tenant
  signup=$(curl -fs -X POST "$API/auth/signup" -H 'Content-Type: application/json' -d "{\"email\":\"$email\",\"password\":\"correct horse battery\"}") \
    || fail "round $round: signup"
  tenant=$(json 'd["data"]["tenantId"]' <<<"$signup")
  # Sign-up mails a verification link; magic links go to verified addresses only.
  local link
  link=$(caught "$email" verify) || fail "round $round: no verification link caught"
  curl -fs -X POST "$API/auth/verify" -H 'Content-Type: application/json' -d "{\"token\":\"$link\"}" >/dev/null \
    || fail "round $round: the caught verification link does not verify"
  curl -fs -X POST "$API/auth/magic-link" -H 'Content-Type: application/json' -d "{\"email\":\"$email\"}" >/dev/null || fail "round $round: magic link"
  link=$(caught "$email" magic) || fail "round $round: no magic link caught"
  curl -fs -X POST "$API/auth/magic/verify" -H 'Content-Type: application/json' -d "{\"token\":\"$link\"}" | grep '"token"' >/dev/null \
    || fail "round $round: the caught link does not sign in"
  local app
  app=$(curl -fs -X POST "$API/apps" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"name\":\"smoke\",\"tenantId\":\"$tenant\"}" | json 'd["data"]["id"]') || fail "round $round: app"
  local opened
  opened=$(curl -s -X POST "$API/apps/$app/streams" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "{\"room\":\"smoke-$round\"}")
  grep -q '"publisher"' <<<"$opened" || fail "round $round: stream: $opened"
  curl -fs "$API/apps/$app/play-token/smoke-$round" | grep '"token"' >/dev/null || fail "round $round: play-token"
  echo "smoke round $round: health, seed-token, apps, sign-up, verification and magic link caught, signed in, play-token: ok"
}

# Whatever an earlier run of this project left behind goes first (a kept volume has another password).
compose "${SCALED[@]}" down -v >/dev/null 2>&1 || true
started=$(date +%s)
compose "${BASE[@]}" up -d >/dev/null 2>&1 || fail "up"
smoke 1
echo "stack up and smoke-tested in $(( $(date +%s) - started )) s"
FILES=("${SCALED[@]}")
compose "${SCALED[@]}" up -d >/dev/null 2>&1 || fail "scale up"
for service in identity authz media; do
  count=$(podman ps -q --filter "label=io.podman.compose.service=$service" | wc -l)
  [ "$count" -eq 2 ] || fail "$service has $count replicas, expected 2"
done
# podman-compose recreates every container when the override is applied (PostgreSQL included), with
# new addresses: pools reconnect and callers re-resolve names every 5 s, so calls may get 503 for a
# few seconds. Settled means a sign-up (every service and the database) succeeds; then round 2.
for attempt in $(seq 1 90); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$API/auth/signup" -H 'Content-Type: application/json' \
    -d "{\"email\":\"settle-$attempt@example.com\",\"password\":\"correct horse battery\"}" || true)
  [ "$code" = 201 ] && break; sleep 1
done
[ "$code" = 201 ] || fail "the scaled stack did not settle (last sign-up: $code)"
echo "scaled stack settled after $attempt attempt(s)"
sleep 6
smoke 2
echo "scaled to 2 × identity, authz, media: ok"
