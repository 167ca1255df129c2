"""A correct counter service with idempotency keys in the manner of the IETF Idempotency-Key draft
(draft-ietf-httpapi-idempotency-key-header), slow the way real services are, and a broken variant.

It speaks counterbench's reference contract:

    PUT  /counters/{key}                {"value": n}  -> 200 {"value": n}
    POST /counters/{key}/increment      {"amount": n} -> 200 {"value": after}
    GET  /counters/{key}                              -> 200 {"value": n} | 404
    GET  /health                                      -> 200
    POST /idempotency/{token}/resolve                 -> 200 {"value": v} applied | 404 not applied (final)
    GET  /audit                                       -> what the service itself saw (for the test)

An increment with an ``Idempotency-Key`` header moves its key (token) through these states:

    (unseen) --first request--> in-progress --applied--> done(value)
    (unseen) --resolve--------> fenced
    in-progress --resolve-----> fenced       (the request, when it wakes, answers 409 and never applies)

    in-progress: a repeat answers 409 (the draft's rule for a request still being processed)
    done:        a repeat replays the first answer (200, the same value, Idempotent-Replayed: true)
    fenced:      a request answers 409 and is never applied, so the lookup's 404 is final
    any state:   a repeat with another amount answers 422 (the draft: the key was reused)

Real services are slow now and then; a seeded draw for each key's first request picks

    --slow      share that take --delay seconds (longer than the client's timeout), THEN apply
    --slow-ack  share applied at once but answered --delay seconds later
    --stuck     share held --stuck-for seconds (past the run) before applying: the lookup fences them

``--double-apply`` is the bug: the key is recorded only once its op is done (check, await, act), so a
repeat that arrives while the first is still working is applied as well -- twice in all.

One process: the event loop serialises state changes, and a key's state is set before any await. The
service counts applications per key itself (``twice`` in /audit, and a warning in the log) so a test can
confirm independently of counterbench whether any op was applied twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn

from harness.service.app import read_body

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
State = Literal["in-progress", "done", "fenced"]
Answer = tuple[int, dict[str, Any], bool]  # status, JSON body, replayed

COUNTER = re.compile(r"^/counters/([^/]+)(/increment)?$")
RESOLVE = re.compile(r"^/idempotency/([^/]+)/resolve$")
log = logging.getLogger("ietf_service")


@dataclass
class Key:
    """One idempotency key: its state, the amount its first request carried, the value it left."""

    amount: int
    state: State = "in-progress"
    value: int | None = None
    fenced_in_progress: bool = False


@dataclass(frozen=True)
class Knobs:
    """Shares of keys whose first request is held up (slow, stuck) or answered late (slow_ack); seconds."""

    slow: float = 0.07
    slow_ack: float = 0.04
    stuck: float = 0.01
    delay: tuple[float, float] = (0.45, 0.9)
    stuck_for: float = 120.0
    seed: int = 1
    double_apply: bool = False


class Service:
    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.rng = random.Random(knobs.seed)
        self.values: dict[str, int] = {}
        self.keys: dict[str, Key] = {}
        self.applied: dict[str, int] = {}  # applications per idempotency key: never above 1 when correct
        self.seen: dict[str, int] = {}  # what happened, by kind, for /audit and the log

    def note(self, what: str) -> None:
        self.seen[what] = self.seen.get(what, 0) + 1

    def apply(self, counter: str, token: str, amount: int) -> int:
        self.values[counter] = value = self.values.get(counter, 0) + amount
        self.applied[token] = n = self.applied.get(token, 0) + 1
        if n > 1:
            log.warning("key %s applied %d times", token, n)
        return value

    async def increment(self, counter: str, amount: int, token: str | None) -> Answer:
        if token is None:  # no key: a plain increment, applied once per request
            self.values[counter] = value = self.values.get(counter, 0) + amount
            return 200, {"value": value}, False
        seen = self.keys.get(token)
        if seen is not None:
            return self.repeat(seen, amount)
        entry = Key(amount=amount)
        if not self.knobs.double_apply:
            self.keys[token] = entry  # in progress before any await: a repeat from now on sees it
        fate = self.fate()
        if fate in ("slow", "stuck"):  # held up before applying: the client gives up and retries meanwhile
            self.note(fate)
            await asyncio.sleep(self.rng.uniform(*self.knobs.delay) if fate == "slow" else self.knobs.stuck_for)
            if entry.state == "fenced":  # looked up meanwhile and answered "not applied": that stays true
                self.note("woke-fenced")
                return 409, {"error": "this key was resolved as not applied"}, False
        entry.value = self.apply(counter, token, amount)
        entry.state = "done"
        self.keys[token] = entry  # --double-apply: only now is the key known (the bug)
        if fate == "slow-ack":
            self.note(fate)
            await asyncio.sleep(self.rng.uniform(*self.knobs.delay))  # applied; the answer is late
        return 200, {"value": entry.value}, False

    def fate(self) -> str:
        """What happens to a key's first request: slow, stuck, slow-ack or fast (seeded)."""
        draw, k = self.rng.random(), self.knobs
        for fate, share in (("slow", k.slow), ("stuck", k.stuck), ("slow-ack", k.slow_ack)):
            if draw < share:
                return fate
            draw -= share
        return "fast"

    def repeat(self, seen: Key, amount: int) -> Answer:
        if seen.state == "fenced":
            self.note("409-fenced")
            return 409, {"error": "this key was resolved as not applied"}, False
        if seen.amount != amount:
            self.note("422")
            return 422, {"error": "this Idempotency-Key was used with another request"}, False
        if seen.state == "in-progress":
            self.note("409-in-progress")
            return 409, {"error": "a request with this Idempotency-Key is still being processed"}, False
        self.note("replayed")
        return 200, {"value": seen.value}, True

    def resolve(self, token: str) -> Answer:
        seen = self.keys.get(token)
        if seen is not None and seen.state == "done":
            self.note("resolved-applied")
            return 200, {"value": seen.value}, False
        if seen is None:
            self.keys[token] = Key(amount=0, state="fenced")  # unseen: fenced, so a late arrival is refused
        elif seen.state == "in-progress":
            seen.state, seen.fenced_in_progress = "fenced", True  # its request will wake to the fence
        self.note("resolved-not-applied")
        return 404, {"error": "not applied (and now never will be)"}, False

    def audit(self) -> dict[str, Any]:
        return {"seen": self.seen, "values": self.values,
                "twice": sorted(t for t, n in self.applied.items() if n > 1),
                "keys": {t: {"state": e.state, "value": e.value, "amount": e.amount,
                             "applied": self.applied.get(t, 0), "fenced_in_progress": e.fenced_in_progress}
                         for t, e in self.keys.items()}}

    async def handle(self, method: str, path: str, token: str | None, body: bytes) -> Answer:
        if path == "/health":
            return 200, {"status": "ok"}, False
        if path == "/audit":
            return 200, self.audit(), False
        m = RESOLVE.match(path)
        if m and method == "POST":
            return self.resolve(m.group(1))
        m = COUNTER.match(path)
        if m is None:
            return 404, {"error": "no such route"}, False
        counter, action = m.groups()
        self.note(f"{method} {'increment' if action else 'counter'}")
        if action and method == "POST":
            return await self.increment(counter, int(json.loads(body)["amount"]), token)
        if method == "PUT":
            self.values[counter] = int(json.loads(body)["value"])
            return 200, {"value": self.values[counter]}, False
        if method == "GET" and counter in self.values:
            return 200, {"value": self.values[counter]}, False
        return 404, {"error": "no such counter"}, False


