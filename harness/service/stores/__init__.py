"""The reference service's stores. Each store has an atomic implementation and an
explicitly unsafe one (read-modify-write for increments, check-then-act for seats),
so a plausible-looking bug can be watched losing updates under load.

    memory.py    one process; the event loop serialises every update
    redis.py     INCRBY, Lua scripts
    postgres.py  one statement (or one transaction with an idempotency key) per op
    dynamodb.py  UpdateItem ADD, ConditionExpression
"""

from __future__ import annotations

from typing import Protocol

# what the unsafe variants wait between their read and their write: the app logic a real service runs
# there (validation, logging, a call elsewhere). It widens the race window to what production sees.
STORE_ROUND_TRIP = 0.001


IDEMPOTENCY_TTL_S = 86400  # how long a store remembers an idempotency key


class SoldOut(Exception):
    pass


class Fenced(Exception):
    """The idempotency key was looked up before its op arrived: that op is never applied."""


class NotSupported(Exception):
    pass


class Store(Protocol):
    """The counter operations, and the same with an idempotency key: ``add_once`` and ``take_once``
    apply an op once per key and answer a repeated key with the first result (``replayed``);
    ``resolve`` says whether a key's op was applied -- and fences a key not seen yet, so that it
    never will be (the answer "not applied" is final)."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def set(self, key: str, value: int) -> int: ...
    async def add(self, key: str, amount: int) -> int: ...
    async def take(self, key: str) -> int: ...
    async def get(self, key: str) -> int | None: ...
    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]: ...
    async def take_once(self, key: str, token: str) -> tuple[int, bool]: ...
    async def resolve(self, token: str) -> int | None: ...



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
