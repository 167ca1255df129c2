"""Per-key tallies of a history read in columns (numpy): no Python object per op.

``ColumnTally.add`` takes each batch of ops the history reader hands over and keeps, per key,
counts by outcome and amount (exact Python ints) and the values acknowledged ops returned (one
int64 array per key at the end, for unique-values). The result is the same ``KeyTally`` the
checks get from ``tally(ops)`` of hand-built histories.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.checks.model import KeyTally
from harness.checks.timed import NEVER, TRUNCATION_NS, Clock, TimedOps
from harness.core.ops import Outcome
from harness.history import KINDS, OUTCOMES, OpColumns, StringLookup

_OK, _FAIL, _IND = (OUTCOMES.index(o) for o in (Outcome.OK, Outcome.FAIL, Outcome.INDETERMINATE))
_READ = KINDS.index("read")


def _pairs(keys: npt.NDArray[np.int64], amounts: Any) -> Iterator[tuple[int, int, int]]:
    """(key, amount, count) for every distinct (key, amount) pair: exact, sorts only when amounts differ."""
    if not len(keys):
        return
    first = amounts[0]
    if (amounts == first).all():  # every op of the batch asks for the same change (counter, seats)
        counts = np.bincount(keys)
        nz = np.flatnonzero(counts)
        a = int(first)
        for k, c in zip(nz.tolist(), counts[nz].tolist(), strict=True):
            yield k, a, c
        return
    distinct, which = np.unique(amounts, return_inverse=True)
    pair, counts = np.unique(keys * len(distinct) + which, return_counts=True)
    for p, c in zip(pair.tolist(), counts.tolist(), strict=True):
        k, i = divmod(p, len(distinct))
        yield k, int(distinct[i]), c


class Resolution:
    """One worker's uncertain ops as looked up after the run: op ids (sorted), applied or not, the value."""

    def __init__(self, applied: list[list[int]], not_applied: list[int]) -> None:
        pairs = sorted([(op, True, v) for op, v in applied] + [(op, False, 0) for op in not_applied])
        self.ids = np.array([p[0] for p in pairs], dtype=np.int64)
        self.applied = np.array([p[1] for p in pairs], dtype=bool)
        self.values = np.array([p[2] for p in pairs], dtype=np.int64)

    @staticmethod
    def of(doc: dict[str, Any] | None) -> dict[str, Resolution]:
        """By worker, from resolutions.json (none: nothing was looked up)."""
        if not doc:
            return {}
        return {w: Resolution(r.get("applied", []), r.get("not_applied", [])) for w, r in doc["workers"].items()}


def _indexer(index: dict[str, int], tallies: list[KeyTally]) -> Callable[[str], int]:
    """A key's index into ``tallies``, a new tally for a key not seen before. Not a bound method: the
    lookup holding it would make a cycle with the ColumnTally and keep its arrays alive until the GC ran."""

    def key_index(key: str) -> int:
        i = index.get(key)
        if i is None:
            i = index[key] = len(tallies)
            tallies.append(KeyTally(key=key))
        return i

    return key_index


# a batch, its keys, outcomes, has-values, values (and what the sink prepared of it, if it did)
Sink = Callable[..., None]


@dataclass(frozen=True, eq=False)
class Resolved:
    """A batch's outcomes, has-values and values with its process's resolved ops applied, and how many
    were resolved each way (``ColumnTally.prepare``: the batch alone, so in any thread)."""

    outcome: Any
    has_value: Any
    value: Any
    applied: int = 0
    not_applied: int = 0


