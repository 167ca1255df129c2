"""A key's ops placed in time, for the checks that read the order of ops (realtime-order, reads, gaps).

Every op has an interval on one timeline, in microseconds: from its invoke (when it was sent) to its
completion (its answer; ``NEVER`` for an op still out when its process stopped). An indeterminate
op's completion is when its client gave up on it, and it may take effect even after that (a
request held up in the network reaches the server late): the checks read only its invoke. Processes on one
host share a monotonic clock, and their ops are placed on it exactly. Processes of several hosts are
placed on the master's clock by the offsets the master measured while the run lasted, each with
the uncertainty of that measure (``Clock``): an interval is then widened by it, so that an order is
only read where it holds whatever the true offset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

NEVER = np.iinfo(np.int64).max // 4  # the completion of an op that never completed: after everything


@dataclass(frozen=True)
class Clock:
    """How one process's times (microseconds since its anchor) reach the run's timeline."""

    base_us: int  # added to the process's times
    uncertainty_us: int  # how far off that can be, either way


DRIFT = 500e-6  # how fast a clock may drift from another between two samples (NTP's bound on a slew)


def clocks(headers: Mapping[str, Mapping[str, Any]], sampled: Mapping[str, Any] | None = None
           ) -> dict[str, Clock] | None:
    """Each process's clock from its history header: all of one host -> its monotonic clock, exact;
    several hosts -> the master's clock, each process placed on it by the master's samples of its
    clock (``clocks.json``, see ``offset``). A process without samples cannot be placed: None."""
    if not headers:
        return {}
    hosts = {h.get("host") for h in headers.values()}
    if len(hosts) == 1 and all("anchor_monotonic_ns" in h for h in headers.values()):
        return {w: Clock(int(h["anchor_monotonic_ns"]) // 1000, 0) for w, h in headers.items()}
    workers = (sampled or {}).get("workers") or {}
    out: dict[str, Clock] = {}
    for w, h in headers.items():
        if not workers.get(w) or "anchor_wall_ns" not in h or "anchor_monotonic_ns" not in h:
            return None
        off, unc = offset(workers[w], master=(int(sampled["anchor_wall_ns"]), int(sampled["anchor_monotonic_ns"])),
                          worker=(int(h["anchor_wall_ns"]), int(h["anchor_monotonic_ns"])))
        out[w] = Clock((int(h["anchor_wall_ns"]) - off) // 1000, -(-unc // 1000) + 1)  # +1: rounding
    return out


def offset(samples: Sequence[Sequence[int]], *, master: tuple[int, int], worker: tuple[int, int]) -> tuple[int, int]:
    """How far a worker's timeline (its wall anchor plus monotonic time since) lies ahead of the master's,
    and how far off that can be, in ns, from the master's samples ``(asked, answered, worker's reading)``.

    The worker read its clock between the master's asking and the answer (Cristian): each sample holds
    the offset within half its round trip. The offset may drift while the run lasts, so the bound is
    the hull of every sample's interval, plus what a clock can drift between two samples."""
    lows, highs, times = [], [], []
    for asked, answered, reading in samples:
        mid = master[0] + (asked + answered) // 2 - master[1]
        seen = worker[0] + int(reading) - worker[1]
        half = (int(answered) - int(asked)) // 2 + 1
        lows.append(seen - mid - half)
        highs.append(seen - mid + half)
        times.append(int(asked))
    times.sort()
    gap = max([b - a for a, b in pairwise(times)] + [1_000_000_000])
    lo, hi = min(lows), max(highs)
    return (lo + hi) // 2, (hi - lo) // 2 + int(DRIFT * gap) + 1


@dataclass(kw_only=True)
class TimedOps:
    """One key's writes not known to have failed, and its acknowledged reads, on one timeline."""

    # writes: ok or indeterminate (a failed write left no trace to place)
    amount: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ok: Any = field(default_factory=lambda: np.zeros(0, dtype=bool))
    has_value: Any = field(default_factory=lambda: np.zeros(0, dtype=bool))
    value: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    inv: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cmp: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    worker: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    op: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # acknowledged reads
    r_value: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    r_inv: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    r_cmp: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    r_worker: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    r_op: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    workers: Sequence[str] = ()  # worker index -> name
    uncertainty: Any = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # by worker index, µs
    start_us: int = 0  # the run's start on the timeline (for seconds in witnesses)

    def intervals(self, which: Any = None, *, read: bool = False) -> tuple[Any, Any]:
        """(invoke, completion) of the writes (or reads) ``which`` selects (all: None), each widened by its
        process's clock uncertainty. With exact clocks these may be the arrays themselves: read only."""
        return self.invoked(which, read=read), self.completed(which, read=read)

    def invoked(self, which: Any = None, *, read: bool = False) -> Any:
        """The earliest each op may have been invoked (see ``intervals``)."""
        return self._widened(self.r_inv if read else self.inv, which, read, -1)

    def completed(self, which: Any = None, *, read: bool = False) -> Any:
        """The latest each op may have completed (see ``intervals``)."""
        return self._widened(self.r_cmp if read else self.cmp, which, read, 1)

    def _widened(self, times: Any, which: Any, read: bool, side: int) -> Any:
        times = times if which is None else times[which]
        if not self.uncertainty.any():
            return times
        worker = self.r_worker if read else self.worker
        unc = self.uncertainty[worker if which is None else worker[which]]
        return times + unc if side > 0 else times - unc

    def amount_if_one(self) -> int | None:
        """The amount every write asks for, if they all ask for the same (None: they differ, or no write)."""
        a = self.amount
        if not len(a):
            return None
        if a.strides == (0,) or bool((a == a[0]).all()):
            return int(a[0])
        return None

    def witness(self, i: int, *, read: bool = False) -> dict[str, Any]:
        """One op as a witness lists it: process, op id, value, invoke and completion (s since start)."""
        if read:
            w, op, value, inv, cmp = (self.r_worker[i], self.r_op[i], self.r_value[i], self.r_inv[i],
                                      self.r_cmp[i])
        else:
            w, op, value, inv, cmp = (self.worker[i], self.op[i], self.value[i], self.inv[i], self.cmp[i])
        return {"process": self.workers[int(w)] if len(self.workers) else str(int(w)), "op": int(op),
                "kind": "read" if read else ("increment" if int(self.amount[i]) > 0 else "decrement"),
                "value": int(value) if read or bool(self.has_value[i]) else None,
                "invoked_s": round((int(inv) - self.start_us) / 1e6, 6),
                "completed_s": None if int(cmp) >= NEVER else round((int(cmp) - self.start_us) / 1e6, 6)}


def later_but_behind(first: dict[str, Any], second: dict[str, Any], *, noun: str = "op", process: bool = True) -> str:
    """The sentence of an order witness: ``second`` began after ``first`` ended, yet got a value behind it."""
    def who(w: dict[str, Any]) -> str:
        return f"{noun} {w['op']}" + (f" ({w['process']})" if process else "")

    return (f"{who(first)} finished at {first['completed_s']:.6f} s with {first['value']}; {who(second)} started "
            f"later, at {second['invoked_s']:.6f} s, and got {second['value']}")
