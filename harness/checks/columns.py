"""Per-key tallies of a history read in columns (numpy): no Python object per op.

``ColumnTally.add`` takes each batch of ops the history reader hands over and keeps, per key,
counts by outcome and amount (exact Python ints) and the values acknowledged ops returned (one
int64 array per key at the end, for unique-values). The result is the same ``KeyTally`` the
checks get from ``tally(ops)`` of hand-built histories.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.checks.model import KeyTally
from harness.history import OUTCOMES, OpColumns
from harness.ops import Outcome

_OK, _FAIL, _IND = (OUTCOMES.index(o) for o in (Outcome.OK, Outcome.FAIL, Outcome.INDETERMINATE))


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


class ColumnTally:
    """Accumulates batches of ops (any workers, any versions) into one KeyTally per key.

    ``resolutions``: indeterminate ops a lookup resolved after the run count as what it said --
    ok with the value it reported, or fail (never applied)."""

    def __init__(self, *, latencies: bool = False, resolutions: dict[str, Resolution] | None = None) -> None:
        self._index: dict[str, int] = {}
        self._tallies: list[KeyTally] = []
        self._fail = np.zeros(0, dtype=np.int64)
        self._no_value = np.zeros(0, dtype=np.int64)
        # per batch: (its key, or each value's key) and the values acknowledged ops returned
        self._values: list[tuple[int | npt.NDArray[np.int32], Any]] = []
        self._luts: dict[int, tuple[Sequence[str], npt.NDArray[np.int64]]] = {}
        self._latencies: list[npt.NDArray[np.int64]] | None = [] if latencies else None
        self._resolutions = resolutions or {}
        self.resolved_applied = 0
        self.resolved_not_applied = 0
        self.ops = 0
        self.retried_ops = 0
        self.retry_attempts = 0
        self.invoked_min: int | None = None
        self.invoked_max: int | None = None

    def _key_indices(self, c: OpColumns) -> npt.NDArray[np.int64]:
        """Each row's key as an index into this tally's keys."""
        strings = c.strings
        entry = self._luts.get(id(strings))
        lut = entry[1] if entry is not None and entry[0] is strings else np.zeros(0, dtype=np.int64)
        if len(lut) < len(strings) + 1:
            lut = np.concatenate([lut, np.full(len(strings) + 1 - len(lut), -1, dtype=np.int64)])
        used = np.bincount(c.key, minlength=len(lut))
        for sid in np.flatnonzero((used > 0) & (lut < 0)).tolist():
            key = strings[sid - 1]
            i = self._index.get(key)
            if i is None:
                i = self._index[key] = len(self._tallies)
                self._tallies.append(KeyTally(key=key))
            lut[sid] = i
        self._luts[id(strings)] = (strings, lut)  # the strings are kept, so their id is not reused
        n = len(self._tallies)
        if len(self._fail) < n:
            grow = n - len(self._fail)
            self._fail = np.concatenate([self._fail, np.zeros(grow, dtype=np.int64)])
            self._no_value = np.concatenate([self._no_value, np.zeros(grow, dtype=np.int64)])
        return lut[c.key]

    def add(self, c: OpColumns) -> None:
        n = len(c)
        if not n:
            return
        self.ops += n
        keys = self._key_indices(c)
        nkeys = len(self._tallies)
        outcome, has_value, value = self._resolved(c)
        ok = outcome == _OK
        fail = outcome == _FAIL
        undecided = ~(ok | fail)
        self._fail += np.bincount(keys[fail], minlength=nkeys)
        for k, a, m in _pairs(keys[ok], c.amount[ok]):
            self._tallies[k].ok_amounts[a] += m
        for k, a, m in _pairs(keys[undecided], c.amount[undecided]):
            self._tallies[k].indeterminate_amounts[a] += m
        with_value = ok & has_value
        self._no_value += np.bincount(keys[ok & ~has_value], minlength=nkeys)
        if with_value.any():
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
        if self._latencies is not None:
            done = ok & (c.completed_us >= 0)  # an op resolved after the run never completed here
            self._latencies.append((c.completed_us[done] - c.invoked_us[done]).astype(np.int64))

    def _resolved(self, c: OpColumns) -> tuple[Any, Any, Any]:
        """The batch's outcomes, values and has-value flags, with this worker's resolved ops applied."""
        res = self._resolutions.get(c.worker)
        if res is None or not len(res.ids):
            return c.outcome, c.has_value, c.value
        rows = np.flatnonzero(c.outcome == _IND)
        if not len(rows):
            return c.outcome, c.has_value, c.value
        at = np.minimum(np.searchsorted(res.ids, c.id[rows]), len(res.ids) - 1)
        found = res.ids[at] == c.id[rows]
        rows, at = rows[found], at[found]
        if not len(rows):
            return c.outcome, c.has_value, c.value
        outcome, has_value, value = c.outcome.copy(), c.has_value.copy(), c.value.copy()
        applied = res.applied[at]
        outcome[rows[applied]] = _OK
        has_value[rows[applied]] = True
        value[rows[applied]] = res.values[at[applied]]
        outcome[rows[~applied]] = _FAIL
        self.resolved_applied += int(applied.sum())
        self.resolved_not_applied += int((~applied).sum())
        return outcome, has_value, value

    def latencies_us(self) -> npt.NDArray[np.int64]:
        """Latency of every acknowledged op, sorted (only when asked for at construction)."""
        if not self._latencies:
            return np.zeros(0, dtype=np.int64)
        out = np.sort(np.concatenate(self._latencies))
        self._latencies = [out]
        return out

    def tallies(self) -> dict[str, KeyTally]:
        """One KeyTally per key seen (call once, after the last batch)."""
        for i, t in enumerate(self._tallies):
            t.fail = int(self._fail[i])
            t.ok_without_value = int(self._no_value[i])
            t.ok = sum(t.ok_amounts.values())
            t.ok_sum = sum(a * m for a, m in t.ok_amounts.items())
            t.indeterminate = sum(t.indeterminate_amounts.values())
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
