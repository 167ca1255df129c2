"""The reference service's idempotency keys: applied once per key, replayed, and fenced by a lookup."""

from __future__ import annotations

import asyncio

import pytest

from harness.service.stores import Fenced
from harness.service.stores.memory import MemoryStore


def run(coro):
    return asyncio.run(coro)


def test_a_repeated_key_replays_the_first_answer_without_applying_again():
    async def go():
        s = MemoryStore()
        assert await s.add_once("k", 5, "t1") == (5, False)
        assert await s.add_once("k", 5, "t1") == (5, True)
        assert await s.add_once("k", 5, "t2") == (10, False)
        return await s.get("k")

    assert run(go()) == 10


def test_a_lookup_of_an_unseen_key_fences_it():
    async def go():
        s = MemoryStore()
        await s.set("k", 0)
        assert await s.resolve("late") is None  # not applied, and now never will be
        with pytest.raises(Fenced):
            await s.add_once("k", 1, "late")
        assert await s.add_once("k", 1, "seen") == (1, False)
        assert await s.resolve("seen") == 1
        return await s.get("k")

    assert run(go()) == 1
