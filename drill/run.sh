#!/usr/bin/env bash
# The fault drill and the soak (docs/reliability.md): two replicas of identity, authz and media on
# one PostgreSQL database behind one gateway, eight clients writing through the gateway.
#
#   drill/run.sh drill              # every fault once, held 4 s (what CI runs, about 3 minutes)
#   drill/run.sh drill long         # every fault twice, held 15 s (by hand, about 15 minutes)
#   drill/run.sh soak               # 60 s of load, RSS and descriptors sampled (what CI runs)
#   drill/run.sh soak long          # 30 minutes
#
# Needs the built executables (swift build; BIN=.build/release for a release build), psql, and a
# PostgreSQL server: STREAMHUB_DRILL_DATABASE_URL (default postgres://postgres:postgres@127.0.0.1:5432/postgres);
# a fresh database is made in it and dropped when every check held. Restarting and stopping
# PostgreSQL uses the first cluster pg_lsclusters lists (pg_ctlcluster), or the commands in
# STREAMHUB_DRILL_PG_RESTART / _STOP / _START; without either those two faults are left out.
# Exits non-zero when anything the drill must hold did not.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-drill}"
length="${2:-short}"
BIN="${BIN:-.build/debug}"
URL="${STREAMHUB_DRILL_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
for product in gateway identity authz media; do
  [ -x "$BIN/streamhub-$product" ] || { echo "build first: $BIN/streamhub-$product is missing (swift build)" >&2; exit 2; }
done
if [ -z "${STREAMHUB_DRILL_PG_RESTART:-}" ] && command -v pg_lsclusters >/dev/null; then
  cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
  if [ -n "$cluster" ]; then
    SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export STREAMHUB_DRILL_PG_RESTART="$SUDO pg_ctlcluster $cluster restart -m fast"
    export STREAMHUB_DRILL_PG_STOP="$SUDO pg_ctlcluster $cluster stop -m fast"
    export STREAMHUB_DRILL_PG_START="$SUDO pg_ctlcluster $cluster start"
  fi
fi
case "$mode/$length" in
  drill/short) args=(--hold 4 --before 3 --after 5) ;;
  drill/long) args=(--hold 15 --before 8 --after 12 --rounds 2) ;;
  soak/short) args=(--duration 60 --sample 5) ;;
  soak/long) args=(--duration 1800 --sample 30) ;;
  *) echo "usage: drill/run.sh drill|soak [short|long]" >&2; exit 2 ;;
esac
mkdir -p .build/drill
exec python3 drill/drill.py "$mode" --bin "$BIN" --database-url "$URL" --report ".build/drill/$mode-$length.md" "${args[@]}"
