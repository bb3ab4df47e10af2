"""The load of the antispam benchmark (benches/antispam.rs): synapse-http-antispam's own client.

Usage (with the test venv's python): python antispam_load.py < plan.json

The plan is JSON: {base_url, token_file, requests, concurrency, rooms: [{room_id, members: [..]}],
banned: [..]}. The module (`synapse_http_antispam.HTTPAntispam`) is loaded as Synapse loads it,
with a stand-in ModuleApi whose `http_client` is Synapse's real `SimpleHttpClient` (on a stand-in
HomeServer carrying only what that client reads), so every request is the one Synapse would send.
The mix: 80 % check_event_for_spam (a message, one in twenty with a blocked link), 10 %
user_may_join_room (one in ten of a banned user), 10 % user_may_invite. `concurrency` callbacks in
flight at once. Prints one JSON line: per callback, the count, the outcomes and the latency
percentiles in ms, measured around the module's callback (what Synapse waits for). `failed`
counts requests that got no decision (the bench loads the module failing closed everywhere).
"""

import json
import logging
import random
import sys
import time
from types import SimpleNamespace

from twisted.internet import defer, reactor
from twisted.web.client import BrowserLikePolicyForHTTPS

from synapse.api.errors import Codes
from synapse.http.client import SimpleHttpClient
from synapse.module_api import NOT_SPAM
from synapse.util.clock import Clock

import synapse_http_antispam


class StandInHomeServer:
    """What SimpleHttpClient reads of a HomeServer, and nothing more."""

    hostname = "bench.openmeet.test"
    version_string = "Synapse/bench"

    def __init__(self):
        self.config = SimpleNamespace(
            server=SimpleNamespace(user_agent_suffix=None, proxy_config=None),
            caches=SimpleNamespace(global_factor=1.0),
        )
        self._clock = Clock(reactor, server_name=self.hostname)

    def get_reactor(self):
        return reactor

    def get_clock(self):
        return self._clock

    def get_http_client_context_factory(self):
        return BrowserLikePolicyForHTTPS()


class StandInModuleApi:
    """The ModuleApi methods the module calls at load."""

    def __init__(self, http_client):
        self.http_client = http_client
        self.callbacks = {}

    def register_spam_checker_callbacks(self, **callbacks):
        self.callbacks = callbacks


class StandInEvent:
    """An event as the module reads it: `get_dict()` and `event_id`."""

    def __init__(self, event_id, fields):
        self.event_id = event_id
        self._fields = fields

    def get_dict(self):
        return dict(self._fields)


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    rank = min(len(sorted_ms), max(1, int(-(-len(sorted_ms) * q // 1))))
    return sorted_ms[rank - 1]


async def run(plan):
    api = StandInModuleApi(SimpleHttpClient(StandInHomeServer()))
    synapse_http_antispam.HTTPAntispam(
        {
            "base_url": plan["base_url"],
            "authorization_path": plan["token_file"],
            "enabled_callbacks": ["user_may_join_room", "user_may_invite", "check_event_for_spam"],
            # Failing closed everywhere, so that a failed request is counted, not hidden.
            "fail_open": {
                "check_event_for_spam": False,
                "user_may_join_room": False,
                "user_may_invite": False,
            },
        },
        api,
    )
    callbacks = api.callbacks
    rooms, banned = plan["rooms"], plan["banned"]
    rng = random.Random(7)
    timings = {name: [] for name in callbacks}
    outcomes = {name: {"allowed": 0, "refused": 0, "failed": 0} for name in callbacks}

    async def one(i):
        room = rng.choice(rooms)
        member = rng.choice(room["members"])
        roll = rng.random()
        if roll < 0.8:
            name = "check_event_for_spam"
            body = "see https://www.spam.example/offer" if i % 20 == 0 else f"hello {i}"
            event = StandInEvent(
                f"$bench{i}",
                {
                    "type": "m.room.message",
                    "room_id": room["room_id"],
                    "sender": member,
                    "content": {"msgtype": "m.text", "body": body},
                    "origin_server_ts": 0,
                    "unsigned": {},
                },
            )
            call = lambda: callbacks[name](event)
        elif roll < 0.9:
            name = "user_may_join_room"
            user = rng.choice(banned) if i % 10 == 0 else member
            call = lambda: callbacks[name](user, room["room_id"], True)
        else:
            name = "user_may_invite"
            call = lambda: callbacks[name](member, rng.choice(banned), room["room_id"])
        started = time.perf_counter()
        result = await call()
        timings[name].append((time.perf_counter() - started) * 1000.0)
        if result is NOT_SPAM:
            outcome = "allowed"
        elif result[0] == Codes.FORBIDDEN:
            outcome = "refused"
        else:
            outcome = "failed"
        outcomes[name][outcome] += 1

    semaphore = defer.DeferredSemaphore(plan["concurrency"])
    started = time.perf_counter()
    await defer.gatherResults(
        [
            semaphore.run(lambda i=i: defer.ensureDeferred(one(i)))
            for i in range(plan["requests"])
        ],
        consumeErrors=True,
    )
    elapsed = time.perf_counter() - started
    report = {"seconds": elapsed, "callbacks": {}}
    for name, values in timings.items():
        values.sort()
        report["callbacks"][name] = {
            "count": len(values),
            **outcomes[name],
            "p50_ms": percentile(values, 0.50),
            "p99_ms": percentile(values, 0.99),
            "max_ms": values[-1] if values else 0.0,
        }
    every = sorted(v for values in timings.values() for v in values)
    report["all"] = {
        "count": len(every),
        "p50_ms": percentile(every, 0.50),
        "p99_ms": percentile(every, 0.99),
        "max_ms": every[-1] if every else 0.0,
    }
    return report


def main():
    # Failures are counted in the report; the module's traceback for each is noise here.
    logging.getLogger("synapse_http_antispam").setLevel(logging.CRITICAL)
    plan = json.load(sys.stdin)
    result = {}

    def done(report):
        result["report"] = report
        reactor.stop()

    def failed(failure):
        result["error"] = failure.getTraceback()
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(run(plan)).addCallbacks(done, failed))
    reactor.run()
    if "error" in result:
        sys.stderr.write(result["error"])
        sys.exit(1)
    print(json.dumps(result["report"]))


if __name__ == "__main__":
    main()
