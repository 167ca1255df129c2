"""Which acknowledged increments were lost, and when they were acknowledged.

For unit increments that return the value after the update (a counter, member ids), the history
names them. An acknowledged op whose value lies above the final value is lost (the counter reached
it, then went back). When a value was handed out twice, every acknowledgement of it but the last
was lost -- the last comes from the state that survived (a failover's new primary counting on from
what it had). Each is placed in time (wall clock from its process's clock anchor) against the
fault windows, so the report can say "acknowledged from 1.5 s before the failover up to it".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.core.errors import HistoryError
from harness.core.ops import Outcome
from harness.history import OUTCOMES, OpColumns, read_history

_OK = OUTCOMES.index(Outcome.OK)
SAMPLE = 20_000  # points a plot draws at most, of the kept and of the lost


@dataclass(frozen=True, kw_only=True)
class LostIncrements:
    """The lost ops of one key: when each was acknowledged (seconds since the run's start) and its value;
    and a sample of the ops that were kept, for the plot."""

    key: str
    final: int
    lost_t: Any  # numpy float64, ascending
    lost_value: Any  # numpy int64
    kept_t: Any
    kept_value: Any


def lost_increments(folder: Any, *, key: str, final: int, start_wall: float) -> LostIncrements | None:
    """The lost increments of ``key`` (a unit counter whose ops return the value after), or None when
    the history cannot be read."""
    parts: dict[str, list[tuple[Any, Any]]] = {}

    def collect(c: OpColumns) -> None:
        rows = (c.outcome == _OK) & c.has_value & (c.completed_us >= 0)
        if not rows.any():
            return
        sid = np.flatnonzero(np.asarray(c.strings, dtype=object) == key) + 1
        if not len(sid):
            return
        rows &= c.key == sid[0]
        parts.setdefault(c.worker, []).append((c.completed_us[rows], c.value[rows]))

    try:
        history = read_history(folder.history_dir, collect)
    except HistoryError:
        return None
    times, values = [], []
    for w in history.workers:
        anchor = float(w.header.get("anchor_wall_ns", 0)) / 1e9
        for completed_us, value in parts.get(w.worker, []):
            times.append(anchor + completed_us / 1e6 - start_wall)
            values.append(value)
    if not times:
        return LostIncrements(key=key, final=final, lost_t=np.zeros(0), lost_value=np.zeros(0, dtype=np.int64),
                              kept_t=np.zeros(0), kept_value=np.zeros(0, dtype=np.int64))
    t = np.concatenate(times)
    v = np.concatenate(values).astype(np.int64)
    order = np.lexsort((t, v))  # by value, then by acknowledgement time
    t, v = t[order], v[order]
    last_of_value = np.ones(len(v), dtype=bool)
    last_of_value[:-1] = v[1:] != v[:-1]
    lost = (v > final) | ~last_of_value
    by_time = np.argsort(t[lost], kind="stable")
    kept = np.flatnonzero(~lost)
    if len(kept) > SAMPLE:
        kept = kept[np.linspace(0, len(kept) - 1, SAMPLE).astype(np.int64)]
    return LostIncrements(key=key, final=final, lost_t=t[lost][by_time], lost_value=v[lost][by_time],
                          kept_t=t[kept], kept_value=v[kept])


def describe(lost: LostIncrements, faults: list[tuple[float, float, str]]) -> list[str]:
    """Sentences: how many, acknowledged when, and where that falls against each fault window."""
    n = len(lost.lost_t)
    if not n:
        return ["No acknowledged increment of this key was lost."]
    first, last = float(lost.lost_t[0]), float(lost.lost_t[-1])
    out = [f"{n:,} acknowledged increments never reached the final value {lost.final:,}: acknowledged between "
           f"{first:.3f} s and {last:.3f} s after the load started (values {int(lost.lost_value.min()):,} to "
           f"{int(lost.lost_value.max()):,})."]
    for a, b, action in faults:
        before = lost.lost_t[lost.lost_t < a]
        inside = int(((lost.lost_t >= a) & (lost.lost_t < b)).sum())
        after = n - len(before) - inside
        text = f"{action} at {a:.3f} s: {len(before):,} of them acknowledged before it"
        if len(before):
            text += f" (from {a - float(before[0]):.3f} s to {a - float(before[-1]):.3f} s before it)"
        out.append(f"{text}, {inside:,} during its window (to {b:.3f} s), {after:,} after it.")
    return out


def table(lost: LostIncrements, faults: list[tuple[float, float, str]], *, cap: int = 12) -> list[dict[str, Any]]:
    """The first and last lost ops, each with its time relative to every fault that began."""
    n = len(lost.lost_t)
    picks = list(range(min(n, cap // 2))) + list(range(max(cap // 2, n - cap // 2), n))
    rows = []
    for i in picks:
        t = float(lost.lost_t[i])
        row: dict[str, Any] = {"value": int(lost.lost_value[i]), "acknowledged_s": round(t, 3)}
        for a, _b, action in faults:
            row[f"vs {action} at {a:.1f} s"] = f"{t - a:+.3f} s"
        rows.append(row)
    return rows
