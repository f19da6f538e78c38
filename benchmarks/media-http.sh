#!/usr/bin/env bash
# Media's figures over loopback HTTP (issue 10, item 9), one run:
#   1. play-token mints per second through the gateway (public GET, HS256 signing, no-store);
#   2. HLS segment GETs per second and MB/s: from media through the gateway, from media directly,
#      and from nginx (Debian `nginx-light`) serving the same directory in the same run.
#      Goal: media direct ≥ 80 % of nginx.
#
#   benchmarks/media-http.sh [SECONDS]
#
# Builds the services in release mode and starts them (benchmarks/stack.sh), makes a 10 s HLS
# stream with ffmpeg (640x360 test pattern, 2 s segments) under the media root, opens an app and a
# stream for the play-token runs, and starts nginx (1 worker per core, sendfile, no access log) on
# 127.0.0.1:18190 over the same directory. Load: wrk, 2 threads, 32 connections, SECONDS (default
# 10) per run, one segment URL per run.
set -euo pipefail
DURATION="${1:-10}"
command -v ffmpeg >/dev/null || { echo "install ffmpeg (apt-get install ffmpeg)" >&2; exit 2; }
source "$(dirname "$0")/stack.sh"
start_stack

SK=$("$BIN/streamhub" seed-token --name bench)
TENANT=$(curl -fs -X POST "$API/auth/signup" -H 'Content-Type: application/json' \
  -d '{"email":"media-bench@example.com","password":"correct horse battery"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["tenantId"])')
APP=$(curl -fs -X POST "$API/apps" -H "Authorization: Bearer $SK" -H 'Content-Type: application/json' \
  -d "{\"name\":\"bench\",\"tenantId\":\"$TENANT\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
curl -fs -X POST "$API/apps/$APP/streams" -H "Authorization: Bearer $SK" -H 'Content-Type: application/json' -d '{"room":"live"}' >/dev/null

HLS="$STREAMHUB_DATA_DIR/media/hls/$APP/live"
mkdir -p "$HLS"
ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=640x360:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t 10 -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 60 -c:a aac -b:a 96k -f hls -hls_time 2 -hls_list_size 0 \
  -hls_playlist_type vod -hls_segment_filename "$HLS/seg_%03d.ts" "$HLS/index.m3u8"
SEGMENT="hls/$APP/live/seg_001.ts"
SIZE=$(stat -c %s "$STREAMHUB_DATA_DIR/media/$SEGMENT")

# nginx's workers run as an unprivileged user: let them read the media tree (mktemp -d is 0700).
chmod 755 "$WORK" "$STREAMHUB_DATA_DIR"
chmod -R a+rX "$STREAMHUB_DATA_DIR/media"
start_nginx "  include /etc/nginx/mime.types;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  sendfile on; tcp_nopush on; keepalive_requests 1000000;
  server { listen 127.0.0.1:18190; root $STREAMHUB_DATA_DIR/media; location /hls/ { add_header Cache-Control \"public, max-age=31536000, immutable\"; add_header Access-Control-Allow-Origin *; } }"
for _ in $(seq 1 50); do curl -fs -o /dev/null "http://127.0.0.1:18190/$SEGMENT" && break; sleep 0.1; done

echo "# $(date -u +%FT%TZ), ${DURATION}s per run, wrk -t2 -c32; segment $SEGMENT is $SIZE bytes"
run "play-token mints through the gateway" "$API/apps/$APP/play-token/live"
run "HLS segment from nginx" "http://127.0.0.1:18190/$SEGMENT"
run "HLS segment from media directly" "http://127.0.0.1:18183/$SEGMENT"
run "HLS segment from media through the gateway" "http://127.0.0.1:18180/$SEGMENT"
run "HLS playlist from media directly" "http://127.0.0.1:18183/hls/$APP/live/index.m3u8"
