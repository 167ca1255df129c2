"""The redis store: INCRBY, and Lua scripts where an op must check and act as one step."""

from __future__ import annotations

import asyncio

from harness.service.stores import IDEMPOTENCY_TTL_S, STORE_ROUND_TRIP, Fenced, SoldOut

TAKE_LUA = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then return redis.call('DECR', KEYS[1]) end
return redis.error_reply('SOLDOUT no seats left')
"""


# idempotency in one script each: a key is checked and its op applied as one step
ADD_ONCE_LUA = """
local seen = redis.call('GET', KEYS[2])
if seen == 'fenced' then return redis.error_reply('FENCED') end
if seen then return {1, tonumber(seen)} end
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], v, 'EX', ARGV[2])
return {0, v}
"""
TAKE_ONCE_LUA = """
local seen = redis.call('GET', KEYS[2])
if seen == 'fenced' then return redis.error_reply('FENCED') end
if seen then return {1, tonumber(seen)} end
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v <= 0 then return redis.error_reply('SOLDOUT no seats left') end
v = redis.call('DECR', KEYS[1])
redis.call('SET', KEYS[2], v, 'EX', ARGV[1])
return {0, v}
"""
RESOLVE_LUA = """
local seen = redis.call('GET', KEYS[1])
if seen == 'fenced' then return false end
if seen then return tonumber(seen) end
redis.call('SET', KEYS[1], 'fenced', 'EX', ARGV[1])
return false
"""


class RedisStore:
    def __init__(self, url: str, *, unsafe: bool = False) -> None:
        import redis.asyncio

        # no retries: a retried INCRBY could be applied twice
        self._r = redis.asyncio.Redis.from_url(url, retry_on_timeout=False, retry=None, socket_timeout=5,
                                               max_connections=256)
        self._unsafe = unsafe

    async def start(self) -> None:
        await self._r.ping()

    async def close(self) -> None:
        await self._r.aclose()

    async def set(self, key: str, value: int) -> int:
        await self._r.set(key, value)
        return value

    async def add(self, key: str, amount: int) -> int:
        if self._unsafe:
            current = int(await self._r.get(key) or 0)
            await asyncio.sleep(STORE_ROUND_TRIP)
            await self._r.set(key, current + amount)
            return current + amount
        return int(await self._r.incrby(key, amount))

    async def take(self, key: str) -> int:
        import redis

        if self._unsafe:
            if int(await self._r.get(key) or 0) <= 0:
                raise SoldOut
            await asyncio.sleep(STORE_ROUND_TRIP)
            return int(await self._r.decr(key))
        try:
            return int(await self._r.eval(TAKE_LUA, 1, key))
        except redis.ResponseError as e:
            if str(e).startswith("SOLDOUT") or "SOLDOUT" in str(e):
                raise SoldOut from e
            raise

    async def get(self, key: str) -> int | None:
        raw = await self._r.get(key)
        return None if raw is None else int(raw)

    async def _once(self, script: str, keys: list[str], args: list[int]) -> tuple[int, bool]:
        import redis

        try:
            replayed, value = await self._r.eval(script, len(keys), *keys, *args)
        except redis.ResponseError as e:
            if str(e).startswith("FENCED"):
                raise Fenced from e
            if "SOLDOUT" in str(e):
                raise SoldOut from e
            raise
        return int(value), bool(replayed)

    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]:
        return await self._once(ADD_ONCE_LUA, [key, f"idem:{token}"], [amount, IDEMPOTENCY_TTL_S])

    async def take_once(self, key: str, token: str) -> tuple[int, bool]:
        return await self._once(TAKE_ONCE_LUA, [key, f"idem:{token}"], [IDEMPOTENCY_TTL_S])

    async def resolve(self, token: str) -> int | None:
        value = await self._r.eval(RESOLVE_LUA, 1, f"idem:{token}", IDEMPOTENCY_TTL_S)
        return None if value is None else int(value)
