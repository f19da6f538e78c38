"""Our LiveKit tokens against livekit-api, LiveKit's own SDK.

Usage: livekit_check.py API_KEY API_SECRET TOKEN_KIND TOKEN
  TOKEN_KIND is "viewer" or "publisher". Verifies TOKEN with livekit.api.TokenVerifier (HS256,
  iss = API_KEY, exp) and prints its grants as JSON; exits 1 when it does not verify or the
  grants are not what a viewer (subscribe only) or a publisher may do.
"""
import json
import sys

from livekit import api


def main():
    key, secret, kind, token = sys.argv[1:5]
    claims = api.TokenVerifier(key, secret).verify(token)
    video = claims.video
    grants = {
        "identity": claims.identity, "room": video.room, "roomJoin": video.room_join, "canSubscribe": video.can_subscribe,
        "canPublish": video.can_publish, "canPublishData": video.can_publish_data,
    }
    ok = video.room_join is True and video.can_subscribe is True
    if kind == "viewer":
        ok = ok and video.can_publish is False and video.can_publish_data is False
    else:
        ok = ok and video.can_publish is True
    print(json.dumps({"ok": ok, "grants": grants}, sort_keys=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
