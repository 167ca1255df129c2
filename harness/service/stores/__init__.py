"""The reference service's stores. Each store has an atomic implementation and an
explicitly unsafe one (read-modify-write for increments, check-then-act for seats),
so a plausible-looking bug can be watched losing updates under load.

    memory.py    one process; the event loop serialises every update
    redis.py     INCRBY, Lua scripts
    postgres.py  one statement per op (one transaction to apply an op under an idempotency key)
    dynamodb.py  UpdateItem ADD, ConditionExpression (no idempotency keys: 501)

Idempotency keys (the IETF Idempotency-Key draft) are atomic in every store and both variants:
the unsafe variant is unsafe about the counter's read-modify-write between different keys' ops,
never about applying one key's op twice. A key's state moves

    absent --claim--> in progress --apply--> done(value)   a repeat replays the first answer (200)
    in progress --release--> absent                        the op failed and did not apply: a retry may
    absent | in progress --resolve--> fenced               "not applied", for good (a late op gets 409)

and a repeat of a key in progress answers 409 (InProgress), neither waiting nor applying. Each
store applies a claimed op and records its value as **one atomic step that holds only
while the claim is still in place**. That one rule makes the rest safe: a resolve replaces a
claim with the fence, so the op in progress can no longer apply; a release removes only its own
claim, so a claim still in place proves that its op has not applied. Records live as long as the
store's data (no expiry): a fence that expired would let a late op apply after "not applied".
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

# what the unsafe variants wait between their read and their write: the app logic a real service runs
# there (validation, logging, a call elsewhere). It widens the race window to what production sees.
STORE_ROUND_TRIP = 0.001

log = logging.getLogger("counterbench.service")


class SoldOut(Exception):
    pass


class Fenced(Exception):
    """The idempotency key was looked up before its op was applied: that op is never applied."""


class InProgress(Exception):
    """A request with this idempotency key is still being processed (the draft's 409 Conflict)."""


class NotSupported(Exception):
    pass


@dataclass(frozen=True)
class Claim:
    """An idempotency key marked in progress by one request. ``nonce`` tells this claim from any
    other of the same key (after a release, a retry claims it anew): a store applies the op only
    while this very claim is still the key's state."""

    token: str
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex)


class Store(Protocol):
    """The counter operations, and idempotency keys as the primitives of the state machine above:
    ``claim`` marks a key in progress (or answers its first result: an int, to be replayed; or
    raises Fenced / InProgress), ``add_claimed`` / ``take_claimed`` apply the op and record its
    value as one step while the claim holds (else Fenced), ``release`` drops a claim that is still
    in place, and ``resolve`` says whether a key's op was applied -- fencing a key absent or in
    progress, so that the answer "not applied" is final. ``add_once`` / ``take_once`` are
    ``once`` over these."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def set(self, key: str, value: int) -> int: ...
    async def add(self, key: str, amount: int) -> int: ...
    async def take(self, key: str) -> int: ...
    async def get(self, key: str) -> int | None: ...
    async def claim(self, token: str) -> Claim | int: ...
    async def add_claimed(self, key: str, amount: int, claim: Claim) -> int: ...
    async def take_claimed(self, key: str, claim: Claim) -> int: ...
    async def release(self, claim: Claim) -> None: ...
    async def resolve(self, token: str) -> int | None: ...
    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]: ...
    async def take_once(self, key: str, token: str) -> tuple[int, bool]: ...


async def once(store: Store, token: str, apply: Callable[[Claim], Awaitable[int]]) -> tuple[int, bool]:
    """An op applied once per idempotency key: (the value it left, whether that is a replay).

    When applying fails -- sold out, a store error, a cancelled request -- the claim is released
    if it is still in place, so that a retry of the key may apply the op. That is safe whatever
    the failure was, even an error after the op was sent: applying replaces the claim in the same
    atomic step, so a claim still in place proves the op did not apply, and an op still on its way
    finds its claim gone and is refused. If the release fails too, the key stays in progress until
    a resolve decides (fences it, or finds it applied)."""
    claim = await store.claim(token)
    if not isinstance(claim, Claim):
        return claim, True
    try:
        return await apply(claim), False
    except Fenced:
        raise  # the claim is gone already: a resolve replaced it
    except BaseException:
        await _release(store, claim)
        raise


async def _release(store: Store, claim: Claim) -> None:
    try:
        await store.release(claim)
    except Exception as e:  # the request's own error is the one to answer; the key stays in progress
        log.warning("releasing idempotency key %s: %s: %s", claim.token, type(e).__name__, e)


def make_store(kind: str, *, url: str | None, unsafe: bool) -> Store:
    from harness.service.stores.dynamodb import DynamoStore
    from harness.service.stores.memory import MemoryStore
    from harness.service.stores.postgres import PostgresStore
    from harness.service.stores.redis import RedisStore

    if kind == "memory":
        return MemoryStore(unsafe=unsafe)
    if kind == "redis":
        return RedisStore(url or "redis://127.0.0.1:6379/0", unsafe=unsafe)
    if kind == "postgres":
        return PostgresStore(url or "postgresql://postgres@127.0.0.1:5432/postgres", unsafe=unsafe)
    if kind == "dynamodb":
        return DynamoStore(url, unsafe=unsafe)
    raise ValueError(f"unknown store {kind!r}")
