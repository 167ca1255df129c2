"""A key's ops placed in time, for the checks that read the order of ops (realtime-order, reads, gaps).

Every op has an interval on one timeline, in nanoseconds: from its invoke (when it was sent) to its
completion (its answer; ``NEVER`` for an op still out when its process stopped, and for every op
whose client did not get an acknowledgement -- even one a lookup later showed applied: it may have
landed any time after its invoke, a request held up in the network reaching the server late).

One placement rule for every process: a history gives an op's times in whole microseconds since its
process's anchor (truncated), and a process's ``Clock`` puts that anchor on the timeline in
nanoseconds. An op's true invoke lies at or after its placed one, its true completion up to 999 ns
after its placed one (the truncation), so a completion is widened by that much: two ops less than a
microsecond apart are never read in an order. Processes of one host (one machine and boot: the same
monotonic clock) are placed on it exactly. Processes of several hosts are placed on the master's
clock by the offsets it measured while the run lasted (``clocks.json``), each with the uncertainty of
that measure -- which grows, by the drift a clock may have, with the time from the nearest sample,
so an op after the last sample is placed ever more loosely, never with a frozen bound. An interval
is widened by it, so an order is only read where it holds whatever the true offset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

NEVER = np.iinfo(np.int64).max // 4  # the completion of an op that never completed: after everything
TRUNCATION_NS = 999  # times are whole microseconds, truncated: the truth lies up to this much later
DRIFT_PER = 2000  # a clock may drift from another by 1 ns in this many (500 ppm: NTP's bound on a slew)


@dataclass(frozen=True)
class Clock:
    """How one process's times (microseconds since its anchor) reach the run's timeline (nanoseconds)."""

    base_ns: int  # the process's anchor on the timeline
    uncertainty_ns: int = 0  # how far off that can be, either way, between the first and last sample
    sampled: tuple[int, int] | None = None  # those samples' span on the timeline; beyond it, drift adds up

    @property
    def base_us(self) -> int:
        return self.base_ns // 1000


def drift_ns(elapsed_ns: Any) -> Any:
    """How far two clocks may drift apart in ``elapsed_ns`` (rounded up; int or int64 array)."""
    return -(-elapsed_ns // DRIFT_PER)


def uncertainty(clock: Clock, times: Any) -> Any:
    """How far off each of one process's ``times`` (ns, on the timeline) may be: its clock's uncertainty,
    plus what it may have drifted since the nearest sample (as ``TimedOps`` widens them; 0: exact)."""
    if not (clock.uncertainty_ns or clock.sampled):
        return 0
    first, last = clock.sampled or (-NEVER, NEVER)
    return clock.uncertainty_ns + drift_ns(np.maximum(np.maximum(first - times, times - last), 0))


def host_of(header: Mapping[str, Any]) -> tuple[str, ...]:
    """Which monotonic clock a process read: its machine and boot (two machines may share a host name);
    a header without them (written before they were recorded, or where the OS does not tell): its host name."""
    if header.get("boot_id"):
        return (str(header.get("machine_id")), str(header["boot_id"]))
    return ("host", str(header.get("host")))


def clocks(headers: Mapping[str, Mapping[str, Any]], sampled: Mapping[str, Any] | None = None
           ) -> dict[str, Clock] | None:
    """Each process's clock from its history header: all of one host -> its monotonic clock, exact;
    several hosts -> the master's clock, each process placed on it by the master's samples of its
    clock (``clocks.json``, see ``offset``). A process without samples cannot be placed: None."""
    if not headers:
        return {}
    hosts = {host_of(h) for h in headers.values()}
    if len(hosts) == 1 and all("anchor_monotonic_ns" in h for h in headers.values()):
        return {w: Clock(int(h["anchor_monotonic_ns"])) for w, h in headers.items()}
    workers = (sampled or {}).get("workers") or {}
    out: dict[str, Clock] = {}
    for w, h in headers.items():
        if not workers.get(w) or "anchor_wall_ns" not in h or "anchor_monotonic_ns" not in h:
            return None
        master = (int(sampled["anchor_wall_ns"]), int(sampled["anchor_monotonic_ns"]))  # type: ignore[index]
        off, unc = offset(workers[w], master=master, worker=(int(h["anchor_wall_ns"]), int(h["anchor_monotonic_ns"])))
        asked = [int(s[0]) for s in workers[w]]
        # the samples' span, on the timeline: the master's monotonic times since its anchor, on its wall anchor
        span = (master[0] + min(asked) - master[1], master[0] + max(asked) - master[1])
        out[w] = Clock(int(h["anchor_wall_ns"]) - off, unc, span)
    return out


def offset(samples: Sequence[Sequence[int]], *, master: tuple[int, int], worker: tuple[int, int]) -> tuple[int, int]:
    """How far a worker's timeline (its wall anchor plus monotonic time since) lies ahead of the master's,
    and how far off that can be, in ns, from the master's samples ``(asked, answered, worker's reading)``.

    The worker read its clock between the master's asking and the answer (Cristian): each sample holds
    the offset within half its round trip. The offset may drift while the run lasts, so the bound is
    the hull of every sample's interval, plus what a clock can drift between two samples (beyond the
    samples, ``TimedOps`` adds what it can drift since)."""
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
    return (lo + hi) // 2, (hi - lo) // 2 + int(drift_ns(gap)) + 1


@dataclass(kw_only=True)
class TimedOps:
    """One key's writes not known to have failed, and its acknowledged reads, on one timeline."""

    # writes: ok or indeterminate (a failed write left no trace to place). ``inv`` is the earliest an op
    # may have been invoked, ``cmp`` the latest it may have completed -- its placed completion plus the
    # truncation (``TRUNCATION_NS``), taken in once when it was placed -- or NEVER
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
    clocks: Sequence[Clock] = ()  # by worker index; none: every clock exact
    start_ns: int = 0  # the run's start on the timeline (for seconds in witnesses)

    def intervals(self, which: Any = None, *, read: bool = False) -> tuple[Any, Any]:
        """(invoke, completion) of the writes (or reads) ``which`` selects (all: None), each widened by its
        process's clock uncertainty (the truncation is in ``cmp`` already). With exact clocks these may be
        the arrays themselves: read only."""
        return self.invoked(which, read=read), self.completed(which, read=read)

    def invoked(self, which: Any = None, *, read: bool = False) -> Any:
        """The earliest each op may have been invoked (see ``intervals``)."""
        return self._widened(self.r_inv if read else self.inv, which, read, -1)

    def completed(self, which: Any = None, *, read: bool = False) -> Any:
        """The latest each op may have completed (see ``intervals``)."""
        return self._widened(self.r_cmp if read else self.cmp, which, read, 1)

    def _widened(self, times: Any, which: Any, read: bool, side: int) -> Any:
        times = times if which is None else times[which]
        unc = self._uncertainty(times, which, read)
        if unc is None:
            return times
        return times + unc if side > 0 else times - unc

    def _uncertainty(self, times: Any, which: Any, read: bool) -> Any:
        """Each time's clock uncertainty (ns), None when every clock is exact."""
        if not any(c.uncertainty_ns or c.sampled for c in self.clocks):
            return None
        worker = self.r_worker if read else self.worker
        w = worker if which is None else worker[which]
        unc = np.array([c.uncertainty_ns for c in self.clocks], dtype=np.int64)[w]
        spans = [c.sampled or (-NEVER, NEVER) for c in self.clocks]
        first = np.array([a for a, _ in spans], dtype=np.int64)[w]
        last = np.array([b for _, b in spans], dtype=np.int64)[w]
        beyond = np.maximum(np.maximum(first - times, times - last), 0)  # time from the nearest sample
        return unc + drift_ns(beyond)

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
                "amount": 0 if read else int(self.amount[i]),
                "value": int(value) if read or bool(self.has_value[i]) else None,
                "invoked_s": round((int(inv) - self.start_ns) / 1e9, 6),
                "completed_s": None if int(cmp) >= NEVER else round((int(cmp) - TRUNCATION_NS - self.start_ns) / 1e9,
                                                                    6)}


def moved(w: dict[str, Any], returns: str) -> str:
    """Where a write took the counter, from its witness and what its value is (after / before): "from 3 to 5"."""
    v, a = int(w["value"]), int(w["amount"])
    return f"from {v - a} to {v}" if returns == "after" else f"from {v} to {v + a}"


def later_but_behind(first: dict[str, Any], second: dict[str, Any], *, noun: str = "op", process: bool = True) -> str:
    """The sentence of an order witness: ``second`` began after ``first`` ended, yet got a value behind it."""
    def who(w: dict[str, Any]) -> str:
        return f"{noun} {w['op']}" + (f" ({w['process']})" if process else "")

    return (f"{who(first)} finished at {first['completed_s']:.6f} s with {first['value']}; {who(second)} started "
            f"later, at {second['invoked_s']:.6f} s, and got {second['value']}")
