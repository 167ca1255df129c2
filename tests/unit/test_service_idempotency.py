"""The reference service's idempotency keys: applied once per key, replayed, and fenced by a lookup."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from harness.service.stores import Claim, Fenced, InProgress, SoldOut, once
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


# one key, two requests at once (the IETF Idempotency-Key draft: the second is refused while the
# first is in progress), and what a key is left as when its op did not apply


async def _both(first: Awaitable[tuple[int, bool]], second: Awaitable[tuple[int, bool]]) -> list[object]:
    return list(await asyncio.gather(first, second, return_exceptions=True))


def test_two_concurrent_reservations_with_one_key_take_one_seat_on_the_unsafe_memory_store():
    """The unsafe variant is unsafe about the counter's read-modify-write, never about one key: it
    used to await between checking a key and recording it, and applied both requests (8 left)."""

    async def go() -> tuple[int | None, list[object]]:
        s = MemoryStore(unsafe=True)
        await s.set("seats", 10)
        outcomes = await _both(s.take_once("seats", "t"), s.take_once("seats", "t"))
        return await s.get("seats"), outcomes

    left, outcomes = run(go())
    assert left == 9
    assert outcomes[0] == (9, False) and isinstance(outcomes[1], InProgress)


@pytest.mark.parametrize("unsafe", [False, True], ids=["atomic", "unsafe"])
def test_a_repeat_while_the_first_is_in_progress_is_refused_then_replayed(unsafe):
    async def go() -> None:
        s = MemoryStore(unsafe=unsafe)
        claim = await s.claim("t")  # the first request: in progress, its op not applied yet
        assert isinstance(claim, Claim)
        with pytest.raises(InProgress):
            await s.add_once("k", 1, "t")
        assert await s.get("k") is None
        assert await s.add_claimed("k", 1, claim) == 1
        assert await s.add_once("k", 1, "t") == (1, True)
        assert await s.get("k") == 1

    run(go())


@pytest.mark.parametrize("unsafe", [False, True], ids=["atomic", "unsafe"])
def test_a_resolve_while_in_progress_fences_the_op_for_good(unsafe):
    async def go() -> None:
        s = MemoryStore(unsafe=unsafe)
        claim = await s.claim("t")
        assert await s.resolve("t") is None  # not applied: true, because now it never will be
        with pytest.raises(Fenced):
            await s.add_claimed("k", 1, claim)
        with pytest.raises(Fenced):
            await s.add_once("k", 1, "t")
        assert await s.resolve("t") is None
        assert await s.get("k") is None

    run(go())


def test_a_resolve_during_the_unsafe_read_modify_write_fences_it():
    async def go() -> None:
        s = MemoryStore(unsafe=True)
        first = asyncio.create_task(s.add_once("k", 1, "t"))
        await asyncio.sleep(0)  # the first request has read the counter and awaits before writing it
        assert await s.resolve("t") is None
        with pytest.raises(Fenced):
            await first
        assert await s.get("k") is None

    run(go())


def test_a_sold_out_reservation_leaves_its_key_free_for_a_retry():
    async def go() -> None:
        s = MemoryStore()
        await s.set("seats", 0)
        with pytest.raises(SoldOut):
            await s.take_once("seats", "t")
        await s.set("seats", 1)
        assert await s.take_once("seats", "t") == (0, False)  # applied once, now
        assert await s.resolve("t") == 0

    run(go())


def test_a_failure_frees_a_key_only_if_its_op_did_not_apply():
    """``once`` releases the claim after any failure, and that is safe only because applying
    replaced the claim: an op that applied before the failure (its answer lost) keeps its record."""

    async def failing_after(s: MemoryStore, claim: Claim) -> int:
        await s.add_claimed("k", 1, claim)
        raise ConnectionError("the answer was lost")

    async def failing_before(s: MemoryStore, claim: Claim) -> int:
        raise ConnectionError("the store went away before the op was sent")

    async def go() -> None:
        s = MemoryStore()
        with pytest.raises(ConnectionError):
            await once(s, "before", lambda claim: failing_before(s, claim))
        assert await s.add_once("k", 1, "before") == (1, False)  # the key was free: applied once, now
        with pytest.raises(ConnectionError):
            await once(s, "after", lambda claim: failing_after(s, claim))
        assert await s.add_once("k", 1, "after") == (2, True)  # applied before the failure: never again
        assert await s.get("k") == 2

    run(go())