def make_app(service: Service) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # at shutdown, the service's own account of the run, in its log
            while (await receive())["type"] != "lifespan.shutdown":  # startup: nothing to prepare
                await send({"type": "lifespan.startup.complete"})
            log.info("seen %s; keys applied twice: %d", json.dumps(service.seen, sort_keys=True),
                     len(service.audit()["twice"]))
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        token = next((v.decode() for k, v in scope["headers"] if k.lower() == b"idempotency-key"), None)
        try:
            status, doc, replayed = await service.handle(scope["method"], scope["path"], token, body)
        except asyncio.CancelledError:  # the server is stopping: a request still held up ends unanswered
            return
        payload = json.dumps(doc).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if replayed:
            headers.append((b"idempotent-replayed", b"true"))
        # the client may have given up long ago: uvicorn then drops what is sent, the state stays as it is
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--slow", type=float, default=Knobs.slow)
    p.add_argument("--slow-ack", type=float, default=Knobs.slow_ack)
    p.add_argument("--stuck", type=float, default=Knobs.stuck)
    p.add_argument("--delay", type=float, nargs=2, default=Knobs.delay, metavar=("MIN", "MAX"))
    p.add_argument("--stuck-for", type=float, default=Knobs.stuck_for)
    p.add_argument("--double-apply", action="store_true", help="the bug: a repeat in progress is applied too")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    service = Service(Knobs(slow=a.slow, slow_ack=a.slow_ack, stuck=a.stuck, delay=(a.delay[0], a.delay[1]),
                            stuck_for=a.stuck_for, seed=a.seed, double_apply=a.double_apply))
    # a stuck request sleeps past the run: do not wait for it at shutdown
    uvicorn.run(make_app(service), host="127.0.0.1", port=a.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
