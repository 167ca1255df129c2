"""The PostgreSQL store: one statement per op (one transaction with an idempotency key), on a pool."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.service.stores import STORE_ROUND_TRIP, Fenced, SoldOut

SCHEMA_LOCK = 0x636F756E74  # an advisory lock's key, held while the schema is created ("count")


class PostgresStore:
    """`UPDATE ... SET value = value + $1 ... RETURNING value` on a connection pool."""

    def __init__(self, dsn: str, *, unsafe: bool = False, pool_size: int = 20) -> None:
        self._dsn = dsn
        self._unsafe = unsafe
        self._size = pool_size
        self._pool: Any = None

    async def start(self) -> None:
        import asyncpg

        self._pool = await asyncpg.create_pool(self._dsn, min_size=2, max_size=self._size)
        async with self._pool.acquire() as c, c.transaction():
            # `CREATE TABLE IF NOT EXISTS` is not safe concurrently (two creators collide on pg_type's unique
            # index): the service's workers start together, so the first to take the lock creates the schema
            await c.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await c.execute("CREATE TABLE IF NOT EXISTS counters (key text PRIMARY KEY, value bigint NOT NULL)")
            # an idempotency key's row: the value its op left, or NULL when fenced
            await c.execute("CREATE TABLE IF NOT EXISTS idempotency (token text PRIMARY KEY, value bigint)")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def set(self, key: str, value: int) -> int:
        return int(await self._pool.fetchval(
            "INSERT INTO counters (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value RETURNING value", key, value))

    async def add(self, key: str, amount: int) -> int:
        if self._unsafe:
            # deliberately unsafe: read, compute in the service, write back -- no transaction, no lock
            current = await self._pool.fetchval("SELECT value FROM counters WHERE key = $1", key) or 0
            await asyncio.sleep(STORE_ROUND_TRIP)
            return await self.set(key, int(current) + amount)
        return int(await self._pool.fetchval(
            "INSERT INTO counters (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = counters.value + EXCLUDED.value RETURNING value", key, amount))

    async def take(self, key: str) -> int:
        if self._unsafe:
            current = await self._pool.fetchval("SELECT value FROM counters WHERE key = $1", key) or 0
            if current <= 0:
                raise SoldOut
            await asyncio.sleep(STORE_ROUND_TRIP)
            return int(await self._pool.fetchval(
                "UPDATE counters SET value = value - 1 WHERE key = $1 RETURNING value", key))
        value = await self._pool.fetchval(
            "UPDATE counters SET value = value - 1 WHERE key = $1 AND value > 0 RETURNING value", key)
        if value is None:
            raise SoldOut
        return int(value)

    async def get(self, key: str) -> int | None:
        value = await self._pool.fetchval("SELECT value FROM counters WHERE key = $1", key)
        return None if value is None else int(value)


    async def _once(self, token: str, apply: str, *args: Any) -> tuple[int, bool]:
        """The key's row and the op in one transaction: a repeat waits for the first, then replays it."""
        async with self._pool.acquire() as c, c.transaction():
            if not await c.fetchval("INSERT INTO idempotency (token) VALUES ($1) ON CONFLICT DO NOTHING "
                                    "RETURNING true", token):
                value = await c.fetchval("SELECT value FROM idempotency WHERE token = $1", token)
                if value is None:
                    raise Fenced
                return int(value), True
            value = await c.fetchval(apply, *args)
            if value is None:
                raise SoldOut  # the transaction rolls back: the key stays free, as nothing was applied
            await c.execute("UPDATE idempotency SET value = $2 WHERE token = $1", token, value)
            return int(value), False

    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]:
        return await self._once(token, "INSERT INTO counters (key, value) VALUES ($1, $2) ON CONFLICT (key) DO "
                                       "UPDATE SET value = counters.value + EXCLUDED.value RETURNING value",
                                key, amount)

    async def take_once(self, key: str, token: str) -> tuple[int, bool]:
        return await self._once(token, "UPDATE counters SET value = value - 1 WHERE key = $1 AND value > 0 "
                                       "RETURNING value", key)

    async def resolve(self, token: str) -> int | None:
        async with self._pool.acquire() as c, c.transaction():
            if await c.fetchval("INSERT INTO idempotency (token) VALUES ($1) ON CONFLICT DO NOTHING "
                                "RETURNING true", token):
                return None  # fenced: its op, arriving late, is refused
            value = await c.fetchval("SELECT value FROM idempotency WHERE token = $1", token)
            return None if value is None else int(value)
