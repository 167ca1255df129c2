"""The redis store: INCRBY, and Lua scripts where an op must check and act as one step."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.service.stores import STORE_ROUND_TRIP, Claim, Fenced, InProgress, SoldOut, once

TAKE_LUA = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then return redis.call('DECR', KEYS[1]) end
return redis.error_reply('SOLDOUT no seats left')
"""

# An idempotency key's record, `idem:<token>`: 'claim:<nonce>' (in progress), the value its op left
# (done), or 'fenced'. Records are set without expiry: a fence must outlive every op that could
# still arrive with its key, and a done record every lookup of it.
CLAIM_LUA = """
local state = redis.call('GET', KEYS[1])
if not state then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
if state == 'fenced' then return redis.error_reply('FENCED') end
if string.sub(state, 1, 6) == 'claim:' then return redis.error_reply('INPROGRESS') end
return state
"""
# Applies a claimed op and records its value in one step, only while the claim is in place (a
# resolve may have fenced it). Values travel as strings: Lua numbers are doubles, exact only to 2^53.
# KEYS: counter, record; ARGV: claim, op, operand.
APPLY_CLAIMED_LUA = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('FENCED') end
if ARGV[2] == 'incrby' then
  redis.call('INCRBY', KEYS[1], ARGV[3])
elseif ARGV[2] == 'take' then
  if tonumber(redis.call('GET', KEYS[1]) or '0') <= 0 then return redis.error_reply('SOLDOUT no seats left') end
  redis.call('DECR', KEYS[1])
elseif ARGV[2] == 'decr' then
  redis.call('DECR', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
local v = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[2], v)
return v
"""
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""
# a key absent or in progress is fenced: APPLY_CLAIMED_LUA then refuses its op
RESOLVE_LUA = """
local state = redis.call('GET', KEYS[1])
if state and state ~= 'fenced' and string.sub(state, 1, 6) ~= 'claim:' then return state end
redis.call('SET', KEYS[1], 'fenced')
return false
"""

# a script's error reply, as the exception the app answers
ERRORS: dict[str, type[Exception]] = {"FENCED": Fenced, "INPROGRESS": InProgress, "SOLDOUT": SoldOut}


class RedisStore:
    """INCRBY and Lua scripts. With an idempotency key, two round trips: claim the key, then apply
    the op and record its value (one script each); without one, one round trip (safe variant).

    Idempotency records carry no expiry: they live as long as the Redis data does (the harness's
    servers are test stores, started empty). They are lost only with the data itself -- a restart
    without persistence, a failover to a replica that had not received them, eviction under a
    ``maxmemory`` policy -- and each of those loses counter updates as well."""

    def __init__(self, url: str, *, unsafe: bool = False) -> None:
        import redis.asyncio

        # no retries: a retried INCRBY could be applied twice
        self._r = redis.asyncio.Redis.from_url(url, retry_on_timeout=False, retry=None, socket_timeout=5,
                                               max_connections=256)
        self._unsafe = unsafe
        # EVALSHA, loading the script on first use: the scripts' text does not travel with every op
        self._take, self._claim, self._apply, self._release, self._resolve = (
            self._r.register_script(s) for s in (TAKE_LUA, CLAIM_LUA, APPLY_CLAIMED_LUA, RELEASE_LUA, RESOLVE_LUA))

    async def start(self) -> None:
        await self._r.ping()

    async def close(self) -> None:
        await self._r.aclose()

    async def set(self, key: str, value: int) -> int:
        await self._r.set(key, value)
        return value

    async def get(self, key: str) -> int | None:
        raw = await self._r.get(key)
        return None if raw is None else int(raw)

    async def add(self, key: str, amount: int) -> int:
        if self._unsafe:
            value = await self._read_then_work(key) + amount
            await self._r.set(key, value)
            return value
        return int(await self._r.incrby(key, amount))

    async def take(self, key: str) -> int:
        if self._unsafe:
            await self._check_then_work(key)
            return int(await self._r.decr(key))
        return int(await _script(self._take(keys=[key])))

    async def _read_then_work(self, key: str) -> int:
        """The unsafe increment's read, and the app's work after it: others write meanwhile."""
        current = int(await self._r.get(key) or 0)
        await asyncio.sleep(STORE_ROUND_TRIP)
        return current

    async def _check_then_work(self, key: str) -> None:
        """The unsafe reservation's check, and the app's work after it: the seat may go meanwhile."""
        if int(await self._r.get(key) or 0) <= 0:
            raise SoldOut
        await asyncio.sleep(STORE_ROUND_TRIP)

    # idempotency keys (the state machine in harness.service.stores)

    @staticmethod
    def _record(token: str) -> str:
        return f"idem:{token}"

    async def claim(self, token: str) -> Claim | int:
        claim = Claim(token)
        mark = f"claim:{claim.nonce}"
        state = await _script(self._claim(keys=[self._record(token)], args=[mark]))
        return claim if state == mark.encode() else int(state)

    async def _apply_claimed(self, key: str, claim: Claim, op: str, operand: int = 0) -> int:
        return int(await _script(self._apply(keys=[key, self._record(claim.token)],
                                             args=[f"claim:{claim.nonce}", op, operand])))

    async def add_claimed(self, key: str, amount: int, claim: Claim) -> int:
        if self._unsafe:  # read-modify-write of the counter; the key's check and record stay one step
            return await self._apply_claimed(key, claim, "set", await self._read_then_work(key) + amount)
        return await self._apply_claimed(key, claim, "incrby", amount)

    async def take_claimed(self, key: str, claim: Claim) -> int:
        if self._unsafe:  # check-then-act on the counter; the key's check and record stay one step
            await self._check_then_work(key)
            return await self._apply_claimed(key, claim, "decr")
        return await self._apply_claimed(key, claim, "take")

    async def release(self, claim: Claim) -> None:
        await self._release(keys=[self._record(claim.token)], args=[f"claim:{claim.nonce}"])

    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]:
        return await once(self, token, lambda claim: self.add_claimed(key, amount, claim))

    async def take_once(self, key: str, token: str) -> tuple[int, bool]:
        return await once(self, token, lambda claim: self.take_claimed(key, claim))

    async def resolve(self, token: str) -> int | None:
        """A key absent or in progress is fenced in one script, and the op in progress then finds
        its claim gone and is refused: "not applied" is true and final at once. (Waiting for the op
        instead could wait forever on a service that died holding the claim.)"""
        value = await self._resolve(keys=[self._record(token)])
        return None if value is None else int(value)


async def _script(call: Any) -> Any:
    """A script's reply; its error replies (FENCED, INPROGRESS, SOLDOUT) as the app's exceptions."""
    import redis

    try:
        return await call
    except redis.ResponseError as e:
        # by name anywhere in the message: a server may prefix a script's error reply with its own text
        known = next((exc for name, exc in ERRORS.items() if name in str(e)), None)
        if known is not None:
            raise known from e
        raise
