"""Tiny hand-built histories for the check stories."""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import count
from pathlib import Path

from harness.core.ops import Op, OpKind, Outcome

KEY = "k"
_ids = count()


def op(outcome: str, amount: int = 1, value: int | None = None, *, key: str = KEY,
       kind: OpKind = "incr") -> Op:
    i = next(_ids)
    return Op("w", i, key, kind, amount, Outcome(outcome), value, None, i, i + 1)


def take(outcome: str, value: int | None = None, *, key: str = KEY) -> Op:
    """A decrement-if-positive (seats) op."""
    return op(outcome, -1, value, key=key, kind="decr_if_positive")


def write_v1(path: Path, worker: str, ops: Iterable[Op]) -> None:
    """The ops as a version-1 (JSON lines) history file, as counterbench wrote them before version 2."""
    lines = [json.dumps({"schema_version": 1, "type": "header", "worker": worker, "run_id": "r", "scenario": "s",
                         "anchor_monotonic_ns": 0})]
    n = completed = 0
    for o in ops:
        lines.append(json.dumps(["i", o.id, o.invoked_us, o.key, o.kind, o.amount]))
        n += 1
        if o.completed_us is not None:
            more = [o.attempts] if o.attempts > 1 else []
            lines.append(json.dumps(["c", o.id, o.completed_us, o.outcome.value, o.value, o.error, *more]))
            completed += 1
    lines.append(json.dumps({"type": "footer", "invoked": n, "completed": completed}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
