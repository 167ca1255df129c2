"""Idempotency keys in every store and variant, on real servers: two requests with one key at once.

The IETF Idempotency-Key draft: a repeat of a key whose first request is still in progress answers
409 (neither a second application nor a wait), a repeat after it replays the first answer, and a
resolve of a key in progress fences it so that "not applied" stays true. The in-progress window is
held open deterministically by ``Hooked``, a test's wrapper around the store under test: the
service's own code has no hook. Requests go through the service's ASGI app in this process; the
stores talk to real Redis and PostgreSQL servers (and dynalite, which refuses keys).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from harness.service.app import make_app
from harness.service.stores import Store, make_store, once
from harness.stack.redis import RedisServer
from harness.stack.service import ReferenceService

pytestmark = pytest.mark.integration

STORES = ["memory", "redis", "postgres"]
VARIANTS = ["atomic", "unsafe"]
OPS = {"increment": 1, "decrement-if-positive": -1}  # route -> what it does to the counter
IN_PROGRESS = "a request with this idempotency key is still in progress"
FENCED = "this idempotency key was resolved as not applied"

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str | None]]:
    """A Redis and a PostgreSQL server for the whole module (every test uses keys of its own)."""
    from harness.stack.postgres import PostgresServer

    with RedisServer() as redis, PostgresServer() as pg:
        yield {"memory": None, "redis": redis.url, "postgres": pg.url}


class Hooked:
    """The store under test, with the test's hooks around a keyed op's apply step: ``before`` runs
    once the key is claimed (in progress, nothing applied yet), ``after`` once the op applied (the
    key done, its answer not yet given). Everything else is the store's own."""

    def __init__(self, inner: Store, *, before: Callable[[], Awaitable[None]] | None = None,
                 after: Callable[[], Awaitable[None]] | None = None) -> None:
        self._inner, self._before, self._after = inner, before, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _apply(self, apply: Callable[[], Awaitable[int]]) -> int:
        if self._before is not None:
            await self._before()
        value = await apply()
        if self._after is not None:
            await self._after()
        return value

    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]:
        return await once(cast(Store, self), token,
                          lambda claim: self._apply(lambda: self._inner.add_claimed(key, amount, claim)))

    async def take_once(self, key: str, token: str) -> tuple[int, bool]:
        return await once(cast(Store, self), token,
                          lambda claim: self._apply(lambda: self._inner.take_claimed(key, claim)))


class Gate:
    """Holds the first request that reaches it until the test opens it; later ones pass."""

    def __init__(self) -> None:
        self.reached, self.opened = asyncio.Event(), asyncio.Event()

    async def __call__(self) -> None:
        if not self.reached.is_set():
            self.reached.set()
            await self.opened.wait()


async def call(app: App, method: str, path: str, *, body: bytes = b"", token: str | None = None
               ) -> tuple[int, dict[str, Any], bool]:
    """One request through the ASGI app: (status, JSON body, whether it says Idempotent-Replayed)."""
    headers = [(b"content-type", b"application/json")]
    if token is not None:
        headers.append((b"idempotency-key", token.encode()))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path, "headers": headers}, receive, send)
    start, payload = sent
    return start["status"], json.loads(payload["body"]), (b"idempotent-replayed", b"true") in start["headers"]


def op(app: App, route: str, key: str, token: str) -> Awaitable[tuple[int, dict[str, Any], bool]]:
    return call(app, "POST", f"/counters/{key}/{route}", body=b'{"amount": 1}', token=token)


def resolve(app: App, token: str) -> Awaitable[tuple[int, dict[str, Any], bool]]:
    return call(app, "POST", f"/idempotency/{token}/resolve")


def with_store(kind: str, url: str | None, variant: str, test: Callable[[Store], Awaitable[None]]) -> None:
    async def go() -> None:
        store = make_store(kind, url=url, unsafe=variant == "unsafe")
        await store.start()
        try:
            await test(store)
        finally:
            await store.close()

    asyncio.run(go())


def fresh() -> tuple[str, str]:
    """A counter and an idempotency key no other test uses."""
    tag = uuid.uuid4().hex[:12]
    return f"c-{tag}", f"t-{tag}"


@pytest.mark.parametrize("route", list(OPS))
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", STORES)
def test_a_repeat_while_the_first_is_in_progress_answers_409_and_the_op_applies_once(urls, kind, variant, route):
    key, token = fresh()
    after = 5 + OPS[route]

    async def test(store: Store) -> None:
        gate = Gate()
        app = make_app(cast(Store, Hooked(store, before=gate)))
        await store.set(key, 5)
        first = asyncio.create_task(op(app, route, key, token))
        await asyncio.wait_for(gate.reached.wait(), 10)  # the key is in progress; its op not applied
        assert await op(app, route, key, token) == (409, {"error": IN_PROGRESS}, False)
        assert await store.get(key) == 5
        gate.opened.set()
        assert await first == (200, {"value": after}, False)
        assert await op(app, route, key, token) == (200, {"value": after}, True)  # replayed, not applied
        assert await resolve(app, token) == (200, {"value": after}, False)
        assert await store.get(key) == after

    with_store(kind, urls[kind], variant, test)


@pytest.mark.parametrize("route", list(OPS))
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", STORES)
def test_a_resolve_while_the_op_is_in_progress_fences_it(urls, kind, variant, route):
    key, token = fresh()

    async def test(store: Store) -> None:
        gate = Gate()
        app = make_app(cast(Store, Hooked(store, before=gate)))
        await store.set(key, 5)
        first = asyncio.create_task(op(app, route, key, token))
        await asyncio.wait_for(gate.reached.wait(), 10)
        assert (await resolve(app, token))[0] == 404  # not applied: true, because now it never will be
        gate.opened.set()
        assert await first == (409, {"error": FENCED}, False)
        assert await store.get(key) == 5
        assert (await resolve(app, token))[0] == 404
        assert await op(app, route, key, token) == (409, {"error": FENCED}, False)
        assert await store.get(key) == 5

    with_store(kind, urls[kind], variant, test)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", STORES)
