"""Checking a history as it streams: every process's ops merged by the time they were answered, folded
into per-key state that stays as small as what is in flight (``harness.checks.holes``,
``harness.checks.windows``), so a run of a billion ops is judged in bounded memory.

It takes the batches ``ColumnTally`` resolves (``Stream.add``), in any interleaving of the processes;
each process's batches come in the order its ops were answered. An op is taken once every process has
handed over ops answered at or after it (no op still to come was answered before it), in chunks. The
*watermark* -- the earliest invoke of any op not yet taken, from what each process's reader says is
still open -- says which ops no later one can be ordered before.

What it takes: counters whose writes all move by one, one way (the workload's), values within 64 bits,
processes placed on one timeline (one machine's clock, or several machines' by the master's samples, each
time widened by its uncertainty as ``harness.checks.timed`` says). Anything else raises ``Unstreamable``
and the history is read in memory instead (``harness.judge``). Its results are the in-memory checks'
(same preconditions, same evidence, read out by ``harness.checks.streamed``); ``harness.checks.windows``
says where a long history's witnesses may differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from harness.checks.holes import Holes
from harness.checks.streamed import Streamed
from harness.checks.timed import NEVER, TRUNCATION_NS, Clock, uncertainty
from harness.checks.windows import Cols, OrderFold, _cat
from harness.core.ops import Outcome
from harness.history import KINDS, OUTCOMES, OpColumns

_OK, _FAIL = OUTCOMES.index(Outcome.OK), OUTCOMES.index(Outcome.FAIL)
_READ = KINDS.index("read")
_END = np.iinfo(np.int64).max  # the arrival of an op never answered: after every other
CHUNK = 1 << 16  # ops taken at a time, at least (the last chunk may be smaller)
_HV, _ACKED, _RESOLVED_OK = 1, 2, 4  # an op's flags: ok with a value; answered ok to its client; ok once resolved


class Unstreamable(Exception):
    """The history holds something the streamed checks do not take (the in-memory ones do)."""


@dataclass(eq=False)
class _Source:
    index: int
    rows: int = 0  # rows handed over so far (an op's place in index order)
    last: int = -_END  # the latest arrival handed over
    low: int | None = -_END  # no op still to come was sent before this (None: unknown)
    ended: bool = False
    writes: Cols | None = None  # handed over, not yet taken (by arrival)
    reads: Cols | None = None


@dataclass(frozen=True, eq=False)
class _Batch:
    """A batch's writes and acknowledged reads as the folds take them (``Stream.prepare``)."""

    writes: Cols
    reads: Cols
    w_rows: Any  # their rows in the batch, for their keys
    r_rows: Any
    first: int  # the earliest invoke (as placed), _END: none


def _split(c: Cols | None, n: int) -> tuple[Cols | None, Cols | None]:
    if c is None:
        return None, None
    return {k: v[:n] for k, v in c.items()}, {k: v[n:] for k, v in c.items()}