class ColumnTally:
    """Accumulates batches of ops (any workers, any versions) into one KeyTally per key.

    ``resolutions``: indeterminate ops a lookup resolved after the run count as what it said --
    ok with the value it reported, or fail (never applied). With ``clocks`` (each process's, see
    ``harness.checks.timed``), every key's ops are also kept placed in time (``KeyTally.timed``) for
    the checks that read their order; a process without a clock leaves the keys untimed. Reads are
    kept apart from the writes every other tally counts. With a ``sink``, each batch goes there once
    resolved, with its keys as indices into ``key_name``, instead of being kept placed or by value."""

    def __init__(self, *, latencies: bool = False, resolutions: dict[str, Resolution] | None = None,
                 clocks: dict[str, Clock] | None = None, timed: bool = False, sink: Sink | None = None) -> None:
        self._index: dict[str, int] = {}
        self._tallies: list[KeyTally] = []
        self._fail = np.zeros(0, dtype=np.int64)
        self._no_value = np.zeros(0, dtype=np.int64)
        # per batch: (its key, or each value's key) and the values acknowledged ops returned
        self._values: list[tuple[int | npt.NDArray[np.int32], Any]] = []
        self._keys = StringLookup(_indexer(self._index, self._tallies), none=-1)  # keys are never none
        self._latencies: list[npt.NDArray[np.int64]] | None = [] if latencies else None
        self._resolutions = resolutions or {}
        self._clocks = clocks if timed else None
        self._untimed: str | None = None if clocks is not None or not timed else \
            "the load ran on several machines whose clocks the master did not sample"
        self._timed_parts: list[tuple[Any, TimedOps]] = []
        self._sink = sink
        self._workers: dict[str, int] = {}
        self._worker_clocks: list[Clock] = []  # by worker index
        self._reads = np.zeros(0, dtype=np.int64)
        self._reads_ok = np.zeros(0, dtype=np.int64)
        self.resolved_applied = 0
        self.resolved_not_applied = 0
        self.ops = 0
        self.retried_ops = 0
        self.retry_attempts = 0
        self.invoked_min: int | None = None
        self.invoked_max: int | None = None

    def _key_indices(self, c: OpColumns) -> npt.NDArray[np.int64]:
        """Each row's key as an index into this tally's keys."""
        keys = self._keys(c.strings, c.key)
        n = len(self._tallies)
        if len(self._fail) < n:
            grow = np.zeros(n - len(self._fail), dtype=np.int64)
            self._fail, self._no_value, self._reads, self._reads_ok = (
                np.concatenate([a, grow]) for a in (self._fail, self._no_value, self._reads, self._reads_ok))
        return keys

    def add(self, c: OpColumns, resolved: Resolved | None = None, for_sink: Any = None) -> None:
        """One batch; ``resolved``: ``prepare``'s work on it, when already done; ``for_sink``: the sink's."""
        n = len(c)
        if not n:
            return
        self.ops += n
        keys = self._key_indices(c)
        nkeys = len(self._tallies)
        got = resolved if resolved is not None else self.prepare(c)
        self.resolved_applied += got.applied
        self.resolved_not_applied += got.not_applied
        outcome, has_value, value = got.outcome, got.has_value, got.value
        read = c.kind == _READ
        write = ~read
        ok = (outcome == _OK) & write
        fail = (outcome == _FAIL) & write
        undecided = write & ~(ok | fail)
        if read.any():
            self._reads += np.bincount(keys[read], minlength=nkeys)
            self._reads_ok += np.bincount(keys[read & (outcome == _OK)], minlength=nkeys)
        if self._sink is not None:  # placed and folded as it comes, values and all (harness.checks.stream)
            self._sink(c, keys, outcome, has_value, value, *(() if for_sink is None else (for_sink,)))
        elif self._clocks is not None:
            self._place(c, keys, ok, fail, read & (outcome == _OK) & has_value, has_value, value)
        self._fail += np.bincount(keys[fail], minlength=nkeys)
        for k, a, m in _pairs(keys[ok], c.amount[ok]):
            self._tallies[k].ok_amounts[a] += m
        for k, a, m in _pairs(keys[undecided], c.amount[undecided]):
            self._tallies[k].indeterminate_amounts[a] += m
        with_value = ok & has_value
        self._no_value += np.bincount(keys[ok & ~has_value], minlength=nkeys)
        if with_value.any() and self._sink is None:
            vk = keys[with_value]
            # one key for the whole batch (a hot counter): kept as a number, not an array per value
            self._values.append((int(vk[0]) if (vk == vk[0]).all() else vk.astype(np.int32), value[with_value]))
        retried = c.attempts > 1
        if retried.any():
            self.retried_ops += int(retried.sum())
            self.retry_attempts += int((c.attempts[retried].astype(np.int64) - 1).sum())
        lo, hi = int(c.invoked_us.min()), int(c.invoked_us.max())
        self.invoked_min = lo if self.invoked_min is None else min(self.invoked_min, lo)
        self.invoked_max = hi if self.invoked_max is None else max(self.invoked_max, hi)
        if self._latencies is not None:  # of ops acknowledged to their client (not those resolved after the run)
            done = write & (c.outcome == _OK) & (c.completed_us >= 0)
            self._latencies.append((c.completed_us[done] - c.invoked_us[done]).astype(np.int64))

    def _place(self, c: OpColumns, keys: Any, ok: Any, fail: Any, read: Any, has_value: Any, value: Any) -> None:
        """This batch's writes not known to have failed, and its acknowledged reads, on the run's timeline.

        Kept lean (10M ops must fit in well under a GiB): one key, worker and amount per batch are kept
        as numbers, op ids as uint32, and everything is gathered once, per key, at the end."""
        assert self._clocks is not None
        clock = self._clocks.get(c.worker)
        if clock is None:
            self._untimed = f"no clock for {c.worker}"
            return
        if value.dtype == object or c.amount.dtype == object or (len(c.id) and int(c.id.max()) >= 2**32):
            self._untimed = "values beyond 64 bits"
            return
        w = self._workers.setdefault(c.worker, len(self._workers))
        if w >= len(self._worker_clocks):
            self._worker_clocks.append(clock)
        wr = ~read & ~fail & (c.kind != _READ)
        rows, rd = np.flatnonzero(wr), np.flatnonzero(read)
        base = clock.base_ns
        # an op whose client was not acknowledged has no known completion, even once a lookup showed it
        # applied: it may have landed any time after its invoke
        acked = c.outcome == _OK

        def times(idx: Any) -> tuple[Any, Any]:
            """Invoke (its earliest) and completion (its latest: truncation taken in here, once)."""
            done = c.completed_us[idx]
            return (c.invoked_us[idx] * 1000 + base,
                    np.where((done >= 0) & acked[idx], done * 1000 + (base + TRUNCATION_NS), NEVER))

        inv, cmp = times(rows)
        r_inv, r_cmp = times(rd)
        amount = c.amount[rows]
        key = keys[np.r_[rows, rd]]
        self._timed_parts.append(_Part(
            key=int(key[0]) if len(key) and (key == key[0]).all() else key, worker=w,
            amount=int(amount[0]) if len(amount) and (amount == amount[0]).all() else amount.astype(np.int64),
            ok=ok[rows], has_value=(ok & has_value)[rows], value=value[rows].astype(np.int64), inv=inv, cmp=cmp,
            op=c.id[rows].astype(np.uint32), r_value=value[rd].astype(np.int64), r_inv=r_inv, r_cmp=r_cmp,
            r_op=c.id[rd].astype(np.uint32)))

    def _timed(self) -> dict[int, TimedOps]:
        """Each key's placed ops, gathered from the batches' parts (field by field, parts freed as it goes)."""
        parts, self._timed_parts = self._timed_parts, []
        if any(not isinstance(p.key, int) for p in parts):  # several keys in a batch: split per key
            parts = [q for p in parts for q in p.split()]
        by_key: dict[int, list[_Part]] = {}
        for p in parts:
            by_key.setdefault(int(p.key), []).append(p)  # type: ignore[arg-type]
        del parts
        workers = [name for name, _ in sorted(self._workers.items(), key=lambda kv: kv[1])]
        out = {k: _gather(ps) for k, ps in by_key.items()}
        start = min((int(min(t.inv.min(initial=NEVER), t.r_inv.min(initial=NEVER))) for t in out.values()),
                    default=0)
        for t in out.values():
            t.workers, t.clocks, t.start_ns = workers, self._worker_clocks, start
        return out

    def prepare(self, c: OpColumns) -> Resolved:
        """The batch's outcomes, values and has-value flags, with this worker's resolved ops applied (reads
        only what the constructor was given: safe in any thread)."""
        res = self._resolutions.get(c.worker)
        if res is None or not len(res.ids):
            return Resolved(c.outcome, c.has_value, c.value)
        rows = np.flatnonzero(c.outcome == _IND)
        if not len(rows):
            return Resolved(c.outcome, c.has_value, c.value)
        at = np.minimum(np.searchsorted(res.ids, c.id[rows]), len(res.ids) - 1)
        found = res.ids[at] == c.id[rows]
        rows, at = rows[found], at[found]
        if not len(rows):
            return Resolved(c.outcome, c.has_value, c.value)
        outcome, has_value, value = c.outcome.copy(), c.has_value.copy(), c.value.copy()
        applied = res.applied[at]
        outcome[rows[applied]] = _OK
        has_value[rows[applied]] = True
        value[rows[applied]] = res.values[at[applied]]
        outcome[rows[~applied]] = _FAIL
        n_applied = int(applied.sum())
        return Resolved(outcome, has_value, value, n_applied, len(rows) - n_applied)

    def key_name(self, i: int) -> str:
        return self._tallies[i].key

    def keys(self) -> list[str]:
        """Every key seen so far."""
        return [t.key for t in self._tallies]

    def latencies_us(self) -> npt.NDArray[np.int64]:
        """Latency of every acknowledged op, sorted (only when asked for at construction)."""
        if not self._latencies:
            return np.zeros(0, dtype=np.int64)
        out = np.sort(np.concatenate(self._latencies))
        self._latencies = [out]
        return out

    def counted(self) -> dict[str, KeyTally]:
        """Each key's counts so far (no values or timed ops): safe to call between batches (online checks)."""
        for i, t in enumerate(self._tallies):
            t.fail = int(self._fail[i])
            t.ok_without_value = int(self._no_value[i])
            t.reads, t.reads_ok = int(self._reads[i]), int(self._reads_ok[i])
            t.ok = sum(t.ok_amounts.values())
            t.ok_sum = sum(a * m for a, m in t.ok_amounts.items())
            t.indeterminate = sum(t.indeterminate_amounts.values())
        return {t.key: t for t in self._tallies}

    def tallies(self) -> dict[str, KeyTally]:
        """One KeyTally per key seen (call once, after the last batch)."""
        timed = self._timed() if self._clocks is not None and self._untimed is None else {}
        _give_back()  # the batches' parts, now gathered
        self.counted()
        for i, t in enumerate(self._tallies):
            t.timed = timed.get(i, TimedOps()) if self._clocks is not None and self._untimed is None else None
            t.untimed = self._untimed
        if self._values:
            parts, self._values = self._values, []
            values = np.concatenate([v for _, v in parts])
            first = parts[0][0]
            if isinstance(first, int) and all(isinstance(k, int) and k == first for k, _ in parts):
                self._tallies[int(first)].ok_values = values  # type: ignore[arg-type]
            else:
                keys = np.concatenate([np.full(len(v), k, dtype=np.int32) if isinstance(k, int) else k
                                       for k, v in parts])
                del parts
                values = values[np.argsort(keys, kind="stable")]
                counts = np.bincount(keys, minlength=len(self._tallies))
                for i, part in enumerate(np.split(values, np.cumsum(counts)[:-1])):
                    if len(part):
                        self._tallies[i].ok_values = part
        return {t.key: t for t in self._tallies}


