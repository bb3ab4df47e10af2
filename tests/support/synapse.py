"""Run a throwaway Synapse for the tests, in the foreground.

Usage (with the test venv's python, see testenv.sh):

    python synapse.py --workdir DIR --port PORT --server-name NAME \
        [--registration FILE ...] [--mas] [--allow-publication]
        [--antispam-url URL --antispam-token-file FILE]

Writes DIR/homeserver.yaml, starts Synapse as a child process and prints one
line `READY <url>` on stdout once the client API answers. It then waits until
its stdin reaches EOF (the test process that started it has exited, even if it
was killed) or it receives SIGTERM/SIGINT, stops Synapse and exits.

With --mas, Synapse delegates authentication to a stand-in Matrix Authentication Service
(`_mas.py`, run in this process; `matrix_authentication_service` in homeserver.yaml, which records
its endpoint and shared secret): humans get their tokens from the stand-in, appservices still use
their as_token.

With --antispam-url, Synapse loads the synapse-http-antispam module pointed at the daemon, with
exactly the `modules:` block docs/operations.md ("Rules before send") tells operators to set.

Everything except the READY line goes to stderr. Synapse's own log is
DIR/homeserver.log; what Synapse prints before its logging is set up (config
errors, tracebacks) goes to DIR/synapse.stderr.log.
"""

import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import yaml  # PyYAML, a dependency of Synapse

from _mas import StandIn
from _watchdog import kill_with_parent, watch_stdin

START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 10


def unlimited():
    """Enough for any test. A new dict each time, so PyYAML writes no aliases."""
    return {"per_second": 100000, "burst_count": 100000}


# Every rate limiter Synapse 1.163 reads (synapse/config/ratelimiting.py).
RATE_LIMITS = {
    "rc_message": unlimited(),
    "rc_registration": unlimited(),
    "rc_registration_token_validity": unlimited(),
    "rc_login": {
        "address": unlimited(),
        "account": unlimited(),
        "failed_attempts": unlimited(),
    },
    "rc_admin_redaction": unlimited(),
    "rc_joins": {"local": unlimited(), "remote": unlimited()},
    "rc_joins_per_room": unlimited(),
    "rc_key_requests": unlimited(),
    "rc_3pid_validation": unlimited(),
    "rc_invites": {
        "per_room": unlimited(),
        "per_user": unlimited(),
        "per_issuer": unlimited(),
    },
    "rc_third_party_invite": unlimited(),
    "rc_media_create": unlimited(),
    "rc_presence": {"per_user": unlimited()},
    "rc_delayed_event_mgmt": unlimited(),
    "rc_room_creation": unlimited(),
    "rc_reports": unlimited(),
    "rc_user_directory": unlimited(),
    "rc_profile": unlimited(),
}


def log(msg):
    print(f"synapse.py: {msg}", file=sys.stderr, flush=True)


def fail(msg, workdir=None):
    log(msg)
    if workdir is not None:
        sys.stderr.write(diagnostics(workdir))
    sys.exit(1)


def tail(path, lines=60):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def diagnostics(workdir):
    out = []
    for name in ("synapse.stderr.log", "homeserver.log"):
        text = tail(os.path.join(workdir, name))
        if text:
            out.append(f"----- last lines of {os.path.join(workdir, name)} -----\n{text}")
    return "".join(out)