class Stream:
    """The sink of ``ColumnTally(sink=...)``: folds every key's ops as they come (see the module)."""

    def __init__(self, *, workers: list[str], clocks: Mapping[str, Clock], initial: Mapping[str, int],
                 final: Mapping[str, int | None], direction: int, returns: Literal["after", "before"],
                 name_of: Callable[[int], str], chunk: int = CHUNK) -> None:
        self.sources = {w: _Source(i) for i, w in enumerate(workers)}
        self.workers = list(workers)
        self.clocks, self.initial, self.final = clocks, initial, final
        self.d, self.after, self.name_of, self.chunk = direction, returns == "after", name_of, chunk
        self.keys: dict[int, _KeyFolds] = {}
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cbcheck-holes")  # every key's holes fold, in order
        self.start_ns: int | None = None

    # --- taking batches -----------------------------------------------------------------------------

    def prepare(self, c: OpColumns, outcome: Any, has_value: Any, value: Any) -> _Batch:
        """What ``add`` needs of a batch, worked out from the batch alone (so in any thread: the reader's)."""
        clock = self.clocks.get(c.worker)
        if clock is None:
            raise Unstreamable(f"no clock for {c.worker}")
        if value.dtype == object or c.amount.dtype == object:
            raise Unstreamable("values beyond 64 bits")
        read = c.kind == _READ
        placed = ~read & (outcome != _FAIL)
        if ((c.amount != self.d) & placed).any():
            raise Unstreamable("writes that do not move the counter by one, its way")
        base = clock.base_ns
        done = c.completed_us >= 0
        ok = outcome == _OK
        # what a fold needs of an op: its place, value, times, and three flags (the rest is derived)
        flags = np.multiply(ok & has_value, _HV, dtype=np.uint8)
        flags |= np.multiply((c.outcome == _OK) & done, _ACKED, dtype=np.uint8)
        flags |= np.multiply(ok, _RESOLVED_OK, dtype=np.uint8)
        w_rows, r_rows = np.flatnonzero(placed), np.flatnonzero(read & ok & has_value)
        w, r = {}, {}
        for name, column in (("u", value), ("inv", c.invoked_us), ("arrival", c.completed_us), ("op", c.id),
                             ("flags", flags)):
            w[name], r[name] = column[w_rows], column[r_rows]
        exact = not (clock.uncertainty_ns or clock.sampled)
        for cols, rows in ((w, w_rows), (r, r_rows)):
            cols["seq"] = rows.copy()  # the op's place in its process: offset by what came before, in ``add``
            if self.d < 0:
                np.negative(cols["u"], out=cols["u"])
            # the earliest an op may have been sent and the latest it may have been answered (an op's arrival,
            # answered or not): its times widened by truncation and by its clock's uncertainty, which keep
            # their order within one process (the columns are this batch's own copies: changed in place)
            inv, done = cols["inv"], cols["arrival"]
            never = done < 0
            inv *= 1000
            inv += base
            done *= 1000
            done += base + TRUNCATION_NS
            if never.any():
                done[never] = _END
            if not exact:  # the times a witness shows stay as placed
                cols["inv0"], cols["done0"] = inv, done
                cols["inv"] = inv - uncertainty(clock, inv)
                cols["arrival"] = np.where(done < _END, done + uncertainty(clock, done), _END)
        placed_at = "inv" if exact else "inv0"
        first = min(int(w[placed_at].min(initial=_END)), int(r[placed_at].min(initial=_END)))
        return _Batch(writes=w, reads=r, w_rows=w_rows, r_rows=r_rows, first=first)

    def add(self, c: OpColumns, keys: Any, outcome: Any, has_value: Any, value: Any,
            prepared: _Batch | None = None) -> None:
        """One batch of a process's ops, resolved (outcomes and values as the lookups left them), and
        ``prepare``'s work on it when already done."""
        ready = prepared if prepared is not None else self.prepare(c, outcome, has_value, value)
        clock = self.clocks[c.worker]
        src = self.sources.get(c.worker)
        if src is None:
            src = self.sources[c.worker] = _Source(len(self.sources))
            self.workers.append(c.worker)
        w, r = ready.writes, ready.reads
        w["key"], r["key"] = keys[ready.w_rows], keys[ready.r_rows]
        for cols in (w, r):
            cols["seq"] += (src.index << 40) + src.rows
        src.rows += len(c)
        for cols in (w, r):  # a reader's batch is in order of answers; a hand-built one in any order
            if c.open_from_us is None and len(cols["seq"]) > 1 and (cols["arrival"][1:] < cols["arrival"][:-1]).any():
                order = np.argsort(cols["arrival"], kind="stable")
                for k in cols:
                    cols[k] = cols[k][order]
        if ready.first < _END:
            self.start_ns = ready.first if self.start_ns is None else min(self.start_ns, ready.first)
        src.writes, src.reads = _cat(src.writes, w), _cat(src.reads, r)
        src.last = max(src.last, self.position(c))
        open_from = c.open_from_us
        if open_from is None or src.low is None:
            src.low = None
        else:
            low = open_from * 1000 + clock.base_ns
            src.low = max(src.low, low - int(uncertainty(clock, np.int64(low))))
        self._drain(final=False)

    def position(self, c: OpColumns) -> int:
        """Where a batch leaves its process on the timeline: its last answer."""
        clock = self.clocks.get(c.worker)
        last = int(c.completed_us.max(initial=-1))
        if clock is None or last < 0:
            return _END
        at = last * 1000 + clock.base_ns + TRUNCATION_NS
        return at + int(uncertainty(clock, np.int64(at)))

    def ended(self, worker: str) -> None:
        """A process's history has been handed over whole."""
        src = self.sources.get(worker)
        if src is not None:
            src.ended, src.last = True, _END
        self._drain(final=False)

    def take_ready(self) -> int | None:
        """Online (``harness.checks.online``): take every op no process can still precede, however few, and
        judge the reads the watermark has passed; returns the watermark (None: unknown)."""
        active = [s for s in self.sources.values() if not s.ended]
        self._drain(final=False, eager=True)
        watermark = self._watermark(active) if active else None
        for folds in self.keys.values():
            folds.wait()
            if watermark is not None:
                folds.order.judge_before(watermark)
        return watermark

    def _drain(self, *, final: bool, eager: bool = False) -> None:
        """Take the ops no process can still precede, a chunk at a time (the last chunk: at the end;
        ``eager``: whatever is ready)."""
        active = [s for s in self.sources.values() if not s.ended]
        ready = _END if final or not active else min(s.last for s in active)
        while True:
            # at most a chunk from each process: up to the earliest arrival that ends one
            upto = ready
            for s in self.sources.values():
                for c in (s.writes, s.reads):
                    if c is not None and len(c["arrival"]) > self.chunk:
                        upto = min(upto, int(c["arrival"][self.chunk - 1]))
            cut = {name: tuple(0 if c is None else int(np.searchsorted(c["arrival"], upto, side="right"))
                               for c in (s.writes, s.reads)) for name, s in self.sources.items()}
            taken = sum(a + b for a, b in cut.values())
            if not taken or (not final and not eager and upto == ready and taken < self.chunk):
                return
            writes: list[Cols] = []
            reads: list[Cols] = []
            for name, s in self.sources.items():
                (w, s.writes), (r, s.reads) = _split(s.writes, cut[name][0]), _split(s.reads, cut[name][1])
                writes += [w] if w is not None and len(w["seq"]) else []
                reads += [r] if r is not None and len(r["seq"]) else []
            self._take(writes, reads, None if final else self._watermark(active))

    def _watermark(self, active: list[_Source]) -> int | None:
        """No op still to come, handed over or not, was sent before this."""
        lows = [s.low for s in active]
        if any(low is None for low in lows):
            return None
        pending = [int(c["inv"].min()) for s in self.sources.values() for c in (s.writes, s.reads)
                   if c is not None and len(c["seq"])]
        return min([*lows, *pending], default=_END)  # type: ignore[list-item]

    def _take(self, writes: list[Cols], reads: list[Cols], watermark: int | None) -> None:
        w = _merged(writes)
        r = _merged(reads)
        if w is None and r is None:
            return
        every = np.concatenate([c["key"] for c in (w, r) if c is not None])
        single = bool((every == every[0]).all())
        for k in [int(every[0])] if single else np.unique(every).tolist():
            self._key(k).add(_only(w, k, single), _only(r, k, single), watermark, self)

    def _key(self, k: int) -> _KeyFolds:
        got = self.keys.get(k)
        if got is None:
            name = self.name_of(k)
            got = self.keys[k] = _KeyFolds.of(self.initial.get(name, 0), self.final.get(name), self.d, self.after)
        return got  # type: ignore[return-value]

    def finish(self, keys: Iterable[str] = ()) -> dict[str, Streamed]:
        """Every op taken; the folds of each key, and of ``keys`` too (tallied, but no op placed)."""
        self._drain(final=True)
        self.pool.shutdown(wait=True)
        folded = {self.name_of(k): f for k, f in self.keys.items()}
        for name in keys:
            if name not in folded:
                folded[name] = _KeyFolds.of(self.initial.get(name, 0), self.final.get(name), self.d, self.after)
        out = {}
        for name, folds in folded.items():
            folds.wait()
            folds.order.finish()
            out[name] = Streamed(folds=folds, workers=self.workers, start_ns=self.start_ns or 0, d=self.d)
        return out


