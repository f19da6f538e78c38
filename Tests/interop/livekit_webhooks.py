"""LiveKit webhooks signed by livekit-api, LiveKit's own SDK, delivered through the gateway.

Usage: livekit_webhooks.py GATEWAY_URL API_KEY API_SECRET BEARER APP_ID ROOM

The app has a live stream in ROOM. Events are WebhookEvent messages encoded as LiveKit encodes them
(protobuf JSON: lowerCamel names, int64 as strings) and signed as LiveKit signs them (a bare JWT
whose sha256 claim is the base64 SHA-256 of the body). After each delivery the stream's state is read
back through the gateway with BEARER. Prints one JSON line with the outcome of each step; exits 1
when any is wrong.
"""
import base64
import datetime
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models
from livekit.protocol.webhook import WebhookEvent

from gateway_http import call


def encode(event):
    return json.dumps(json.loads(MessageToJson(event)), separators=(",", ":")).encode()


def sign(body, key, secret, ttl=300):
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return api.AccessToken(key, secret).with_sha256(digest).with_ttl(datetime.timedelta(seconds=ttl)).to_jwt()


def deliver(url, body, authorization):
    request = urllib.request.Request(url, method="POST", data=body)
    request.add_header("Content-Type", "application/webhook+json")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def event(kind, room, participant=None, track=None, event_id=None):
    ev = WebhookEvent(event=kind, id=event_id or "EV_" + uuid.uuid4().hex[:12], created_at=int(time.time()))
    ev.room.CopyFrom(models.Room(sid="RM_test", name=room, creation_time=int(time.time())))
    if participant is not None:
        sid, identity, can_publish = participant
        ev.participant.CopyFrom(models.ParticipantInfo(
            sid=sid, identity=identity, state=models.ParticipantInfo.State.ACTIVE, joined_at=int(time.time()),
            permission=models.ParticipantPermission(can_subscribe=True, can_publish=can_publish)))
    if track is not None:
        ev.track.CopyFrom(models.TrackInfo(sid=track, type=models.TrackType.VIDEO, source=models.TrackSource.CAMERA))
    return ev


def main():
    gateway, key, secret, bearer, app, room = sys.argv[1:7]
    # LiveKit's room is named after the app (`<app>.<room>`); the API names the room alone.
    livekit_room = app + "." + room
    hook = gateway + "/api/v1/webhooks/livekit"
    results = {}

    def stream():
        status, answer = call(gateway + "/api/v1/apps/%s/streams" % app, token=bearer)
        live = [s for s in (answer or {}).get("data", []) if s["room"] == room]
        return live[0] if live else None

    def send(ev, **kwargs):
        body = encode(ev)
        return deliver(hook, body, sign(body, key, secret, **kwargs))

    status, answer = send(event("room_started", livekit_room))
    results["room_started_accepted"] = status == 200 and answer["outcome"] == "ignored"
    publisher = ("PA_pub", "publisher-1", True)
    send(event("participant_joined", livekit_room, participant=publisher))
    status, answer = send(event("track_published", livekit_room, participant=publisher, track="TR_video"))
    state = stream()
    results["track_published_makes_it_publishing"] = status == 200 and state["publishing"] is True and state["viewers"] == 0

    send(event("participant_joined", livekit_room, participant=("PA_v1", "viewer-a", False)))
    joined = event("participant_joined", livekit_room, participant=("PA_v2", "viewer-b", False))
    status, answer = send(joined)
    results["two_viewers_counted"] = status == 200 and answer["outcome"] == "applied" and stream()["viewers"] == 2
    status, answer = send(joined)
    results["repeated_event_id_changes_nothing"] = status == 200 and answer["outcome"] == "duplicate" and stream()["viewers"] == 2
    send(event("participant_joined", livekit_room, participant=("PA_v2", "viewer-b", False)))
    results["same_participant_again_counted_once"] = stream()["viewers"] == 2
    send(event("participant_left", livekit_room, participant=("PA_v1", "viewer-a", False)))
    results["viewer_left"] = stream()["viewers"] == 1

    # Bad deliveries: refused before anything is parsed, and nothing changes.
    left = event("participant_left", livekit_room, participant=("PA_v2", "viewer-b", False))
    body = encode(left)
    good = sign(body, key, secret)
    refusals = {
        "missing": deliver(hook, body, None),
        "bearer_prefix": deliver(hook, body, "Bearer " + good),
        "re_encoded_body": deliver(hook, json.dumps(json.loads(body), indent=1).encode(), good),
        "wrong_secret": deliver(hook, body, sign(body, key, secret + "x")),
        "wrong_key": deliver(hook, body, sign(body, key + "x", secret)),
        "expired": deliver(hook, body, sign(body, key, secret, ttl=-120)),
        "garbage": deliver(hook, body, "not-a-jwt"),
    }
    results["bad_signatures_401"] = all(status == 401 for status, _ in refusals.values())
    results["nothing_changed_by_refused"] = stream()["viewers"] == 1
    status, answer = deliver(hook, body, good)
    results["signed_by_livekit_accepted"] = status == 200 and answer["outcome"] == "applied" and stream()["viewers"] == 0

    for kind in ["egress_started", "ingress_started", "something_new"]:
        status, answer = send(event(kind, livekit_room))
        results["%s_ignored" % kind] = status == 200 and answer["outcome"] == "ignored"
    status, _ = deliver(hook, b"{not json", sign(b"{not json", key, secret))
    results["signed_garbage_is_400"] = status == 400

    status, answer = send(event("track_unpublished", livekit_room, participant=publisher, track="TR_video"))
    results["track_unpublished"] = stream()["publishing"] is False
    status, answer = send(event("room_finished", livekit_room))
    results["room_finished_ends_stream"] = status == 200 and answer["outcome"] == "applied" and stream() is None
    print(json.dumps({"steps": results, "refusals": {k: v[0] for k, v in refusals.items()}}))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