def _give_back() -> None:
    """Return freed heap memory to the system (glibc). The batches' small arrays live on the heap; once
    gathered into a few large ones (which get their own mappings) they leave hundreds of MB of free
    but resident heap behind that nothing else reuses."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


class _Part:
    """One batch's placed ops (``key``, ``worker``, ``amount``: a number when the batch has one)."""

    __slots__ = ("amount", "cmp", "has_value", "inv", "key", "ok", "op", "r_cmp", "r_inv", "r_op", "r_value",
                 "value", "worker")

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self, name, value)

    def n(self) -> int:
        return len(self.inv)

    def split(self) -> list[_Part]:
        """One part per key (the writes' keys first, then the reads')."""
        if isinstance(self.key, int):
            return [self]
        nw = self.n()
        wk, rk = self.key[:nw], self.key[nw:]
        out = []
        for k in np.unique(self.key).tolist():
            a, b = wk == k, rk == k
            out.append(_Part(key=k, worker=self.worker,
                             amount=self.amount if isinstance(self.amount, int) else self.amount[a],
                             ok=self.ok[a], has_value=self.has_value[a], value=self.value[a], inv=self.inv[a],
                             cmp=self.cmp[a], op=self.op[a], r_value=self.r_value[b], r_inv=self.r_inv[b],
                             r_cmp=self.r_cmp[b], r_op=self.r_op[b]))
        return out


