"""What the users do: which key each op touches and by how much (pure, seeded)."""

from __future__ import annotations

import random
from bisect import bisect_left
from itertools import accumulate

from harness.config import ApiGatewayTarget, DynamoTarget, Scenario, Workload


def scenario_keys(scenario: Scenario, run_id: str) -> list[str]:
    """The keys of a run: the workload's, split into write shards, or the API's one fixed item."""
    t = scenario.target
    if isinstance(t, ApiGatewayTarget):
        return [f"{t.item.table}:" + ":".join(t.item.key.values())]
    keys = key_names(scenario.workload, run_id)
    if isinstance(t, DynamoTarget) and t.shards > 1:
        return [f"{k}#{i}" for k in keys for i in range(t.shards)]
    return keys


def sharded(scenario: Scenario) -> bool:
    return isinstance(scenario.target, DynamoTarget) and scenario.target.shards > 1


def key_names(workload: Workload, run_id: str) -> list[str]:
    """Every key the workload may touch; the run id keeps runs apart on a shared store."""
    prefix = f"cb:{run_id}:"
    if workload.kind == "page-views":
        return [f"{prefix}user:{i}:{workload.date}" for i in range(1, workload.keys + 1)]
    name = {"counter": "counter", "unique-ids": "member-id", "amount": "collected", "seats": "seats"}
    return [prefix + name[workload.kind]]


class OpChooser:
    """Draws (key, amount) for each op; one per load user, with its own seed."""

    def __init__(self, workload: Workload, keys: list[str], *, seed: int, uniform: bool = False) -> None:
        self._keys = keys
        self._rng = random.Random(seed)
        self._lo, self._hi = workload.amount.min, workload.amount.max
        self._seats = workload.kind == "seats"
        # Zipf popularity: key i is chosen with weight 1 / i**skew (a few users view most pages)
        # (write shards are chosen uniformly: spreading writes evenly is their point)
        skew = 0.0 if uniform else workload.skew
        self._cum = list(accumulate(1.0 / (i**skew) for i in range(1, len(keys) + 1)))

    def next(self) -> tuple[str, int]:
        if len(self._keys) == 1:
            key = self._keys[0]
        else:
            i = bisect_left(self._cum, self._rng.random() * self._cum[-1])
            key = self._keys[min(i, len(self._keys) - 1)]
        if self._seats:
            return key, -1
        amount = self._lo if self._lo == self._hi else self._rng.randint(self._lo, self._hi)
        return key, amount
