"""The memory store: one process, the event loop serialises every update."""

from __future__ import annotations

import asyncio

from harness.service.stores import STORE_ROUND_TRIP, Fenced, SoldOut


class MemoryStore:
    """One process; the event loop serialises every update, so no lock is needed."""

    def __init__(self, *, unsafe: bool = False) -> None:
        self._values: dict[str, int] = {}
        self._tokens: dict[str, int | None] = {}
        self._unsafe = unsafe

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def set(self, key: str, value: int) -> int:
        self._values[key] = value
        return value

    async def add(self, key: str, amount: int) -> int:
        if self._unsafe:
            current = self._values.get(key, 0)
            await asyncio.sleep(STORE_ROUND_TRIP)  # deliberately unsafe: others write meanwhile
            self._values[key] = current + amount
            return current + amount
        self._values[key] = self._values.get(key, 0) + amount
        return self._values[key]

    async def take(self, key: str) -> int:
        current = self._values.get(key, 0)
        if current <= 0:
            raise SoldOut
        if self._unsafe:
            await asyncio.sleep(STORE_ROUND_TRIP)  # check-then-act: the seat may be taken meanwhile
            self._values[key] = self._values.get(key, 0) - 1
            return self._values[key]
        self._values[key] = current - 1
        return current - 1

    async def get(self, key: str) -> int | None:
        return self._values.get(key)

    # idempotency keys: the value each key's op left, or None once fenced. The atomic variant never
    # awaits between checking a key and applying its op, so the event loop makes both one step.

    def _seen(self, token: str) -> tuple[int, bool] | None:
        if token not in self._tokens:
            return None
        value = self._tokens[token]
        if value is None:
            raise Fenced
        return value, True

    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]:
        seen = self._seen(token)
        if seen is not None:
            return seen
        self._tokens[token] = value = await self.add(key, amount)
        return value, False

    async def take_once(self, key: str, token: str) -> tuple[int, bool]:
        seen = self._seen(token)
        if seen is not None:
            return seen
        self._tokens[token] = value = await self.take(key)
        return value, False

    async def resolve(self, token: str) -> int | None:
        return self._tokens.setdefault(token, None)
