#!/usr/bin/env python3
"""The fault drill and the soak (docs/reliability.md). Run through drill/run.sh.

The drill starts two replicas of identity, authz and media on one PostgreSQL database behind one
gateway (STREAMHUB_AUTHZ_ENFORCE=on), keeps eight clients writing through the gateway (sign-ups,
apps, sk_ tokens, role grants and removals, invitations, streams, reads) and, one after another,
kills replicas, both replicas of a service and the gateway, restarts PostgreSQL and stops it for a
while. Every write carries an Idempotency-Key and is retried with it, as a careful client would.
Per fault it reports the answers by status while the fault lasted, the slowest answer, the time
from the dependency's return until every request succeeds again, and whether both authz replicas
decide with a role change made after it. At the end every acknowledged write is read back.

The soak runs the same load without faults and samples each process's RSS and open descriptors.

Must hold (exit status 1 otherwise): no acknowledged write missing or shown wrong, no duplicate
made by a retried write, no 500, no 504, no answer slower than the bound, no stale authz replica after a
fault, recovery within --recovery-bound after the dependency returns, no unexpected exit, every
service stopping within 10 s of SIGTERM; for the soak, no 5xx and descriptors flat after warm-up.
"""
import argparse
import base64
import collections
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

INTERNAL_TOKEN = "drill-internal-token-0123456789abcdef"
PASSWORD = "correct horse battery"
BASE = 18480
PORTS = {
    "identity": [BASE + 1, BASE + 11],
    "authz": [BASE + 2, BASE + 12],
    "media": [BASE + 3, BASE + 13],
    "gateway": [BASE],
}
TRANSIENT = {502, 503, 504, "refused", "reset", "no answer"}


def now():
    return time.monotonic()


def log(message):
    print("[drill %s] %s" % (time.strftime("%H:%M:%S"), message), file=sys.stderr, flush=True)


# --- the stack --------------------------------------------------------------------------------

class Process:
    def __init__(self, name, port):
        self.name, self.port = name, port
        self.popen = None
        self.expected_down = False
        self.log_path = None

    @property
    def label(self):
        return "%s:%d" % (self.name, self.port)


