"""The set of final values an uncertain history can reach (Maelstrom's pn-counter rule).

Each indeterminate op may or may not have been applied, so the reachable finals
are ``base + s`` for every sub-multiset sum ``s`` of the indeterminate amounts.
For all-+1 amounts that is the interval ``[base, base + U]``; for mixed signs or
large amounts it has gaps, which the naive interval would wrongly accept.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter

Interval = tuple[int, int]  # inclusive


class TooManyIntervals(Exception):
    """The reachable set is too fragmented to compute within the cap."""


def _merge(intervals: list[Interval]) -> list[Interval]:
    intervals.sort()
    out: list[Interval] = []
    for lo, hi in intervals:
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def reachable(base: int, amounts: Counter[int], *, cap: int = 100_000) -> list[Interval]:
    """Disjoint sorted intervals of every value ``base + (sum of any subset of amounts)``."""
    intervals: list[Interval] = [(base, base)]
    # small steps first: they fill gaps early, so later copies merge
    for d, m in sorted(amounts.items(), key=lambda kv: abs(kv[0])):
        if d == 0:
            continue
        k = 0
        while k < m:
            if len(intervals) == 1:
                lo, hi = intervals[0]
                if hi - lo + 1 >= abs(d):
                    # shifted copies of a wide-enough interval overlap: the union stays one interval
                    rest = (m - k) * d
                    intervals = [(lo + min(0, rest), hi + max(0, rest))]
                    break
            intervals = _merge(intervals + [(a + d, b + d) for a, b in intervals])
            if len(intervals) > cap:
                raise TooManyIntervals(f"more than {cap} disjoint ranges")
            k += 1
    return intervals


def contains(intervals: list[Interval], value: int) -> bool:
    i = bisect_right(intervals, (value, float("inf"))) - 1
    return i >= 0 and intervals[i][0] <= value <= intervals[i][1]


def nearest(intervals: list[Interval], value: int) -> tuple[int | None, int | None]:
    """The closest reachable values below and above ``value``."""
    below = above = None
    for lo, hi in intervals:
        if hi < value:
            below = hi
        elif lo > value:
            above = lo
            break
        else:
            return value, value
    return below, above
