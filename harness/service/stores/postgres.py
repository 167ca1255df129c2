"""The PostgreSQL store: one statement per op (one transaction to apply an op under an idempotency key)."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.service.stores import STORE_ROUND_TRIP, Claim, Fenced, InProgress, SoldOut, once

SCHEMA_LOCK = 0x636F756E74  # an advisory lock's key, held while the schema is created ("count")


ADD_SQL = ("INSERT INTO counters (key, value) VALUES ($1, $2) "
           "ON CONFLICT (key) DO UPDATE SET value = counters.value + EXCLUDED.value RETURNING value")
SET_SQL = ("INSERT INTO counters (key, value) VALUES ($1, $2) "
           "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value RETURNING value")
TAKE_SQL = "UPDATE counters SET value = value - 1 WHERE key = $1 AND value > 0 RETURNING value"
DECR_SQL = "UPDATE counters SET value = value - 1 WHERE key = $1 RETURNING value"  # unsafe: checked before

# An idempotency key's row: `claim` set while in progress (the claiming request's nonce); then
# `value`, what its op left (done), or neither (fenced). A repeat's upsert changes nothing
# (`SET claim = i.claim`): it is there to return the row as it is, in one race-free statement.
CLAIM_SQL = ("INSERT INTO idempotency AS i (token, claim) VALUES ($1, $2) "
             "ON CONFLICT (token) DO UPDATE SET claim = i.claim RETURNING i.claim, i.value")
# the op's value recorded only while its claim is in place: no row means a resolve fenced the key
DONE_SQL = "UPDATE idempotency SET claim = NULL, value = $3 WHERE token = $1 AND claim = $2 RETURNING true"
RELEASE_SQL = "DELETE FROM idempotency WHERE token = $1 AND claim = $2"
# fences a key absent (inserted with neither) or in progress (its claim dropped); a done key keeps its value
RESOLVE_SQL = ("INSERT INTO idempotency AS i (token) VALUES ($1) "
               "ON CONFLICT (token) DO UPDATE SET claim = NULL RETURNING i.value")


class PostgresStore:
    """`UPDATE ... SET value = value + $1 ... RETURNING value` on a connection pool.

    With an idempotency key: one statement claims the key, then one transaction applies the op and
    records its value only if the claim is still in place -- else it rolls back, op and all. Row
    locks order it against a resolve: whichever commits first wins, the other sees its result.
    Idempotency rows are never deleted but by their own claimant's release: they live as long as
    the database does."""

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
            await c.execute("CREATE TABLE IF NOT EXISTS idempotency (token text PRIMARY KEY, value bigint, claim text)")
            # a table an earlier version of the service created has no claims yet
            await c.execute("ALTER TABLE idempotency ADD COLUMN IF NOT EXISTS claim text")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def set(self, key: str, value: int) -> int:
        return int(await self._pool.fetchval(SET_SQL, key, value))

    async def get(self, key: str) -> int | None:
        value = await self._pool.fetchval("SELECT value FROM counters WHERE key = $1", key)
        return None if value is None else int(value)

    async def add(self, key: str, amount: int) -> int:
        if self._unsafe:  # deliberately unsafe: read, compute in the service, write back -- no transaction, no lock
            return await self.set(key, await self._read_then_work(key) + amount)
        return int(await self._pool.fetchval(ADD_SQL, key, amount))

    async def take(self, key: str) -> int:
        if self._unsafe:
            await self._check_then_work(key)
            return int(await self._pool.fetchval(DECR_SQL, key))
        value = await self._pool.fetchval(TAKE_SQL, key)
        if value is None:
            raise SoldOut
        return int(value)

    async def _read_then_work(self, key: str) -> int:
        """The unsafe increment's read, and the app's work after it: others write meanwhile."""
        current = await self._pool.fetchval("SELECT value FROM counters WHERE key = $1", key) or 0
        await asyncio.sleep(STORE_ROUND_TRIP)
        return int(current)

    async def _check_then_work(self, key: str) -> None:
        """The unsafe reservation's check, and the app's work after it: the seat may go meanwhile."""
        if (await self._pool.fetchval("SELECT value FROM counters WHERE key = $1", key) or 0) <= 0:
            raise SoldOut
        await asyncio.sleep(STORE_ROUND_TRIP)

    # idempotency keys (the state machine in harness.service.stores)

    async def claim(self, token: str) -> Claim | int:
        claim = Claim(token)
        row = await self._pool.fetchrow(CLAIM_SQL, token, claim.nonce)
        if row["claim"] == claim.nonce:
            return claim
        if row["claim"] is not None:
            raise InProgress
        if row["value"] is None:
            raise Fenced
        return int(row["value"])

    async def _apply_claimed(self, claim: Claim, apply: str, *args: Any) -> int:
        async with self._pool.acquire() as c, c.transaction():
            value = await c.fetchval(apply, *args)
            if value is None:
                raise SoldOut  # rolls back; nothing was applied (and `once` releases the claim)
            if not await c.fetchval(DONE_SQL, claim.token, claim.nonce, value):
                raise Fenced  # a resolve fenced the key meanwhile: rolling back undoes the op
            return int(value)

    async def add_claimed(self, key: str, amount: int, claim: Claim) -> int:
        if self._unsafe:  # read-modify-write of the counter; the key's check and record stay one transaction
            return await self._apply_claimed(claim, SET_SQL, key, await self._read_then_work(key) + amount)
        return await self._apply_claimed(claim, ADD_SQL, key, amount)

    async def take_claimed(self, key: str, claim: Claim) -> int:
        if self._unsafe:  # check-then-act on the counter; the key's check and record stay one transaction
            await self._check_then_work(key)
            return await self._apply_claimed(claim, DECR_SQL, key)
        return await self._apply_claimed(claim, TAKE_SQL, key)

    async def release(self, claim: Claim) -> None:
        await self._pool.execute(RELEASE_SQL, claim.token, claim.nonce)

    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]:
        return await once(self, token, lambda claim: self.add_claimed(key, amount, claim))

    async def take_once(self, key: str, token: str) -> tuple[int, bool]:
        return await once(self, token, lambda claim: self.take_claimed(key, claim))

    async def resolve(self, token: str) -> int | None:
        """A key absent or in progress is fenced in one statement; the op in progress then finds
        its claim gone when it records its value, and rolls back: "not applied" is true and final
        at once. (Waiting for the op instead could wait forever on a service that died holding the
        claim.) If the op's transaction holds the row, this waits for its commit and answers it."""
        value = await self._pool.fetchval(RESOLVE_SQL, token)
        return None if value is None else int(value)
