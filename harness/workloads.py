"""What the users do: the workloads (one registry line each), their keys, and each op's key and amount.

A workload kind says which key(s) a run touches, which op its users send (an increment, or a
decrement-if-positive), and how amounts are drawn; ``OpChooser`` draws them (pure, seeded). A new
workload is one entry of ``WORKLOADS`` and its locustfile (``locustfiles/<name>.py``).
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from harness.core.models import WorkloadSpec


@dataclass(frozen=True, kw_only=True)
class WorkloadKind:
    keys: Callable[[WorkloadSpec, str], list[str]]  # every key a run touches (its id keeps runs apart)
    op: Literal["incr", "decr_if_positive"] = "incr"
    fixed_amount: bool = True  # every op moves the counter by one; else amounts drawn from a range
    capacity: bool = False  # ``initial`` is a capacity (seats): it cannot be negative
    multi_key: bool = False  # ``keys`` and ``skew`` apply: many keys, chosen by a Zipf law

    def signs(self, workload: WorkloadSpec) -> frozenset[int]:
        """The signs of the changes its ops ask for: what a missing op could have done."""
        if self.op == "decr_if_positive" or workload.amount.max < 0:
            return frozenset({-1})
        return frozenset({1})


def _one(name: str) -> Callable[[WorkloadSpec, str], list[str]]:
    return lambda _w, run_id: [f"cb:{run_id}:{name}"]


def _page_keys(workload: WorkloadSpec, run_id: str) -> list[str]:
    return [f"cb:{run_id}:user:{i}:{workload.date}" for i in range(1, workload.keys + 1)]


WORKLOADS: dict[str, WorkloadKind] = {
    "counter": WorkloadKind(keys=_one("counter")),  # +1 on one hot key
    "unique-ids": WorkloadKind(keys=_one("member-id")),  # +1; every returned value is an id
    "amount": WorkloadKind(keys=_one("collected"), fixed_amount=False),  # + random amounts (cents)
    "seats": WorkloadKind(keys=_one("seats"), op="decr_if_positive", capacity=True),  # never below zero
    "page-views": WorkloadKind(keys=_page_keys, multi_key=True),  # many keys, skewed
}


def key_names(workload: WorkloadSpec, run_id: str) -> list[str]:
    """Every key the workload may touch; the run id keeps runs apart on a shared store."""
    return WORKLOADS[workload.kind].keys(workload, run_id)


class OpChooser:
    """Draws (key, amount) for each op; one per load user, with its own seed."""

    def __init__(self, workload: WorkloadSpec, keys: list[str], *, seed: int, uniform: bool = False) -> None:
        self._keys = keys
        self._rng = random.Random(seed)
        self._lo, self._hi = workload.amount.min, workload.amount.max
        self._decrement = WORKLOADS[workload.kind].op == "decr_if_positive"
        # Zipf popularity: key i is chosen with weight 1 / i**skew (a few users view most pages)
        # (write shards are chosen uniformly: spreading writes evenly is their point)
        skew = 0.0 if uniform else workload.skew
        self._cum = list(accumulate(1.0 / (i**skew) for i in range(1, len(keys) + 1)))
        self.reads = workload.reads  # the share of ops that read the key instead

    def read_now(self) -> bool:
        """Whether the next op is a read (``workload.reads`` of them)."""
        return self._rng.random() < self.reads

    def key(self) -> str:
        if len(self._keys) == 1:
            return self._keys[0]
        i = bisect_left(self._cum, self._rng.random() * self._cum[-1])
        return self._keys[min(i, len(self._keys) - 1)]

    def next(self) -> tuple[str, int]:
        key = self.key()
        if self._decrement:
            return key, -1
        amount = self._lo if self._lo == self._hi else self._rng.randint(self._lo, self._hi)
        return key, amount
