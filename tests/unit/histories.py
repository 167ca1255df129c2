"""Tiny hand-built histories for the check stories."""

from __future__ import annotations

from itertools import count

from harness.ops import Op, OpKind, Outcome

KEY = "k"
_ids = count()


def op(outcome: str, amount: int = 1, value: int | None = None, *, key: str = KEY,
       kind: OpKind = "incr") -> Op:
    i = next(_ids)
    return Op("w", i, key, kind, amount, Outcome(outcome), value, None, i, i + 1)


def take(outcome: str, value: int | None = None, *, key: str = KEY) -> Op:
    """A decrement-if-positive (seats) op."""
    return op(outcome, -1, value, key=key, kind="decr_if_positive")