class Stack:
    def __init__(self, binaries, database_url, work, settings):
        self.binaries, self.database_url, self.work = binaries, database_url, work
        self.processes = [Process(name, port) for name, ports in PORTS.items() for port in ports]
        self.unexpected = []
        self.shutdowns = []
        self.lock = threading.Lock()
        urls = {name: ",".join("http://127.0.0.1:%d" % p for p in ports) for name, ports in PORTS.items()}
        self.environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOST": "127.0.0.1",
            "DATABASE_URL": database_url,
            "STREAMHUB_DATA_DIR": os.path.join(work, "data"),
            "STREAMHUB_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "STREAMHUB_JWT_SECRET": "drill-jwt-secret-0123456789abcdefghij",
            "STREAMHUB_CLUSTER_TOKEN": "drill-cluster-token-0123456789abcdef",
            "STREAMHUB_PUBLIC_URL": "http://127.0.0.1:%d" % BASE,
            "STREAMHUB_AUTHZ_ENFORCE": "on",
            "LIVEKIT_URL": "ws://127.0.0.1:7880",
            "LIVEKIT_API_KEY": "APIdrill",
            "LIVEKIT_API_SECRET": "drill-livekit-secret-0123456789abcdef",
            "IDENTITY_URL": urls["identity"],
            "AUTHZ_URL": urls["authz"],
            "MEDIA_URL": urls["media"],
            "LOG_LEVEL": "warning",
            # The load signs up and invites far past a real tenant's defaults.
            "STREAMHUB_SIGNUP_LIMIT_PER_IP": "0",
            "STREAMHUB_SIGNUP_LIMIT_PER_EMAIL": "0",
            "STREAMHUB_MAIL_LIMIT_PER_IP": "10000",
            "STREAMHUB_MAIL_LIMIT_PER_EMAIL": "10000",
            "STREAMHUB_DEFAULT_MAX_APPS": "100000",
            "STREAMHUB_DEFAULT_MAX_CONCURRENT_STREAMS": "100000",
            "STREAMHUB_DEFAULT_MAX_MEMBERS": "100000",
            "STREAMHUB_DEFAULT_MAX_TOKENS": "100000",
        }
        self.environment.update(settings)
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.stopping = False

    def process(self, name, port=None):
        for p in self.processes:
            if p.name == name and (port is None or p.port == port):
                return p
        raise KeyError(name)

    def start(self, process):
        env = dict(self.environment, PORT=str(process.port))
        process.log_path = os.path.join(self.work, "%s-%d.log" % (process.name, process.port))
        binary = os.path.join(self.binaries, "streamhub-" + process.name)
        with self.lock:
            process.popen = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                             stderr=open(process.log_path, "ab"), start_new_session=True)
            process.expected_down = False

    def wait_ready(self, process, within=60):
        path = "/api/v1/health" if process.name == "gateway" else "/internal/v1/ready"
        deadline = now() + within
        while now() < deadline:
            if process.popen.poll() is not None:
                raise SystemExit("%s exited at start: %s" % (process.label, self.tail(process)))
            try:
                c = http.client.HTTPConnection("127.0.0.1", process.port, timeout=2)
                c.request("GET", path)
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("%s not ready within %d s: %s" % (process.label, within, self.tail(process)))

    def start_all(self):
        order = [p for p in self.processes if p.name != "gateway"] + [self.process("gateway")]
        for p in order:
            self.start(p)
        for p in order:
            self.wait_ready(p)
        self.watcher.start()

    def kill(self, process, sig=signal.SIGKILL):
        with self.lock:
            process.expected_down = True
            process.popen.send_signal(sig)
        process.popen.wait()

    def restart(self, process):
        self.start(process)
        self.wait_ready(process)

    def tail(self, process, lines=3):
        try:
            with open(process.log_path, "rb") as f:
                return " | ".join(f.read().decode(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def _watch(self):
        while not self.stopping:
            with self.lock:
                for p in self.processes:
                    if p.popen and not p.expected_down and p.popen.poll() is not None:
                        self.unexpected.append("%s exited with %s: %s" % (p.label, p.popen.returncode, self.tail(p)))
                        p.expected_down = True
            time.sleep(0.2)

    def stop_all(self):
        """SIGTERM to every process; records how long each took (the bound is 10 s)."""
        self.stopping = True
        for p in self.processes:
            if p.popen and p.popen.poll() is None:
                p.expected_down = True
                started = now()
                p.popen.send_signal(signal.SIGTERM)
                try:
                    p.popen.wait(timeout=10)
                    self.shutdowns.append((p.label, now() - started, True))
                except subprocess.TimeoutExpired:
                    p.popen.kill()
                    p.popen.wait()
                    self.shutdowns.append((p.label, now() - started, False))

    def sample(self):
        """RSS (KiB) and open descriptors of each running process."""
        out = {}
        for p in self.processes:
            if p.popen and p.popen.poll() is None:
                try:
                    with open("/proc/%d/status" % p.popen.pid) as f:
                        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
                    fds = len(os.listdir("/proc/%d/fd" % p.popen.pid))
                    out[p.label] = (rss, fds)
                except (OSError, StopIteration):
                    pass
        return out


# --- HTTP ----------------------------------------------------------------------------------------

class Client:
    """One keep-alive connection to the gateway; every call is recorded."""

    def __init__(self, recorder, timeout):
        self.recorder, self.timeout = recorder, timeout
        self.conn = None

    def call(self, method, path, body=None, bearer=None, key=None, op=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if bearer:
            headers["Authorization"] = "Bearer " + bearer
        if key:
            headers["Idempotency-Key"] = key
        data = json.dumps(body).encode() if body is not None else None
        started = now()
        status, payload, replayed = None, None, False
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", BASE, timeout=self.timeout)
            self.conn.request(method, "/api/v1" + path, body=data, headers=headers)
            answer = self.conn.getresponse()
            raw = answer.read()
            status = answer.status
            replayed = answer.getheader("Idempotency-Replayed") == "true"
            if answer.getheader("Connection", "").lower() == "close":
                self.reset()
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = None
        except ConnectionRefusedError:
            status = "refused"
            self.reset()
            time.sleep(0.05)
        except TimeoutError:
            status = "no answer"
            self.reset()
        except (OSError, http.client.HTTPException):
            status = "reset"
            self.reset()
        ended = now()
        if op is not None:
            self.recorder.record(op, started, ended, status)
        return status, payload, replayed

    def reset(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []  # (op, started, ended, status)
        self.wrong = []  # what the system showed wrong
        self.ambiguous = []
        self.origin = now()

    def record(self, op, started, ended, status):
        with self.lock:
            self.calls.append((op, started, ended, status))

    def note_wrong(self, message):
        with self.lock:
            self.wrong.append(message)


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.signups = []       # (email)
        self.apps = []          # (owner, app id, name)
        self.app_attempts = []  # (owner, name): every name a create was tried with
        self.tokens = []        # (owner, token id, name)
        self.token_attempts = []
        self.granted = {}       # (owner, subject) -> role, acknowledged and not removed since
        self.removed = set()    # (owner, subject), acknowledged removals
        self.invited = []       # (owner, email)
        self.streams = []       # (owner, app id, stream id, room)

    def add(self, kind, value):
        with self.lock:
            getattr(self, kind).append(value)


def data_of(payload):
    return payload.get("data") if isinstance(payload, dict) else None


# --- the load ------------------------------------------------------------------------------------

class Owner:
    def __init__(self, email, token, tenant, user_id, app):
        self.email, self.token, self.tenant, self.user_id, self.app = email, token, tenant, user_id, app


def sign_up(client, email, op="signup"):
    status, payload, _ = write(client, "POST", "/auth/signup", {"email": email, "password": PASSWORD}, None, op)
    return status, data_of(payload)


def write(client, method, path, body, bearer, op, give_up_after=30):
    """A write with an Idempotency-Key, retried with the same key while the answer is transient
    (5xx, refused, no answer) or "still running" (409 with the key's message)."""
    key = "drill-" + uuid.uuid4().hex
    deadline = now() + give_up_after
    while True:
        status, payload, replayed = client.call(method, path, body, bearer, key, op)
        running = status == 409 and "still running" in json.dumps(payload or {})
        if status not in TRANSIENT and not running:
            return status, payload, replayed
        if now() > deadline:
            return status, payload, replayed
        time.sleep(0.1)


class LoadClient(threading.Thread):
    def __init__(self, index, owner, ledger, recorder, timeout, stop):
        super().__init__(daemon=True)
        self.index, self.owner, self.ledger, self.recorder, self.stop = index, owner, ledger, recorder, stop
        self.client = Client(recorder, timeout)
        self.random = random.Random(index)
        self.n = 0
        self.grants = []  # subjects this client granted and has not removed

    def run(self):
        ops = [self.signup] + [self.app] * 2 + [self.token] * 2 + [self.grant] * 2 + [self.revoke] \
            + [self.invite] + [self.stream] * 2 + [self.read] * 3
        while not self.stop.is_set():
            self.n += 1
            op = self.random.choice(ops)
            try:
                op()
            except Exception as error:  # the drill reports it; the client goes on
                self.recorder.note_wrong("client %d, %s: %r" % (self.index, op.__name__, error))

    def expect(self, status, payload, what):
        if status in (200, 201):
            return data_of(payload)
        if status == 409 and "outcome is unknown" in json.dumps(payload or {}):
            with self.recorder.lock:
                self.recorder.ambiguous.append(what)
        if status in (401, 403):
            self.recorder.note_wrong("%s answered %s to its owner: %s" % (what, status, json.dumps(payload)[:200]))
        elif status not in TRANSIENT and status != 409:
            self.recorder.note_wrong("%s answered %s: %s" % (what, status, json.dumps(payload)[:200]))
        return None

    def signup(self):
        email = "drill-%d-%d-%s@example.com" % (self.index, self.n, uuid.uuid4().hex[:6])
        status, data = sign_up(self.client, email)
        if status == 201 or status == 200:
            self.ledger.add("signups", email)
        else:
            self.expect(status, None, "sign-up")

    def app(self):
        name = "drill-%d-%d" % (self.index, self.n)
        self.ledger.add("app_attempts", (self.owner, name))
        status, payload, _ = write(self.client, "POST", "/apps", {"name": name}, self.owner.token, "app")
        data = self.expect(status, payload, "POST /apps")
        if data:
            self.ledger.add("apps", (self.owner, data["id"], name))

    def token(self):
        name = "drill-%d-%d" % (self.index, self.n)
        self.ledger.add("token_attempts", (self.owner, name))
        status, payload, _ = write(self.client, "POST", "/tokens", {"name": name, "scope": "app", "appId": self.owner.app}, self.owner.token, "token")
        data = self.expect(status, payload, "POST /tokens")
        if data:
            self.ledger.add("tokens", (self.owner, data["id"], name))

    def grant(self):
        subject = "user:drill-%d-%d" % (self.index, self.n)
        status, payload, _ = write(self.client, "POST", "/authz/roles?tenant=" + self.owner.tenant,
                                   {"user": subject, "role": "viewer"}, self.owner.token, "role grant")
        if self.expect(status, payload, "POST /authz/roles") is not None:
            with self.ledger.lock:
                self.ledger.granted[(self.owner, subject)] = "viewer"
            self.grants.append(subject)

    def revoke(self):
        if not self.grants:
            return self.grant()
        subject = self.grants.pop(0)
        status, payload, _ = write(self.client, "DELETE", "/authz/roles?tenant=%s&user=%s&role=viewer" % (self.owner.tenant, subject),
                                   None, self.owner.token, "role removal")
        if self.expect(status, payload, "DELETE /authz/roles") is not None:
            with self.ledger.lock:
                self.ledger.granted.pop((self.owner, subject), None)
                self.ledger.removed.add((self.owner, subject))

    def invite(self):
        email = "invitee-%d-%d-%s@example.com" % (self.index, self.n, uuid.uuid4().hex[:6])
        status, payload, _ = write(self.client, "POST", "/tenants/%s/members" % self.owner.tenant,
                                   {"email": email, "role": "viewer"}, self.owner.token, "invitation")
        if self.expect(status, payload, "POST /tenants/:id/members") is not None:
            self.ledger.add("invited", (self.owner, email))

    def stream(self):
        room = "room-%d-%d" % (self.index, self.n)
        status, payload, _ = write(self.client, "POST", "/apps/%s/streams" % self.owner.app, {"room": room}, self.owner.token, "stream")
        data = self.expect(status, payload, "POST /apps/:app/streams")
        if data:
            self.ledger.add("streams", (self.owner, self.owner.app, data["stream"]["id"], room))

    def read(self):
        status, payload, _ = self.client.call("GET", "/apps/" + self.owner.app, bearer=self.owner.token, op="read")
        self.expect(status, payload, "GET /apps/:app")


def verify_email(client, outbox, email, timeout=20):
    """Spends the verification link mailed to `email` (the .eml files of identity's outbox), as its
    owner would: only a verified owner sends invitations."""
    deadline = now() + timeout
    while now() < deadline:
        for name in sorted(os.listdir(outbox)) if os.path.isdir(outbox) else []:
            with open(os.path.join(outbox, name), encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
            if "To: " + email not in lines:
                continue
            for line in lines:
                if "/login/verify?token=" in line:
                    status, payload, _ = client.call("POST", "/auth/verify", {"token": line.split("token=")[-1]}, None, None, None)
                    if status != 200:
                        raise SystemExit("verifying %s answered %s %s" % (email, status, payload))
                    return
        time.sleep(0.2)
    raise SystemExit("no verification mail for %s in %s" % (email, outbox))


def make_owner(client, index, outbox):
    email = "owner-%d-%s@example.com" % (index, uuid.uuid4().hex[:6])
    status, data = sign_up(client, email, op=None)
    if status != 201:
        raise SystemExit("sign-up of owner %d answered %s" % (index, status))
    verify_email(client, outbox, email)
    token, tenant, user_id = data["token"], data["tenantId"], data["user"]["id"]
    status, payload, _ = write(client, "POST", "/apps", {"name": "base-%d" % index}, token, None)
    if status != 201:
        raise SystemExit("the owner's first app answered %s %s" % (status, payload))
    return Owner(email, token, tenant, user_id, data_of(payload)["id"])


# --- checks --------------------------------------------------------------------------------------

def internal(port, method, path, body=None):
    principal = base64.urlsafe_b64encode(json.dumps(
        {"kind": "apiToken", "scope": "global", "subject": "token:drill", "superadmin": False}).encode()).decode().rstrip("=")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"X-StreamHub-Internal-Token": INTERNAL_TOKEN, "X-StreamHub-Principal": principal, "Content-Type": "application/json"}
    c.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
    answer = c.getresponse()
    raw = answer.read()
    return answer.status, (json.loads(raw) if raw else None)


def follow_check(client, owner, serial, bound):
    """A role granted, then removed, through the gateway: seconds until both authz replicas decide
    with each change (None: not within the bound)."""
    subject = "user:probe-%d" % serial
    ask = {"subject": subject, "tenant": owner.tenant, "resource": "app", "action": "read"}
    timings = []
    for method, path, body, want in (
        ("POST", "/authz/roles?tenant=" + owner.tenant, {"user": subject, "role": "viewer"}, True),
        ("DELETE", "/authz/roles?tenant=%s&user=%s&role=viewer" % (owner.tenant, subject), None, False),
    ):
        status, payload, _ = write(client, method, path, body, owner.token, None)
        if status not in (200, 201):
            return None, "%s /authz/roles answered %s %s" % (method, status, payload)
        acknowledged = now()
        for port in PORTS["authz"]:
            while True:
                try:
                    code, decision = internal(port, "POST", "/internal/v1/enforce", ask)
                    if code == 200 and decision.get("allowed") == want:
                        break
                except OSError:
                    pass
                if now() - acknowledged > bound:
                    return None, "authz:%d still decides allowed=%s %.1f s after the change" % (port, not want, now() - acknowledged)
                time.sleep(0.01)
        timings.append(now() - acknowledged)
    return max(timings), None


def paged(client, path, bearer):
    items, after = [], None
    while True:
        sep = "&" if "?" in path else "?"
        query = path + sep + "limit=100" + ("&after=" + after if after else "")
        for _ in range(50):
            status, payload, _ = client.call("GET", query, bearer=bearer)
            if status == 200:
                break
            time.sleep(0.2)
        else:
            raise SystemExit("GET %s kept answering %s" % (query, status))
        page = data_of(payload) or []
        items.extend(page)
        if len(page) < 100 or page[-1]["id"] == after:
            return items
        after = page[-1]["id"]


def listed(client, path, owner):
    status, payload, _ = client.call("GET", path, bearer=owner.token)
    if status != 200:
        raise SystemExit("GET %s answered %s" % (path, status))
    return data_of(payload) or []


def verify(client, ledger, owners):
    """Reads back every acknowledged write through the gateway."""
    problems, counts = [], collections.Counter()
    for owner in owners:
        apps = paged(client, "/apps", owner.token)
        names = collections.Counter(a["name"] for a in apps)
        ids = {a["id"] for a in apps}
        for o, app_id, name in ledger.apps:
            if o is owner:
                counts["apps"] += 1
                if app_id not in ids:
                    problems.append("app %s (%s) acknowledged but missing" % (app_id, name))
        for o, name in ledger.app_attempts:
            if o is owner and names[name] > 1:
                problems.append("app %s created %d times" % (name, names[name]))
        # A token whose role grant failed was revoked at once (and its retry minted another).
        tokens = [t for t in paged(client, "/tokens", owner.token) if not t.get("revokedAt")]
        token_ids = {t["id"] for t in tokens}
        token_names = collections.Counter(t["name"] for t in tokens)
        for o, token_id, name in ledger.tokens:
            if o is owner:
                counts["tokens"] += 1
                if token_id not in token_ids:
                    problems.append("token %s acknowledged but missing" % token_id)
        for o, name in ledger.token_attempts:
            if o is owner and token_names[name] > 1:
                problems.append("token %s minted %d times" % (name, token_names[name]))
        status, payload, _ = client.call("GET", "/authz/roles?tenant=" + owner.tenant, bearer=owner.token)
        held = {(r["user"], r["role"]) for r in (data_of(payload) or {}).get("roles", [])}
        for (o, subject), role in ledger.granted.items():
            if o is owner:
                counts["role grants"] += 1
                if (subject, role) not in held:
                    problems.append("role %s of %s acknowledged but missing" % (role, subject))
        for (o, subject) in ledger.removed:
            if o is owner and (o, subject) not in ledger.granted:
                counts["role removals"] += 1
                if (subject, "viewer") in held:
                    problems.append("role removal of %s acknowledged but the role is still held" % subject)
        # An invitation is an offer: it is pending (and nobody joined) until the invitee accepts.
        emails = collections.Counter(m["email"] for m in listed(client, "/tenants/%s/invitations" % owner.tenant, owner))
        members = {m["email"] for m in listed(client, "/tenants/%s/members" % owner.tenant, owner)}
        for o, email in ledger.invited:
            if o is owner:
                counts["invitations"] += 1
                if emails[email] != 1:
                    problems.append("invitation of %s acknowledged but pending %d times" % (email, emails[email]))
                if email in members:
                    problems.append("invitation of %s made a member without acceptance" % email)
        status, payload, _ = client.call("GET", "/apps/%s/streams" % owner.app, bearer=owner.token)
        streams = data_of(payload) or []
        stream_ids = {s["id"] for s in streams}
        rooms = collections.Counter(s["room"] for s in streams)
        for o, app_id, stream_id, room in ledger.streams:
            if o is owner:
                counts["streams"] += 1
                if stream_id not in stream_ids or rooms[room] != 1:
                    problems.append("stream %s (%s) acknowledged: listed %d times" % (stream_id, room, rooms[room]))
    # Every signed-up account logs in (eight at a time: each login hashes its password).
    def logins(emails):
        login_client = Client(Recorder(), 15)
        for email in emails:
            for _ in range(50):
                status, payload, _ = login_client.call("POST", "/auth/login", {"email": email, "password": PASSWORD})
                if status not in TRANSIENT:
                    break
                time.sleep(0.2)
            if status != 200:
                problems.append("sign-up of %s acknowledged but login answers %s" % (email, status))
    counts["sign-ups"] = len(ledger.signups)
    workers = [threading.Thread(target=logins, args=(ledger.signups[i::8],)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counts, problems


def psql(url, sql):
    result = subprocess.run(["psql", "-qtAX", url, "-c", sql], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise SystemExit("psql: " + result.stderr.strip())
    return result.stdout.strip()


# --- faults --------------------------------------------------------------------------------------

def faults(stack, pg):
    def kill(*labels):
        procs = [stack.process(*label) for label in labels]

        def inject():
            for p in procs:
                stack.kill(p)

        def restore():
            for p in procs:
                stack.start(p)
            for p in procs:
                stack.wait_ready(p)
        return inject, restore
    listed = [
        ("an identity replica killed (-9)", kill(("identity", PORTS["identity"][1]))),
        ("an authz replica killed (-9)", kill(("authz", PORTS["authz"][1]))),
        ("a media replica killed (-9)", kill(("media", PORTS["media"][1]))),
        ("both identity replicas killed", kill(*[("identity", p) for p in PORTS["identity"]])),
        ("both authz replicas killed", kill(*[("authz", p) for p in PORTS["authz"]])),
        ("both media replicas killed", kill(*[("media", p) for p in PORTS["media"]])),
        ("the gateway killed (-9)", kill(("gateway", BASE))),
    ]
    if pg["restart"]:
        listed.append(("PostgreSQL restarted (fast)", (lambda: subprocess.run(pg["restart"], shell=True, check=True), lambda: None)))
    if pg["stop"] and pg["start"]:
        listed.append(("PostgreSQL stopped, then started", (lambda: subprocess.run(pg["stop"], shell=True, check=True),
                                                            lambda: subprocess.run(pg["start"], shell=True, check=True))))
    return listed


def summarize(calls, start, end):
    """Answers by status (a 409 is mostly a retry while the first request with its key still
    runs), and the slowest answer with what it was."""
    counts = collections.Counter()
    slowest = (0.0, "")
    for op, s, e, status in calls:
        if start <= s < end:
            counts[str(status)] += 1
            if e - s > slowest[0]:
                slowest = (e - s, "%s → %s" % (op, status))
    return counts, slowest


def recovery(calls, returned, end, fault):
    """Seconds from the dependency's return until requests succeed again: the start of the last
    request that still failed transiently (0 when none did)."""
    last = None
    for op, s, e, status in calls:
        if returned <= s < end and status in TRANSIENT:
            last = s if last is None else max(last, s)
    return 0.0 if last is None else last - returned


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["drill", "soak"])
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server URL; a fresh database is made in it and dropped after")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--before", type=float, default=3, help="seconds of steady load before each fault")
    parser.add_argument("--hold", type=float, default=4, help="seconds each fault lasts")
    parser.add_argument("--after", type=float, default=5, help="seconds of load after the dependency returns")
    parser.add_argument("--rounds", type=int, default=1, help="times the list of faults is run")
    parser.add_argument("--duration", type=float, default=60, help="soak: seconds of load")
    parser.add_argument("--sample", type=float, default=5, help="soak: seconds between samples")
    parser.add_argument("--answer-bound", type=float, default=10.0,
                        help="the slowest answer allowed: the gateway's upstream timeout (GATEWAY_UPSTREAM_TIMEOUT_MS), past which it would answer 504")
    parser.add_argument("--recovery-bound", type=float, default=2.0)
    parser.add_argument("--pg-restart", default=os.environ.get("STREAMHUB_DRILL_PG_RESTART", ""))
    parser.add_argument("--pg-stop", default=os.environ.get("STREAMHUB_DRILL_PG_STOP", ""))
    parser.add_argument("--pg-start", default=os.environ.get("STREAMHUB_DRILL_PG_START", ""))
    parser.add_argument("--report", help="write the figures (markdown) here")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="streamhub-drill-")
    database = "drill_%d" % os.getpid()
    psql(args.database_url, "CREATE DATABASE " + database)
    url = args.database_url.rsplit("/", 1)[0] + "/" + database
    stack = Stack(os.path.abspath(args.bin), url, work, {})
    failures, report = [], []
    try:
        stack.start_all()
        log("stack up: gateway :%d, two replicas each of identity, authz and media on %s" % (BASE, database))
        recorder, ledger = Recorder(), Ledger()
        setup = Client(recorder, 15)
        owners = [make_owner(setup, i, os.path.join(work, "data", "outbox")) for i in range(args.clients)]
        stop = threading.Event()
        clients = [LoadClient(i, owners[i], ledger, recorder, args.answer_bound + 8, stop) for i in range(args.clients)]
        for c in clients:
            c.start()
        if args.mode == "drill":
            run_drill(args, stack, recorder, owners, failures, report)
        else:
            run_soak(args, stack, recorder, failures, report)
        stop.set()
        for c in clients:
            c.join(timeout=60)
        counts, (slowest, which) = summarize(recorder.calls, 0, float("inf"))
        for op, s, e, status in recorder.calls:
            if e - s > args.answer_bound:
                log("slow: %s → %s took %.2f s, started %.1f s into the drill" % (op, status, e - s, s - recorder.origin))
        report.append("\nAll requests: %s; slowest answer %.2f s (%s)." % (dict(sorted(counts.items())), slowest, which))
        if counts.get("500"):
            failures.append("%d answers were 500" % counts["500"])
        if counts.get("504"):
            failures.append("%d answers were 504 (a service held a request past the gateway's timeout)" % counts["504"])
        if counts.get("no answer"):
            failures.append("%d requests had no answer within %.0f s" % (counts["no answer"], args.answer_bound + 8))
        if slowest > args.answer_bound:
            failures.append("an answer took %.2f s (bound %.1f s): %s" % (slowest, args.answer_bound, which))
        # Left role intents settle within a minute of being recorded; then no grant may outlive its user.
        deadline = now() + 90
        while now() < deadline and psql(url, "SELECT count(*) FROM identity_role_intents") != "0":
            time.sleep(1)
        left = psql(url, "SELECT count(*) FROM identity_role_intents")
        orphan_rows = psql(url, "SELECT v0 || ' ' || v1 || ' ' || v2 FROM authz_rules r WHERE ptype = 'g' AND v0 LIKE 'user:%' "
                                "AND v0 NOT LIKE 'user:drill-%' AND v0 NOT LIKE 'user:probe-%' "
                                "AND NOT EXISTS (SELECT 1 FROM identity_users u WHERE 'user:' || u.id = r.v0)").splitlines()
        orphans = str(len(orphan_rows))
        if orphan_rows:
            log("grants whose user does not exist: %s" % orphan_rows)
        verify_client = Client(Recorder(), 15)
        verified, problems = verify(verify_client, ledger, owners)
        report.append("Acknowledged writes read back: %s; missing, duplicated or shown wrong: %d; while running, answers shown wrong: %d; "
                      "role intents left: %s; grants for users that do not exist: %s; writes whose outcome was reported unknown "
                      "(their first run's process died): %d." % (dict(verified), len(problems), len(recorder.wrong), left, orphans, len(recorder.ambiguous)))
        failures += problems + recorder.wrong
        if left != "0":
            failures.append("%s role intents never settled" % left)
        if orphans != "0":
            failures.append("%s grants outlive their users" % orphans)
    finally:
        stack.stop_all()
        slow = [(label, seconds) for label, seconds, ok in stack.shutdowns if not ok]
        report.append("Shutdown (SIGTERM): slowest %.2f s%s." % (max((s for _, s, _ in stack.shutdowns), default=0),
                                                                "; past 10 s: %s" % slow if slow else ""))
        if slow:
            failures.append("not stopped within 10 s of SIGTERM: %s" % slow)
        if stack.unexpected:
            failures += ["unexpected exit: " + u for u in stack.unexpected]
        report.append("Unexpected exits: %d." % len(stack.unexpected))
        if failures or sys.exc_info()[0] is not None:
            log("database %s kept for a look" % database)
        else:
            try:
                psql(args.database_url, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % database)
            except (SystemExit, subprocess.TimeoutExpired) as e:
                log("could not drop %s: %s" % (database, e))
        text = "\n".join(report)
        print(text)
        if args.report:
            with open(args.report, "w") as f:
                f.write(text + "\n")
        if sys.exc_info()[0] is not None:
            failures.append("the drill stopped: %s" % sys.exc_info()[1])
        if failures:
            print("\nFAILED:\n- " + "\n- ".join(failures[:50]))
            print("logs kept in " + work)
            sys.exit(1)
        shutil.rmtree(work, ignore_errors=True)
        print("\nall held")


def run_drill(args, stack, recorder, owners, failures, report):
    pg = {"restart": args.pg_restart, "stop": args.pg_stop, "start": args.pg_start}
    probe_client = Client(Recorder(), 15)
    report.append("| Fault | Answers while it lasted (start → recovered) | Slowest | Recovery after return | Both authz replicas follow a role change |")
    report.append("| --- | --- | --- | --- | --- |")
    serial = 0
    for round_ in range(args.rounds):
        for name, (inject, restore) in faults(stack, pg):
            time.sleep(args.before)
            log("fault: %s (%.1f s into the drill)" % (name, now() - recorder.origin))
            began = now()
            inject()
            time.sleep(args.hold)
            restore()
            returned = now()
            log("returned after %.1f s" % (returned - began))
            time.sleep(args.after)
            ended = now()
            counts, (slowest, _) = summarize(recorder.calls, began, ended)
            recovered = recovery(recorder.calls, returned, ended, name)
            serial += 1
            follow, problem = follow_check(probe_client, owners[0], serial, args.recovery_bound)
            report.append("| %s | %s | %.2f s | %.2f s | %s |" % (
                name, ", ".join("%s: %d" % kv for kv in sorted(counts.items())), slowest, recovered,
                "within %.2f s" % follow if follow is not None else "NO: " + problem))
            if recovered > args.recovery_bound:
                failures.append("%s: requests failed %.2f s after the dependency returned" % (name, recovered))
            if problem:
                failures.append("%s: stale replica: %s" % (name, problem))
            log("%s: %s; recovery %.2f s; follow %s" % (name, dict(counts), recovered, follow if follow is not None else problem))


def run_soak(args, stack, recorder, failures, report):
    samples = []
    started = now()
    while now() - started < args.duration:
        samples.append((now() - started, stack.sample()))
        time.sleep(args.sample)
    samples.append((now() - started, stack.sample()))
    warm = next((s for s in samples if s[0] >= args.duration * 0.25), samples[0])
    last = samples[-1]
    report.append("| Process | RSS after warm-up (%.0f s) | RSS at the end (%.0f s) | Descriptors after warm-up | at the end | max |" % (warm[0], last[0]))
    report.append("| --- | --- | --- | --- | --- | --- |")
    for label in sorted(last[1]):
        if label not in warm[1]:
            continue
        rss0, fd0 = warm[1][label]
        rss1, fd1 = last[1][label]
        fdmax = max(s[1].get(label, (0, 0))[1] for s in samples)
        report.append("| %s | %.1f MiB | %.1f MiB | %d | %d | %d |" % (label, rss0 / 1024, rss1 / 1024, fd0, fd1, fdmax))
        if fd1 > fd0 + 64:
            failures.append("%s: descriptors grew from %d to %d" % (label, fd0, fd1))
        if rss1 > rss0 * 1.5 + 20 * 1024:
            failures.append("%s: RSS grew from %.1f to %.1f MiB" % (label, rss0 / 1024, rss1 / 1024))
    counts, _ = summarize(recorder.calls, 0, float("inf"))
    errors = sum(v for k, v in counts.items() if k in ("500", "502", "503", "504", "refused", "no answer"))
    if errors:
        failures.append("%d requests failed with no fault injected: %s" % (errors, dict(counts)))


if __name__ == "__main__":
    main()