def _gather(parts: list[_Part]) -> TimedOps:
    """One key's TimedOps from its parts, one field at a time (each field's parts dropped once gathered)."""
    def take(name: str) -> Any:
        arrays = [getattr(p, name) for p in parts]
        for p in parts:
            setattr(p, name, None)
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    sizes = [p.n() for p in parts]
    r_sizes = [len(p.r_inv) for p in parts]
    amounts = {p.amount for p in parts if isinstance(p.amount, int)}
    if len(amounts) == 1 and all(isinstance(p.amount, int) for p in parts):
        amount = np.broadcast_to(np.int64(amounts.pop()), (sum(sizes),))  # one amount: no memory per op
    else:
        amount = np.concatenate([np.full(n, p.amount, dtype=np.int64) if isinstance(p.amount, int) else p.amount
                                 for p, n in zip(parts, sizes, strict=True)])
    worker = np.repeat(np.array([p.worker for p in parts], dtype=np.uint16), sizes)
    r_worker = np.repeat(np.array([p.worker for p in parts], dtype=np.uint16), r_sizes)
    return TimedOps(amount=amount, ok=take("ok"), has_value=take("has_value"), value=take("value"), inv=take("inv"),
                    cmp=take("cmp"), worker=worker, op=take("op"), r_value=take("r_value"), r_inv=take("r_inv"),
                    r_cmp=take("r_cmp"), r_worker=r_worker, r_op=take("r_op"))
