#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for a set time (or a set number of runs). Needs the
# package built once (`swift build`): raw-request compiles swift-nio's llhttp from its checkout.
#
#   fuzz/run.sh                 # every target, 20 s each (what CI runs)
#   fuzz/run.sh 600             # every target, 10 min each
#   FUZZ_RUNS=10000000 fuzz/run.sh   # every target until 10 M executions
#   fuzz/run.sh 60 casbin       # one target
#
# Seeds are in fuzz/corpus/<target>; what a run adds goes to .build-fuzz/corpus/<target> (not into
# the repository). A crash, a trap or a disagreement stops the run with the input saved as
# .build-fuzz/crash-<target>-*, and this script exits non-zero. Needs swiftc with
# -sanitize=fuzzer (the Linux toolchain has it).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
only="${2:-}"
out=.build-fuzz
mkdir -p "$out/modules"
flags=(-sanitize=fuzzer,address -parse-as-library -O -g)

module() { # name, sources...
    local name="$1"
    shift
    swiftc "${flags[@]}" -module-name "$name" -emit-module -emit-module-path "$out/modules/$name.swiftmodule" \
        -emit-library -static -o "$out/modules/lib$name.a" -I "$out/modules" "$@" 2>"$out/build-$name.log" || {
        cat "$out/build-$name.log" >&2
        exit 1
    }
}

target() { # name, sources... (linked with the modules named in LINK)
    local name="$1"
    shift
    # shellcheck disable=SC2086
    swiftc "${flags[@]}" -module-name "Fuzz_${name//-/_}" -I "$out/modules" -L "$out/modules" $LINK -o "$out/fuzz-$name" "$@" \
        2>"$out/build-$name.log" || {
        cat "$out/build-$name.log" >&2
        exit 1
    }
}

echo "building fuzz targets into $out" >&2
module Shared Shared/*.swift
module CasbinEngine Services/Authz/Engine/*.swift
LINK="-lShared" target enforce-body fuzz/targets/enforce_body.swift Services/Authz/App/Routes/EnforceBodyParser.swift
LINK="-lCasbinEngine" target casbin fuzz/targets/casbin.swift
LINK="-lShared" target edge-parsers fuzz/targets/edge_parsers.swift Services/ServiceKit/PrincipalHeader.swift \
    Services/Media/App/Routes/MediaHeaderParsers.swift
LINK="-lShared" target text fuzz/targets/text.swift Services/Identity/App/Services/MailText.swift

# llhttp as NIO ships it (swift-nio's CNIOLLHTTP, from the package's checkout): the oracle the
# media fast path's request reader is compared with.
llhttp=$(find .build/checkouts -type d -path '*swift-nio/Sources/CNIOLLHTTP' 2>/dev/null | awk 'NR==1')
[[ -n "$llhttp" ]] || { echo "swift-nio's CNIOLLHTTP not found under .build/checkouts: run swift build first" >&2; exit 1; }
mkdir -p "$out/llhttp"
for source in "$llhttp"/*.c; do
    clang -fsanitize=fuzzer-no-link,address -O1 -g -I "$llhttp/include" -c "$source" -o "$out/llhttp/$(basename "$source" .c).o"
done
ar rcs "$out/modules/libllhttp.a" "$out/llhttp"/*.o
printf 'module CNIOLLHTTP {\n    header "%s/include/CNIOLLHTTP.h"\n    export *\n}\n' "$PWD/$llhttp" >"$out/llhttp/module.modulemap"
LINK="-lllhttp -I $out/llhttp" target raw-request fuzz/targets/raw_request.swift Services/Media/App/Routes/MediaRawRequest.swift

status=0
for name in enforce-body casbin edge-parsers text raw-request; do
    [[ -n "$only" && "$only" != "$name" ]] && continue
    mkdir -p "$out/corpus/$name"
    limit=(-max_total_time="$seconds")
    [[ -n "${FUZZ_RUNS:-}" ]] && limit=(-runs="$FUZZ_RUNS")
    echo "fuzzing $name (${FUZZ_RUNS:+$FUZZ_RUNS runs}${FUZZ_RUNS:-$seconds s})" >&2
    if ! ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" "$out/fuzz-$name" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$out/crash-$name-" "$out/corpus/$name" "fuzz/corpus/$name" 2>"$out/$name.log"; then
        tail -n 40 "$out/$name.log" >&2
        echo "FAILED: $name (input saved under $out/crash-$name-*)" >&2
        status=1
    else
        grep -E "^stat::number_of_executed_units|^stat::new_units_added|^stat::peak_rss_mb" "$out/$name.log" | sed "s/^/$name /" >&2
    fi
done
exit $status
