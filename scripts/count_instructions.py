#!/usr/bin/env python3
"""Instructions per event on the transaction path, counted by callgrind (`make instructions`).

Wall-clock benchmarks (`make bench`) move with whatever else the machine is doing; an instruction
count does not. This starts the release daemon on a fresh SQLite file under
`valgrind --tool=callgrind`, pushes 20 transactions of 100 events to warm it up (the same ~470-byte
events as benches/transactions.rs: four messages to one membership), zeroes the counters, pushes
200 more, waits until the inbox has drained, and prints the instructions per event with the
functions that cost most (inclusive). The daemon needs no homeserver for this: pushed
transactions are stored and processed whether or not Synapse answers.

Usage: scripts/count_instructions.py BINARY [OUTPUT_DIR]
"""

import hashlib
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

WARM_UP, MEASURED, EVENTS_PER_TXN = 20, 200, 100
SERVER_NAME = "openmeet.test"
ROOMS = [f"!{name}:{SERVER_NAME}" for name in
         ["KdJsQpLxRtvBnWmzYh", "aPqRsTuVwXyZbCdEfG", "hIjKlMnOpQrStUvWxY", "zAbCdEfGhIjKlMnOpQ",
          "rStUvWxYzAbCdEfGhI"]]
USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]
TEXT = ("Shall we move the meetup to the community hall on Thursday? The cafe is booked and the hall "
        "has a projector, chairs for forty people and a kitchen. Bring snacks if you can; I will "
        "send the agenda and the slides before then.")


def fail(message):
    sys.exit(f"count_instructions: {message}")


def event_id(n):
    return "$" + hashlib.sha256(n.to_bytes(8, "little")).hexdigest()[:43]


def user(i):
    return f"@{USERS[i % len(USERS)]}:{SERVER_NAME}"


def event(n):
    room, sender = ROOMS[n % len(ROOMS)], user(n // 3)
    if n % 5 == 4:
        return {"type": "m.room.member", "event_id": event_id(n), "room_id": room, "sender": sender,
                "state_key": sender, "origin_server_ts": 1_700_000_000_000 + n,
                "content": {"membership": "join", "displayname": "alice (OpenMeet)",
                            "avatar_url": f"mxc://{SERVER_NAME}/xYzAbCdEfGhIjKlMnOpQrStU"},
                "unsigned": {"age": 40, "replaces_state": event_id(n + 1_000_000_000),
                             "prev_content": {"membership": "invite", "displayname": "alice"},
                             "prev_sender": user(n + 1)}}
    return {"type": "m.room.message", "event_id": event_id(n), "room_id": room, "sender": sender,
            "origin_server_ts": 1_700_000_000_000 + n,
            "content": {"msgtype": "m.text", "body": TEXT[:140 + (n * 37) % 80], "m.mentions": {}},
            "unsigned": {"age": 40 + n % 900}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push(port, hs_token, txn_ids):
    bodies = [json.dumps({"events": [event(t * EVENTS_PER_TXN + i) for i in range(EVENTS_PER_TXN)]})
              for t in txn_ids]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for txn_id, body in zip(txn_ids, bodies):
        connection.request("PUT", f"/_matrix/app/v1/transactions/{txn_id}", body=body,
                           headers={"Authorization": f"Bearer {hs_token}",
                                    "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            fail(f"transaction {txn_id} answered {response.status}")


def backlog(metrics_port):
    """Events received but not yet processed, from the daemon's counters."""
    connection = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=30)
    connection.request("GET", "/metrics")
    received = processed = 0.0
    for line in connection.getresponse().read().decode().splitlines():
        if line.startswith("openmeet_as_events_received_total "):
            received += float(line.split()[-1])
        elif line.startswith("openmeet_as_events_processed_total{"):
            processed += float(line.split()[-1])
    return received - processed


def main():
    if len(sys.argv) not in (2, 3):
        fail(__doc__.strip().splitlines()[-1])
    binary = os.path.abspath(sys.argv[1])
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            fail(f"{tool} is missing: install Debian's valgrind package (apt-get install valgrind)")
    work = tempfile.mkdtemp(prefix="count-instructions-")
    out_dir = os.path.abspath(sys.argv[2] if len(sys.argv) == 3 else work)
    os.makedirs(out_dir, exist_ok=True)
    ports = {name: free_port() for name in ("appservice", "platform", "metrics")}
    hs_token = secrets.token_hex(32)
    with open(os.path.join(work, "config.yaml"), "w") as config:
        config.write(f"""homeserver:
  url: http://127.0.0.1:9
  server_name: {SERVER_NAME}
  probe_interval_seconds: 0
appservice:
  id: openmeet-instructions
  sender_localpart: openmeet-bot
  bot_prefix: openmeet-bot-
  as_token: {secrets.token_hex(32)}
  hs_token: {hs_token}
  url: http://127.0.0.1:{ports['appservice']}
listen:
  appservice: 127.0.0.1:{ports['appservice']}
  platform: 127.0.0.1:{ports['platform']}
  metrics: 127.0.0.1:{ports['metrics']}
database:
  url: sqlite://{work}/appservice.db
tenants:
  - {{id: tenantA, name: "Tenant A", api_token: {secrets.token_hex(32)}}}
logging:
  level: warn
""")
    out = os.path.join(out_dir, "callgrind.out")
    log = open(os.path.join(work, "daemon.log"), "w")
    daemon = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
         binary, "serve", "-c", os.path.join(work, "config.yaml")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", ports["appservice"]), timeout=1).close()
                break
            except OSError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    fail(f"the daemon did not start; its log is {log.name}")
                time.sleep(0.2)
        push(ports["appservice"], hs_token, range(1, WARM_UP + 1))
        subprocess.run(["callgrind_control", "--zero", str(daemon.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        push(ports["appservice"], hs_token, range(WARM_UP + 1, WARM_UP + MEASURED + 1))
        deadline = time.monotonic() + 120
        while backlog(ports["metrics"]) > 0:
            if time.monotonic() > deadline:
                fail("the inbox did not drain within 2 minutes")
            time.sleep(0.5)
        subprocess.run(["callgrind_control", "--dump", str(daemon.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        daemon.terminate()
        daemon.wait()
    dumps = sorted(f for f in os.listdir(out_dir) if f.startswith("callgrind.out."))
    if not dumps:
        fail("callgrind wrote no dump")
    dump = os.path.join(out_dir, dumps[-1])
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", dump],
                               capture_output=True, text=True, check=True).stdout.splitlines()
    total = next(int(line.split()[0].replace(",", "")) for line in annotated
                 if "PROGRAM TOTALS" in line)
    events = MEASURED * EVENTS_PER_TXN
    print(f"{total:,} instructions for {events:,} events: {total / events:,.0f} per event")
    print(f"profile: {dump} (callgrind_annotate --inclusive=yes {dump})")
    ours = [line for line in annotated if "openmeet_appservice::" in line or "sqlite3_step" in line]
    for line in ours[:15]:
        print("  " + line.strip()[:150])


if __name__ == "__main__":
    main()
