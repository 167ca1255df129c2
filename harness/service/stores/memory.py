"""The memory store: one process, the event loop serialises every update."""

from __future__ import annotations

import asyncio

from harness.service.stores import STORE_ROUND_TRIP, Claim, Fenced, InProgress, SoldOut, once


class MemoryStore:
    """One process; the event loop serialises every update, so no lock is needed: what runs between
    two awaits is one atomic step.

    Idempotency keys: ``_keys`` holds each key's state -- its Claim (in progress), the value its op
    left (done) or None (fenced) -- for the life of the process. ``_write`` checks the claim, writes
    the counter and records the value without awaiting: one step, in both variants. The unsafe
    variant awaits between reading the counter and ``_write`` (losing other keys' updates), never
    between checking a key and recording it."""

    def __init__(self, *, unsafe: bool = False) -> None:
        self._values: dict[str, int] = {}
        self._keys: dict[str, Claim | int | None] = {}
        self._unsafe = unsafe

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def set(self, key: str, value: int) -> int:
        self._values[key] = value
        return value

    async def get(self, key: str) -> int | None:
        return self._values.get(key)

    async def add(self, key: str, amount: int) -> int:
        return await self._add(key, amount, None)

    async def take(self, key: str) -> int:
        return await self._take(key, None)

    async def _add(self, key: str, amount: int, claim: Claim | None) -> int:
        current = self._values.get(key, 0)
        if self._unsafe:
            await asyncio.sleep(STORE_ROUND_TRIP)  # deliberately unsafe: others write meanwhile
        return self._write(key, current + amount, claim)

    async def _take(self, key: str, claim: Claim | None) -> int:
        if self._values.get(key, 0) <= 0:
            raise SoldOut
        if self._unsafe:
            await asyncio.sleep(STORE_ROUND_TRIP)  # check-then-act: the seat may be taken meanwhile
        return self._write(key, self._values.get(key, 0) - 1, claim)

    def _write(self, key: str, value: int, claim: Claim | None) -> int:
        """The counter's new value, and the claim's key done with it, as one step (no await)."""
        if claim is not None:
            if self._keys.get(claim.token) != claim:
                raise Fenced  # a resolve fenced the key while its op was in progress
            self._keys[claim.token] = value
        self._values[key] = value
        return value

    # idempotency keys (the state machine in harness.service.stores)

    async def claim(self, token: str) -> Claim | int:
        if token not in self._keys:
            claim = self._keys[token] = Claim(token)
            return claim
        state = self._keys[token]
        if state is None:
            raise Fenced
        if isinstance(state, Claim):
            raise InProgress
        return state

    async def add_claimed(self, key: str, amount: int, claim: Claim) -> int:
        return await self._add(key, amount, claim)

    async def take_claimed(self, key: str, claim: Claim) -> int:
        return await self._take(key, claim)

    async def release(self, claim: Claim) -> None:
        if self._keys.get(claim.token) == claim:
            del self._keys[claim.token]

    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]:
        return await once(self, token, lambda claim: self.add_claimed(key, amount, claim))

    async def take_once(self, key: str, token: str) -> tuple[int, bool]:
        return await once(self, token, lambda claim: self.take_claimed(key, claim))

    async def resolve(self, token: str) -> int | None:
        """A key absent or in progress is fenced at once: ``_write`` then refuses its op, so "not
        applied" is true and final. Waiting for the op instead could wait forever on a request
        whose client went away; fencing answers now and is never wrong."""
        state = self._keys.get(token)
        if isinstance(state, int):
            return state
        self._keys[token] = None
        return None