def database_dir(workdir):
    """A fresh directory for the SQLite file: on tmpfs when possible (much faster)."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return tempfile.mkdtemp(prefix="openmeet-synapse-", dir=shm), True
    path = os.path.join(workdir, "db")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path, False


def write_signing_key(path):
    if os.path.exists(path):
        return
    key = base64.b64encode(os.urandom(32)).decode("ascii").rstrip("=")
    with open(path, "w", encoding="ascii") as f:
        f.write(f"ed25519 a_x {key}\n")
    os.chmod(path, 0o600)


def write_log_config(workdir):
    path = os.path.join(workdir, "log.yaml")
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s"
                " - %(request)s - %(message)s"
            }
        },
        "handlers": {
            # Unbuffered, so a test can read the log right after a request.
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": os.path.join(workdir, "homeserver.log"),
                "encoding": "utf8",
            }
        },
        "loggers": {"synapse.storage.SQL": {"level": "INFO"}},
        "root": {"level": "INFO", "handlers": ["file"]},
    }
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def write_config(args, db_dir, mas=None):
    workdir = args.workdir
    signing_key = os.path.join(workdir, "signing.key")
    write_signing_key(signing_key)
    media = os.path.join(workdir, "media_store")
    os.makedirs(media, exist_ok=True)
    config = {
        "server_name": args.server_name,
        "pid_file": os.path.join(workdir, "homeserver.pid"),
        "public_baseurl": f"http://127.0.0.1:{args.port}/",
        "listeners": [
            {
                "port": args.port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {
            "name": "sqlite3",
            "args": {"database": os.path.join(db_dir, "homeserver.db")},
        },
        "log_config": write_log_config(workdir),
        "media_store_path": media,
        "signing_key_path": signing_key,
        "report_stats": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        # An empty whitelist: this homeserver federates with nobody.
        "federation_domain_whitelist": [],
        "background_updates": {"sleep_enabled": False},
        "bcrypt_rounds": 4,
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "app_service_config_files": [os.path.abspath(p) for p in args.registration],
        "enable_metrics": False,
        "url_preview_enabled": False,
        **RATE_LIMITS,
    }
    if args.allow_publication:
        # What an operator adds who opts tenants into the server-wide directory (DESIGN §7.5,
        # `tenants[].server_directory`); without it Synapse's default lets no one publish.
        config["room_list_publication_rules"] = [{"user_id": "@openmeet-bot-*", "action": "allow"}]
    if args.antispam_url:
        config["modules"] = antispam_modules(args.antispam_url, args.antispam_token_file)
    if mas is not None:
        # MSC3861: Synapse asks MAS about every token that is not an appservice's; registration
        # and passwords are MAS's business then (Synapse refuses to start with them on).
        config["enable_registration"] = False
        config["matrix_authentication_service"] = {
            "enabled": True,
            "endpoint": mas.url + "/",
            "secret": mas.secret,
        }
    path = os.path.join(workdir, "homeserver.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def antispam_modules(base_url, token_file):
    """The `modules:` block of docs/operations.md ("Rules before send"), word for word."""
    return [
        {
            "module": "synapse_http_antispam.HTTPAntispam",
            "config": {
                "base_url": base_url,
                "authorization_path": token_file,
                "enabled_callbacks": [
                    "user_may_join_room",
                    "user_may_invite",
                    "check_event_for_spam",
                ],
                "fail_open": {
                    "check_event_for_spam": True,
                    "user_may_join_room": False,
                    "user_may_invite": False,
                },
                "do_ping": True,
            },
        }
    ]


def start_synapse(config_path, workdir):
    stderr = open(os.path.join(workdir, "synapse.stderr.log"), "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "synapse.app.homeserver", "-c", config_path],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=stderr,
        stderr=stderr,
        preexec_fn=lambda: kill_with_parent(signal.SIGTERM),
    )


def wait_until_ready(proc, url, workdir, stop):
    """True once Synapse answers; False if we were told to stop first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    versions = url + "/_matrix/client/versions"
    while time.monotonic() < deadline:
        if stop.is_set():
            return False
        if proc.poll() is not None:
            fail(
                f"Synapse exited with code {proc.returncode} while starting; "
                "its log below says why (a bad homeserver.yaml or registration "
                "file is the usual cause).",
                workdir,
            )
        try:
            with urllib.request.urlopen(versions, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    fail(
        f"Synapse did not answer {versions} within {START_TIMEOUT_S} s; the "
        "machine may be overloaded, or the log below shows where it got stuck.",
        workdir,
    )


def stop_synapse(proc):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log(f"Synapse did not stop within {STOP_TIMEOUT_S} s of SIGTERM; killing it")
        proc.kill()
        proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--server-name", required=True)
    parser.add_argument("--registration", action="append", default=[])
    parser.add_argument(
        "--mas",
        action="store_true",
        help="delegate authentication to a stand-in Matrix Authentication Service (MSC3861)",
    )
    parser.add_argument(
        "--allow-publication",
        action="store_true",
        help="let the tenant bots list rooms in the server-wide directory (room_list_publication_rules); by default the homeserver.yaml is Synapse's defaults plus the registration",
    )
    parser.add_argument(
        "--antispam-url",
        help="load synapse-http-antispam with this base_url (the daemon's /_openmeet/antispam), as docs/operations.md says",
    )
    parser.add_argument(
        "--antispam-token-file",
        help="the file holding the module's authorization (the daemon's appservice.antispam_token)",
    )
    parser.add_argument(
        "--database-dir",
        help="keep Synapse's SQLite database in this directory (kept at exit, reused by the next start); default: a fresh one, removed at exit",
    )
    args = parser.parse_args()
    args.workdir = os.path.abspath(args.workdir)
    os.makedirs(args.workdir, exist_ok=True)

    for reg in args.registration:
        if not os.path.isfile(reg):
            fail(f"the appservice registration file {reg} does not exist; write it before starting Synapse.")

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watch_stdin(stop)

    if args.database_dir:
        os.makedirs(args.database_dir, exist_ok=True)
        db_dir, db_on_tmpfs = os.path.abspath(args.database_dir), False
    else:
        db_dir, db_on_tmpfs = database_dir(args.workdir)
    mas = None
    url = f"http://127.0.0.1:{args.port}"
    if args.mas:
        sessions = os.path.join(args.workdir, "mas_sessions.json")
        mas = StandIn(base64.b16encode(os.urandom(24)).decode().lower(), args.server_name, sessions)
        mas.synapse_url = url
        mas.start()
        log(f"stand-in MAS at {mas.url}")
    try:
        config_path = write_config(args, db_dir, mas)
        proc = start_synapse(config_path, args.workdir)
        try:
            if not wait_until_ready(proc, url, args.workdir, stop):
                return
            print(f"READY {url}", flush=True)

            while not stop.wait(0.5):
                if proc.poll() is not None:
                    fail(f"Synapse exited unexpectedly with code {proc.returncode}.", args.workdir)
        finally:
            stop_synapse(proc)
    finally:
        if mas is not None:
            mas.stop()
        if db_on_tmpfs:
            shutil.rmtree(db_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
