#!/usr/bin/env bash
# Casbin's standard Enforce scenarios: Go Casbin 2.60, pycasbin and our engine in one run.
#
#   benchmarks/engine-baseline.sh /path/to/shared/casbin [--quick]
#
# Needs the Casbin anchor kit (run-baseline.sh, scenarios.json, examples/); it installs Go
# Casbin from Debian and pycasbin from PyPI itself. Our engine is built in release mode and
# added twice: as shipped (per-subject role closures memoised until the policy changes) and
# with those closures dropped before every decision (--cold).
set -euo pipefail
KIT="${1:?usage: engine-baseline.sh CASBIN_KIT_DIR [--quick]}"; shift
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
swift build -c release --package-path "$ROOT" --product streamhub-casbin-bench >&2
BENCH="$ROOT/.build/release/streamhub-casbin-bench"
cd "$KIT"
./run-baseline.sh "$@" --extra-cmd "$BENCH" --extra-cmd "$BENCH --cold"