def test_many_requests_with_one_key_at_once_apply_it_once(urls, kind, variant):
    """No hook: the real race (round trips to the store, the unsafe variant's read-modify-write)."""
    key, token = fresh()

    async def test(store: Store) -> None:
        app = make_app(store)
        await store.set(key, 0)
        answers = await asyncio.gather(*(op(app, "increment", key, token) for _ in range(20)))
        assert await store.get(key) == 1
        applied = (200, {"value": 1}, False)
        assert answers.count(applied) == 1
        assert all(a in (applied, (200, {"value": 1}, True), (409, {"error": IN_PROGRESS}, False)) for a in answers)

    with_store(kind, urls[kind], variant, test)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", STORES)
def test_a_key_whose_op_did_not_apply_is_free_and_one_whose_op_may_have_is_never_applied_again(urls, kind, variant):
    key, token = fresh()

    async def lost_before() -> None:
        raise ConnectionError("the store went away before the op was sent")

    async def lost_after() -> None:
        raise ConnectionError("the op applied; its answer was lost")

    async def test(store: Store) -> None:
        app = make_app(store)
        await store.set(key, 0)
        assert await op(app, "decrement-if-positive", key, token) == (409, {"error": "sold out"}, False)
        await store.set(key, 1)
        assert await op(app, "decrement-if-positive", key, token) == (200, {"value": 0}, False)  # free: applied
        status, doc, _ = await op(make_app(cast(Store, Hooked(store, before=lost_before))), "increment", key,
                                  token + "-b")
        assert status == 503 and "store error" in doc["error"]
        assert await op(app, "increment", key, token + "-b") == (200, {"value": 1}, False)  # free: applied
        status, _, _ = await op(make_app(cast(Store, Hooked(store, after=lost_after))), "increment", key,
                                token + "-a")
        assert status == 503
        assert await op(app, "increment", key, token + "-a") == (200, {"value": 2}, True)  # applied: replayed
        assert await store.get(key) == 2

    with_store(kind, urls[kind], variant, test)


def test_redis_keeps_idempotency_records_without_expiry(urls):
    """A fence that expired would let a late op apply after "not applied"; a done record that
    expired would turn "applied" into "not applied" (they used to expire after a day)."""
    import redis

    key, token = fresh()

    async def test(store: Store) -> None:
        app = make_app(store)
        assert (await op(app, "increment", key, token + "-done"))[0] == 200
        assert (await resolve(app, token + "-fenced"))[0] == 404
        gate = Gate()
        first = asyncio.create_task(op(make_app(cast(Store, Hooked(store, before=gate))), "increment", key,
                                       token + "-claimed"))
        await asyncio.wait_for(gate.reached.wait(), 10)
        client = redis.Redis.from_url(cast(str, urls["redis"]))
        try:
            assert [client.ttl(f"idem:{token}-{s}") for s in ("done", "fenced", "claimed")] == [-1, -1, -1]
        finally:
            client.close()
        gate.opened.set()
        assert (await first)[0] == 200

    with_store("redis", urls["redis"], "atomic", test)


@pytest.mark.parametrize("variant", VARIANTS)
def test_dynamodb_refuses_idempotency_keys_without_applying(dynalite_url, variant):
    key, token = fresh()

    async def test(store: Store) -> None:
        app = make_app(store)
        await store.set(key, 5)
        for route in OPS:
            status, doc, _ = await op(app, route, key, token)
            assert status == 501 and "does not support idempotency keys" in doc["error"]
        assert (await resolve(app, token))[0] == 501  # a lookup that cannot tell never says "not applied"
        assert await store.get(key) == 5

    with_store("dynamodb", dynalite_url, variant, test)


def _http(url: str, method: str = "POST", token: str | None = None) -> tuple[int, dict[str, Any], bool]:
    """(status, JSON body, whether it says Idempotent-Replayed)"""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json", **({"Idempotency-Key": token} if token else {})}
    req = urllib.request.Request(url, data=b'{"amount": 1}' if method == "POST" else None, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read()), r.headers.get("Idempotent-Replayed") == "true"
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), False


@pytest.mark.parametrize(("kind", "variant", "workers"), [("memory", "unsafe", 1), ("redis", "atomic", 2),
                                                          ("redis", "unsafe", 2), ("postgres", "atomic", 2),
                                                          ("postgres", "unsafe", 2)])
def test_the_served_service_applies_one_key_once_across_worker_processes(urls, kind, variant, workers):
    """The deployed service (uvicorn; worker processes sharing the store), 16 requests at once, four
    times. Whether they overlap is up to the machine (the tests above hold the window open); what
    must hold either way is one application per key."""
    with ReferenceService(variant=variant, store=kind, store_url=urls[kind], workers=workers) as svc:
        for _ in range(4):
            key, token = fresh()
            url = f"{svc.url}/counters/{key}/increment"
            with ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(_http, [url] * 16, ["POST"] * 16, [token] * 16))
            # one applied; the unsafe variant's lost updates would hide a second application in the value
            applied = (200, {"value": 1}, False)
            assert answers.count(applied) == 1, answers
            assert all(a in (applied, (200, {"value": 1}, True), (409, {"error": IN_PROGRESS}, False))
                       for a in answers)
            assert _http(f"{svc.url}/counters/{key}", "GET") == (200, {"value": 1}, False)
            assert _http(f"{svc.url}/idempotency/{token}/resolve") == applied
