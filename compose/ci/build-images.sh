#!/usr/bin/env bash
# Builds the CI stack's images locally: the Debian base (base-image.sh) and localhost/streamhub:ci
# with release binaries built with --static-swift-stdlib (in .build-static) and Swagger UI's files.
#   compose/ci/build-images.sh SWAGGER_UI_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SWAGGER_UI_DIR="$1"
"$HERE/base-image.sh"
(cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path .build-static 2>&1 | tail -1)
CONTEXT="$(mktemp -d /tmp/streamhub-image.XXXXXX)"
trap 'rm -rf "$CONTEXT"' EXIT
mkdir -p "$CONTEXT/bin" "$CONTEXT/swagger-ui"
for binary in streamhub-gateway streamhub-identity streamhub-authz streamhub-media streamhub; do
  cp "$ROOT/.build-static/release/$binary" "$CONTEXT/bin/"
done
strip "$CONTEXT"/bin/* 2>/dev/null || true
cp "$SWAGGER_UI_DIR"/* "$CONTEXT/swagger-ui/"
podman build -q -t localhost/streamhub:ci -f "$HERE/Containerfile" "$CONTEXT" >/dev/null
echo "built localhost/streamhub:ci"
