"""unique-values and gaps as a fold: a key's values taken one chunk at a time, in memory bounded by what is
in flight (and by what is wrong), not by the run.

Positions are a value's place in the counter's walk (``harness.checks.gaps``): 0 for the first value past
the initial one, ``span - 1`` for the final. The fold keeps the highest position any write or read has
reached, and the *holes*: positions at or below it that no acknowledged op returned yet -- the values of
ops still in flight, and gaps. A value at or below that height that is not a hole was returned before:
handed out twice. Each hole carries its deadline, the latest time it can have been made: before the
first answer of any op with a higher value, and before any acknowledged read that saw the counter at or
past it. A deadline is a minimum over ops of higher positions, whatever their order, so chunks may come
in any order -- chunks in time keep the holes few.

What it cannot do: a value handed out twice makes that value's deadline its latest answer (``gaps``),
which a fold of minima cannot take back; gaps then says it cannot decide (unique-values has failed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.checks.gaps import match_gaps
from harness.checks.model import EVIDENCE_CAP

MAX = np.iinfo(np.int64).max
HOLE_CAP = 1 << 24  # new holes one chunk may open: more, and the counter ran far beyond what ops could do
REPEATED_CAP = 1 << 22  # distinct repeated values counted one by one (the total stays exact beyond)
SETTLE_AT = 4096  # holes kept moving before the settled are set apart (then twice as many as are left)
OUTSIDE_CAP = 1 << 22  # distinct values out of range kept (beyond: counted as at least)


class Holes:
    """The fold of one key's values: ``first`` is the value (turned to go up) at position 0, ``span`` the
    number of positions (None: the final value is unknown, no upper end)."""

    def __init__(self, *, first: int, span: int | None) -> None:
        self.first, self.span = first, span
        self.reached = -1
        self.pos = np.zeros(0, dtype=np.int64)  # holes whose deadline may still move, ascending
        self.deadline = np.zeros(0, dtype=np.int64)
        # holes whose deadline no op still to come can move (every answer still to come is later): only
        # an op returning one fills it; set apart so a chunk's work does not grow with the gaps of the run
        self.settled_pos = np.zeros(0, dtype=np.int64)
        self.settled_deadline = np.zeros(0, dtype=np.int64)
        self._settle_at = SETTLE_AT
        self.values = 0  # acknowledged values, in range or not
        self.extra = 0  # occurrences of a value beyond its first (duplicate_values)
        self._repeats: list[Any] = []  # values (not positions) of those occurrences, compacted now and then
        self._repeated: tuple[Any, Any] = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self.repeats_complete = True
        self._outside = np.zeros(0, dtype=np.int64)  # distinct values out of range, ascending
        self.outside_complete = True
        self.outside_more = 0  # distinct values out of range not kept (at least)
        self.duplicated = False  # a value in range came twice: gaps cannot decide
        self.too_far: str | None = None  # why holes stopped being kept
        self._candidates: list[Any] = []  # invokes of uncertain writes

    def add(self, wpos: Any, answer: Any, rpos: Any, r_answer: Any, candidates: Any, *,
            frontier: int | None = None) -> None:
        """One chunk: the positions acknowledged writes returned and their answers (completion, or the
        end of time for one a lookup showed applied), the positions acknowledged reads saw (as gaps
        places them) with their completions, and the invokes of this chunk's uncertain writes.
        ``frontier``: no answer still to come is earlier (None: unknown)."""
        if len(candidates):
            self._candidates.append(np.asarray(candidates, dtype=np.int64))
        self.values += len(wpos)
        inside = wpos >= 0 if self.span is None else (wpos >= 0) & (wpos < self.span)
        if not inside.all():
            self._add_outside(wpos[~inside])
            wpos, answer = wpos[inside], answer[inside]
        r_answer, rpos = r_answer[rpos >= 0], rpos[rpos >= 0]  # a read below the first position saw none
        if self.span is not None:
            rpos = np.minimum(rpos, self.span - 1)  # a read past the end saw every position
        if self.too_far is not None:
            self._count_repeats(wpos)
            return
        old = self.reached
        top = max(int(wpos.max(initial=-1)), int(rpos.max(initial=-1)), old)
        if top - old > HOLE_CAP:
            self.too_far = f"values reached {top - old:,} positions past the ones before at once"
            self._count_repeats(wpos)
            return
        distinct, counts = _counted(wpos)
        if top > old:  # positions reached for the first time: holes unless this chunk returned them
            fresh = np.ones(top - old, dtype=bool)
            fresh[distinct[distinct > old] - old - 1] = False
            opened = np.flatnonzero(fresh) + (old + 1)
            self.pos = np.concatenate([self.pos, opened])
            self.deadline = np.concatenate([self.deadline, np.full(len(opened), MAX, dtype=np.int64)])
            self.reached = top
        # deadlines: a write at p bounds every hole below it, a read at p every hole at or below it
        caps = np.concatenate([wpos - 1, rpos])
        if len(caps) and len(self.pos):
            order = np.argsort(caps, kind="stable")
            at = np.concatenate([answer, r_answer])[order]
            caps = caps[order]
            first_at = np.minimum.accumulate(at[::-1])[::-1]  # the earliest cap from each on
            i = np.searchsorted(caps, self.pos, side="left")
            has = i < len(caps)
            np.minimum(self.deadline, np.where(has, first_at[np.minimum(i, len(caps) - 1)], MAX), out=self.deadline)
        # returned values fill their holes; one at or below the old height that is no hole came before
        old_values = distinct[distinct <= old]
        hit = np.zeros(len(old_values), dtype=bool)
        if len(old_values) and len(self.pos):
            j = np.minimum(np.searchsorted(self.pos, old_values), len(self.pos) - 1)
            hit = self.pos[j] == old_values
            if hit.any():
                keep = np.ones(len(self.pos), dtype=bool)
                keep[j[hit]] = False
                self.pos, self.deadline = self.pos[keep], self.deadline[keep]
        again = old_values[~hit]
        if len(again) and len(self.settled_pos):
            j = np.minimum(np.searchsorted(self.settled_pos, again), len(self.settled_pos) - 1)
            late = self.settled_pos[j] == again  # an op long out returned a value settled as a hole
            if late.any():
                keep = np.ones(len(self.settled_pos), dtype=bool)
                keep[j[late]] = False
                self.settled_pos, self.settled_deadline = self.settled_pos[keep], self.settled_deadline[keep]
                again = again[~late]
        if frontier is not None and len(self.pos) > self._settle_at:
            self._settle(frontier)
        twice = distinct[counts > 1]
        extra = np.concatenate([again, np.repeat(twice, counts[counts > 1] - 1)])
        if len(extra):
            self.duplicated = True
            self._note_repeats(extra + self.first)

    def _settle(self, frontier: int) -> None:
        """Set apart the holes whose deadline is before every answer still to come."""
        done = self.deadline < frontier
        if done.any():
            pos = np.concatenate([self.settled_pos, self.pos[done]])
            order = np.argsort(pos, kind="stable")
            self.settled_pos = pos[order]
            self.settled_deadline = np.concatenate([self.settled_deadline, self.deadline[done]])[order]
            self.pos, self.deadline = self.pos[~done], self.deadline[~done]
        self._settle_at = max(SETTLE_AT, 2 * len(self.pos))

    def _count_repeats(self, wpos: Any) -> None:
        """Holes no longer kept: repeats within the chunk are all that is seen (gaps has given up)."""
        distinct, counts = _counted(wpos)
        if (counts > 1).any():
            self.duplicated = True
            self._note_repeats(np.repeat(distinct[counts > 1], counts[counts > 1] - 1) + self.first)
        self.repeats_complete = False

    def _add_outside(self, pos: Any) -> None:
        values = pos + self.first
        distinct, counts = np.unique(values, return_counts=True)
        known = np.isin(distinct, self._outside, assume_unique=True)
        extra = np.concatenate([distinct[known], np.repeat(distinct, counts - 1)])
        if len(extra):
            self._note_repeats(extra)
        new = distinct[~known]
        room = OUTSIDE_CAP - len(self._outside)
        if len(new) > room:
            self.outside_complete = False
            self.outside_more += len(new) - max(room, 0)
            new = new[:max(room, 0)]
        if len(new):
            self._outside = np.union1d(self._outside, new)

    def _note_repeats(self, values: Any) -> None:
        """Occurrences of values (turned to go up) seen before: counted, and kept by value for the list of
        the most repeated (compacted into distinct values and counts now and then)."""
        self.extra += len(values)
        self._repeats.append(np.asarray(values, dtype=np.int64))
        if sum(len(r) for r in self._repeats) > REPEATED_CAP:
            self._compact()

    def _compact(self) -> None:
        vals, times = self._repeated
        allv = np.concatenate([np.repeat(vals, times), *self._repeats])
        self._repeats = []
        vals, times = np.unique(allv, return_counts=True)
        if len(vals) > REPEATED_CAP:  # keep the most repeated only: the list shows a few
            keep = np.sort(np.argsort(-times, kind="stable")[:REPEATED_CAP])
            vals, times = vals[keep], times[keep]
            self.repeats_complete = False
        self._repeated = (vals, times)

    def repeated(self) -> tuple[Any, Any]:
        """Values (turned to go up) returned more than once, ascending, and how many times each was."""
        self._compact()
        vals, extra = self._repeated
        return vals, extra + 1

    def outside(self) -> Any:
        """Distinct values (turned to go up) out of range, ascending."""
        return self._outside

    def gaps(self) -> tuple[int, int, int, list[int]]:
        """(gaps, uncertain ops, gaps matched to one, the first phantom positions): every hole, and every
        position past the highest reached (made by no op that answered), matched to the uncertain writes."""
        c_inv = np.concatenate(self._candidates) if self._candidates else np.zeros(0, dtype=np.int64)
        n_c = len(c_inv)
        tail = max((self.span or 0) - self.reached - 1, 0)  # never reached: no deadline
        pos = np.concatenate([self.settled_pos, self.pos])
        order = np.argsort(pos, kind="stable")
        pos, deadline = pos[order], np.concatenate([self.settled_deadline, self.deadline])[order]
        matched = match_gaps(deadline, c_inv) if len(pos) else np.zeros(0, dtype=bool)
        phantoms = pos[~matched]
        done = int(matched.sum())
        # past the highest position, every candidate is usable: they match in order until none is left
        tail_matched = min(tail, max(0, n_c - done))
        first = [int(p) for p in phantoms[:EVIDENCE_CAP].tolist()]
        if tail > tail_matched and len(first) < EVIDENCE_CAP:
            start = self.reached + 1 + tail_matched
            first += list(range(start, start + min(EVIDENCE_CAP - len(first), tail - tail_matched)))
        return len(pos) + tail, n_c, done + tail_matched, first


def _counted(pos: Any) -> tuple[Any, Any]:
    """Distinct positions, ascending, and how often each came: by counting where they lie close together
    (a chunk of a counter's values, the usual case), else by sorting."""
    if not len(pos):
        return pos, pos
    lo, hi = int(pos.min()), int(pos.max())
    if hi - lo > 4 * len(pos) + 4096:
        return np.unique(pos, return_counts=True)
    counts = np.bincount(pos - lo)
    distinct = np.flatnonzero(counts)
    return distinct + lo, counts[distinct]
