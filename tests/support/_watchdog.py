"""What synapse.py and postgres.py share: they run until the test process that started them is gone."""

import os
import signal
import threading


def watch_stdin(stop):
    """Set `stop` once stdin reaches EOF: the process holding its other end is gone."""

    def run():
        # os.read, not sys.stdin: a buffered read would hold a lock that makes
        # the interpreter abort at exit while this daemon thread is blocked.
        while os.read(0, 4096):
            pass
        stop.set()

    threading.Thread(target=run, daemon=True).start()


def kill_with_parent(sig):
    """In the child (preexec_fn): receive `sig` if the parent dies without cleaning up (Linux only)."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except Exception:
        pass
