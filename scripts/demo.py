"""The local demo behind `make demo`: a real Synapse and the daemon on SQLite, end to end.

Run with the test venv's python (see tests/support/testenv.sh); `make demo` does that. It:
  1. writes a fresh config with `generate-config` (random tokens, SQLite under target/demo),
  2. prints the registration with `registration` and starts a throwaway Synapse that loads it,
  3. starts `openmeet-appservice serve` and waits until /health/ready says ready,
  4. runs `check`,
  5. declares an event room for the tenant with three members (host, moderator, participant)
     through the platform API, and waits for its job,
  6. prints what Synapse reports back: room id, alias, creator, members, power levels,
  7. sends a message that reaches the daemon in a transaction, shows a few metrics, and stops.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
BIN = os.path.join(TARGET, "debug", "openmeet-appservice")
WORK = os.path.join(REPO, "target", "demo")
SERVER_NAME = "openmeet.localhost"
TENANT = "demoTenant"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(text):
    print(f"\n== {text}", flush=True)


def call(base, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except urllib.error.URLError:
        return 0, {}


def wait_for(what, check, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    sys.exit(f"demo: timed out waiting for {what}")


def register_user(hs, localpart):
    body = {"username": localpart, "password": "demo-password-123", "inhibit_login": False}
    status, answer = call(hs, "POST", "/_matrix/client/v3/register", body=body)
    if status == 401:
        body["auth"] = {"type": "m.login.dummy", "session": answer["session"]}
        status, answer = call(hs, "POST", "/_matrix/client/v3/register", body=body)
    if status != 200:
        sys.exit(f"demo: could not register {localpart}: {answer}")
    return answer["user_id"], answer["access_token"]


def cli(config, *args):
    return subprocess.run([BIN, args[0], "-c", config, *args[1:]], capture_output=True, text=True)


def main():
    if not os.path.exists(BIN):
        sys.exit(f"demo: {BIN} is missing: run `cargo build` first (or `make demo`).")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    ports = {name: free_port() for name in ("synapse", "appservice", "platform", "metrics")}
    hs = f"http://127.0.0.1:{ports['synapse']}"

    step("1. generate-config: a fresh config with random tokens, SQLite database")
    config_text = subprocess.run([BIN, "generate-config"], capture_output=True, text=True, check=True).stdout
    for old, new in [
        ("url: http://127.0.0.1:8008", f"url: {hs}"),
        ("server_name: matrix.openmeet.net", f"server_name: {SERVER_NAME}"),
        ("url: http://127.0.0.1:8009", f"url: http://127.0.0.1:{ports['appservice']}"),
        ("appservice: 127.0.0.1:8009", f"appservice: 127.0.0.1:{ports['appservice']}"),
        ("platform: 127.0.0.1:8010", f"platform: 127.0.0.1:{ports['platform']}"),
        ("metrics: 127.0.0.1:9100", f"metrics: 127.0.0.1:{ports['metrics']}"),
        ("url: sqlite://./data/openmeet-appservice.db", f"url: sqlite://{WORK}/appservice.db"),
        ("id: lsdfaopkljdfs\n    name: OpenMeet", f"id: {TENANT}\n    name: OpenMeet Demo"),
    ]:
        assert old in config_text, old
        config_text = config_text.replace(old, new)
    config = os.path.join(WORK, "config.yaml")
    with open(config, "w") as f:
        f.write(config_text)
    as_token = next(line.split(": ")[1] for line in config_text.splitlines() if line.strip().startswith("as_token:"))
    print(f"wrote {config}")

    step("2. registration: what Synapse loads (tokens hidden here)")
    registration = cli(config, "registration")
    if registration.returncode != 0:
        sys.exit(registration.stderr)
    registration_path = os.path.join(WORK, "registration.yaml")
    with open(registration_path, "w") as f:
        f.write(registration.stdout)
    for line in registration.stdout.splitlines():
        print("   ", line if "_token:" not in line else line.split(":")[0] + ": <hidden>")

    print(f"\nstarting Synapse on {hs} ...", flush=True)
    synapse = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tests", "support", "synapse.py"), "--workdir", os.path.join(WORK, "synapse"),
         "--port", str(ports["synapse"]), "--server-name", SERVER_NAME, "--registration", registration_path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(WORK, "synapse.py.log"), "w"), text=True,
    )
    os.makedirs(os.path.join(WORK, "synapse"), exist_ok=True)
    line = synapse.stdout.readline()
    if not line.startswith("READY"):
        sys.exit(f"demo: Synapse did not start; see {WORK}/synapse.py.log and {WORK}/synapse/homeserver.log")
    print("Synapse is up")

    daemon = None
    try:
        step("3. serve: the daemon, until /health/ready says ready")
        log = open(os.path.join(WORK, "daemon.log"), "w")
        daemon = subprocess.Popen([BIN, "serve", "-c", config], stdout=log, stderr=log)
        metrics = f"http://127.0.0.1:{ports['metrics']}"
        started = time.monotonic()
        def is_ready():
            if daemon.poll() is not None:
                sys.exit(f"demo: the daemon exited:\n{open(log.name).read()}")
            return call(metrics, "GET", "/health/ready")[0] == 200
        wait_for("readiness", is_ready)
        print(f"ready after {(time.monotonic() - started) * 1000:.0f} ms: {call(metrics, 'GET', '/health/ready')[1]}")

        step("4. check: the preflight an operator runs")
        checked = cli(config, "check")
        print(checked.stdout + checked.stderr, end="")
        if checked.returncode != 0:
            sys.exit(f"demo: check failed with exit code {checked.returncode}")

        step("5. the platform declares an event room with three members (platform API)")
        api = f"http://127.0.0.1:{ports['platform']}"
        tenant_token = next(line.split(": ")[1] for line in config_text.splitlines() if line.strip().startswith("api_token:"))
        people = {role: register_user(hs, f"demo-{role}") for role in ("host", "moderator", "participant")}
        declaration = {
            "name": "Summer Party Chat",
            "topic": "Chat room for Summer Party",
            "visibility": "private",
            "members": [{"user_id": user_id, "role": role} for role, (user_id, _) in people.items()],
        }
        print(f"PUT /v1/tenants/{TENANT}/rooms/event/summer-party")
        status, answer = call(api, "PUT", f"/v1/tenants/{TENANT}/rooms/event/summer-party", tenant_token, declaration)
        print(f"  -> HTTP {status} {answer}")
        job_id = answer["job"]["id"]
        job = wait_for("the job", lambda: (lambda j: j if j["status"] not in ("queued", "running") else None)(
            call(api, "GET", f"/v1/jobs/{job_id}", tenant_token)[1]))
        print(f"  job {job_id}: {job['status']}")
        if job["status"] != "succeeded":
            sys.exit(f"demo: the job did not succeed: {job}")
        room_id, alias = job["result"]["room_id"], job["result"]["alias"]

        step("6. what Synapse reports back")
        host_id, host_token = people["host"]
        quoted = urllib.parse.quote(room_id)
        call(hs, "POST", f"/_matrix/client/v3/join/{quoted}", host_token, {})
        status, resolved = call(hs, "GET", f"/_matrix/client/v3/directory/room/{urllib.parse.quote(alias)}", host_token)
        print(f"room id:  {room_id}")
        print(f"alias:    {alias} -> {resolved.get('room_id')}")
        status, state = call(hs, "GET", f"/_matrix/client/v3/rooms/{quoted}/state", host_token)
        by_type = {(e["type"], e.get("state_key")): e for e in state}
        print(f"name:     {by_type[('m.room.name', '')]['content']['name']}")
        print(f"creator:  {by_type[('m.room.create', '')]['sender']} (room version {by_type[('m.room.create', '')]['content'].get('room_version')})")
        print("members:")
        for (event_type, key), event in sorted(by_type.items(), key=lambda item: str(item[0])):
            if event_type == "m.room.member":
                print(f"  {key:<42} {event['content']['membership']}")
        levels = by_type[("m.room.power_levels", "")]["content"]
        print("power levels:")
        for user_id, level in sorted(levels.get("users", {}).items(), key=lambda item: -item[1]):
            print(f"  {user_id:<42} {level}")
        print(f"  everyone else                              {levels.get('users_default', 0)}")

        step("7. a message in the room reaches the daemon in a transaction (inbox events)")
        status, sent = call(hs, "PUT", f"/_matrix/client/v3/rooms/{quoted}/send/m.room.message/demo1", host_token, {"msgtype": "m.text", "body": "hello, everyone"})
        message_id = sent["event_id"]
        def delivered():
            events = [json.loads(l) for l in cli(config, "inbox", "events").stdout.splitlines()]
            mine = [e for e in events if e["room_id"] == room_id]
            return mine if any(e["event_id"] == message_id and e["outcome"] for e in mine) else None
        for event in reversed(wait_for("the message to arrive and be processed", delivered)):
            print(f"  {event['event_type']:<22} txn {event['txn_id']:<4} -> {event['outcome']}")
        print("\nmetrics:")
        text = urllib.request.urlopen(metrics + "/metrics").read().decode()
        for line in text.splitlines():
            if line.startswith(("openmeet_as_transactions_received_total", "openmeet_as_events_received_total",
                                "openmeet_as_jobs_total", "openmeet_as_events_processed_total")):
                print("  " + line)
        print(f"\ndone: logs in {WORK} (daemon.log, synapse/homeserver.log)")
    finally:
        if daemon and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=10)
        synapse.stdin.close()
        synapse.wait(timeout=30)


if __name__ == "__main__":
    main()