def _merged(parts: list[Cols]) -> Cols | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # each part is in order of arrival: a stable sort of their runs merges them, ties in process order
    order = np.argsort(np.concatenate([p["arrival"] for p in parts]), kind="stable")
    return {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0]}


def _only(c: Cols | None, k: int, single: bool) -> Cols:
    """The ops of key ``k`` (``single``: the only key there is)."""
    if c is None:
        return {f: np.zeros(0, dtype=np.uint8 if f == "flags" else np.int64)
                for f in ("key", "u", "inv", "seq", "op", "arrival", "flags")}
    if single:
        return c
    m = c["key"] == k
    return {f: v[m] for f, v in c.items()}


@dataclass(eq=False)
class _KeyFolds:
    holes: Holes
    order: OrderFold
    first: int  # the value (turned to go up) at position 0
    placed: int = 0
    valued: int = 0
    _holes: Future[None] | None = None  # the chunk the holes fold is taking

    @staticmethod
    def of(initial: int, final: int | None, d: int, after: bool) -> _KeyFolds:
        first_v = initial + d if after else initial
        span = None
        if final is not None:
            last_v = final if after else final - d
            span = max((last_v - first_v) * d + 1, 0)
        return _KeyFolds(holes=Holes(first=first_v * d, span=span),
                         order=OrderFold(initial=initial * d, final=None if final is None else final * d, after=after),
                         first=first_v * d)

    def add(self, w: Cols, r: Cols, watermark: int | None, stream: Stream) -> None:
        for c in (w, r):  # derived: answered to its client (the latest it may have been, or never)
            c["acked"] = (c["flags"] & _ACKED) > 0
            c["cmp"] = np.where(c["acked"], c["arrival"], NEVER)
            if "done0" in c:
                c["cmp0"] = np.where(c["acked"], c["done0"], NEVER)
        w["hv"] = (w["flags"] & _HV) > 0
        self.placed += len(w["seq"])
        hv = w["hv"]
        self.valued += int(hv.sum())
        rpos = r["u"] - self.first - (0 if stream.after else 1)
        uncertain = (w["flags"] & _RESOLVED_OK) == 0
        # every answer still to come lands after this chunk's last (ops are taken in order of arrival)
        frontier = max(int(c["arrival"][-1]) for c in (w, r) if len(c["arrival"])) if watermark is not None else None
        args = (w["u"][hv] - self.first, w["cmp"][hv], rpos, r["cmp"], w["inv"][uncertain])
        # the two folds share nothing: holes in a thread of its own (numpy lets go of the GIL), a chunk at a
        # time, while this one folds the order
        self.wait()
        self._holes = stream.pool.submit(self.holes.add, *args, frontier=frontier)
        self.order.add(w, r, watermark)

    def wait(self) -> None:
        """The holes fold has taken every chunk handed to it (its errors raised here)."""
        if self._holes is not None:
            self._holes, pending = None, self._holes
            pending.result()
