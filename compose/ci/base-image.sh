#!/usr/bin/env bash
# Builds localhost/streamhub-base:ci from Debian's packages alone (no registry is reachable in CI):
# debootstrap minbase bookworm, plus what the CI stack runs besides our binaries — PostgreSQL 15,
# an SMTP catcher (python3-aiosmtpd) and curl — imported into podman.
#   compose/ci/base-image.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(mktemp -d /tmp/streamhub-rootfs.XXXXXX)"
cleanup() { umount "$ROOT/proc" 2>/dev/null || true; rm -rf "$ROOT"; }
trap cleanup EXIT
debootstrap --variant=minbase bookworm "$ROOT" http://deb.debian.org/debian >/dev/null
# No service starts inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOT/proc"
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  ca-certificates curl postgresql python3-aiosmtpd >/dev/null
chroot "$ROOT" apt-get clean
chroot "$ROOT" useradd --system --uid 10001 --home /var/lib/streamhub streamhub
mkdir -p "$ROOT/var/lib/streamhub" && chroot "$ROOT" chown streamhub /var/lib/streamhub
rm -f "$ROOT/usr/sbin/policy-rc.d"
install -m 0755 "$HERE/postgres-entry.sh" "$ROOT/usr/local/bin/postgres-entry.sh"
umount "$ROOT/proc"
tar -C "$ROOT" -c . | podman import --change 'CMD ["/bin/bash"]' - localhost/streamhub-base:ci >/dev/null
echo "built localhost/streamhub-base:ci"
