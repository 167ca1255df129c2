"""realtime-order: an op that starts after another has finished lands beyond it.

For ops that all move a counter the same way: an op of amount ``a`` that returned the value after it
applied, ``v``, occupied the range ``(v - a, v]`` of the counter (``(v, v + a]`` for the value before,
as UPDATED_OLD returns it). If op A completed before op B was invoked, B's range lies beyond A's (above
it for increments, below for decrements); and no two applied ops occupy the same part of the counter,
whatever their times -- ranges that overlap counted one change twice. Either is a linearizability
violation even where totals and uniqueness hold: a cache or an id allocator handing out values out of
order, a "+2 -> 2" then "+5 -> 5" where the second missed the first. And a range lies within ``(I, F]``
(a "+3 -> 2" from 0 started at -1, a state the counter never had). For amounts of one a range is its
value, and the rule is that later ops get higher values (``unique-values`` holds them to ``(I, F]``).

Ops sorted by completion, with a running maximum of where their ranges end; ranges sorted by start:
O(n log n), no search. Times are on one timeline (``harness.checks.timed``), widened by truncation and
clock uncertainty, so an order is only read where it holds. An op a lookup showed applied has no known
completion (it may have landed after its client gave up): it is never "before" anything, though its
invoke still orders it after what had finished. Equal values are not this check's (unique-values').
What it cannot see: an op without a returned value, and an order between ops whose intervals overlap.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from harness.checks.model import Check, CheckResult, Completeness, KeyTally, noted
from harness.checks.timed import TimedOps, later_but_behind, moved

NAME = "realtime-order"
_NONE = np.iinfo(np.int64).max


def order_violations(value: Any, inv_lo: Any, cmp_hi: Any, which: Any = None) -> tuple[int, int, int]:
    """How many ops started after a higher-valued op had completed, and one witness (a, b) by index:
    a completed before b was invoked, yet b's value is below a's. ``value`` must increase in time;
    ``which`` (a mask) compares only those ops. (0, -1, -1) when the order holds. Inputs are only read.

    Lean, for 10M ops: one int64 array per op at a time besides the order and the inputs."""
    rows = None if which is None else np.flatnonzero(which)
    values = value if rows is None else value[rows]
    n = len(values)
    if n < 2:
        return 0, -1, -1
    # lowest value first; a counter's values come nearly in order, which a stable sort (timsort) runs through
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    del values
    equal = ordered[1:] == ordered[:-1]
    del ordered
    if rows is not None:
        np.take(rows, order, out=order)  # into the inputs' rows
        del rows
    # the earliest completion from each position on, in value order
    from_here = cmp_hi[order]
    np.minimum.accumulate(from_here[::-1], out=from_here[::-1])
    bad = np.zeros(n, dtype=bool)
    if not equal.any():  # distinct values (the usual case): the earliest among higher ones is the next on
        np.less(from_here[1:], inv_lo[order[:-1]], out=bad[:-1])
    else:  # a run of equal values looks past its own end
        ends = np.flatnonzero(np.r_[~equal, True])
        after = np.repeat(ends + 1, np.diff(np.r_[-1, ends]))
        earlier = np.where(after < n, from_here[np.minimum(after, n - 1)], _NONE)
        del ends, after
        np.less(earlier, inv_lo[order], out=bad)
    del equal, from_here
    count = int(np.count_nonzero(bad))
    if not count:
        return 0, -1, -1
    b = int(np.argmax(bad))
    higher = order[b + 1:][value[order[b + 1:]] > value[order[b]]]
    a = int(higher[np.argmin(cmp_hi[higher])])
    return count, a, int(order[b])


def ranges(t: TimedOps, which: Any, direction: int, returns: Literal["after", "before"]) -> tuple[Any, Any, Any]:
    """The writes ``which`` selects, as ranges of the counter turned to go up: (start, end] and the
    returned value's position (``direction`` -1 turns decrements' ranges around)."""
    v = t.value[which] * direction
    a = t.amount[which] * direction
    return (v - a, v, v) if returns == "after" else (v, v + a, v)


def _running_max(values: Any) -> tuple[Any, Any]:
    """The maximum of ``values[:k + 1]`` for each k, and the index of the (last) one holding it."""
    top = np.maximum.accumulate(values)
    where = np.maximum.accumulate(np.where(values == top, np.arange(len(values)), 0))
    return top, where


def range_order_violations(start: Any, end: Any, pos: Any, inv_lo: Any, cmp_hi: Any) -> tuple[int, int, int]:
    """How many ops began after an op whose range ends beyond their start had finished, and one witness
    (a, b): a completed before b was invoked, yet b's range starts below a's end. Pairs that returned the
    same value are unique-values' finding. (0, -1, -1) when the order holds."""
    n = len(start)
    if n < 2:
        return 0, -1, -1
    order = np.argsort(cmp_hi, kind="stable")
    top, where = _running_max(end[order])
    before = np.searchsorted(cmp_hi[order], inv_lo, side="left")  # ops certainly done before each began
    has = before > 0
    k = np.maximum(before - 1, 0)
    first = order[where[k]]
    bad = has & (start < top[k]) & (pos[first] != pos)
    count = int(np.count_nonzero(bad))
    if not count:
        return 0, -1, -1
    b = int(np.argmax(bad))
    return count, int(first[b]), b


def overlaps(start: Any, end: Any, pos: Any) -> tuple[int, int, int]:
    """How many ranges start below the end of one that starts no later (ranges that overlap), and one
    witness pair. Pairs that returned the same value are unique-values' finding. Any overlap is found:
    of the first range that overlaps an earlier one of another value, the earlier range reaching
    furthest holds another value too, or that one and the earlier overlap before it."""
    n = len(start)
    if n < 2:
        return 0, -1, -1
    order = np.lexsort((end, start))
    top, where = _running_max(end[order])
    s, p = start[order], pos[order]
    earlier = order[where[:-1]]
    bad = (s[1:] < top[:-1]) & (pos[earlier] != p[1:])
    count = int(np.count_nonzero(bad))
    if not count:
        return 0, -1, -1
    i = int(np.argmax(bad))
    return count, int(earlier[i]), int(order[i + 1])


def check_realtime_order(*, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
                         returns: Literal["after", "before"] = "after") -> CheckResult:
    if t.streamed is not None:  # folded as the history streamed (harness.checks.stream)
        return t.streamed.result(NAME, key=key, initial=initial, final=final, t=t, history=history, returns=returns)
    ev: dict[str, Any] = {}
    if t.timed is None:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={"reason": f"the ops could not be placed in time: {t.untimed or 'no timing'}"})
    signs = history.possible_signs(t.signs)
    if len(signs) > 1:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={"reason": "amounts of both signs: values need not move one way"})
    T = t.timed
    compared = int(np.count_nonzero(T.has_value))
    ev["compared"] = compared
    if not compared:
        if t.ok == 0:
            return CheckResult(name=NAME, key=key, valid=True, evidence={**ev, "reason": "no acknowledged op"})
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={**ev, "reason": "no acknowledged op returned a value"})
    direction = -1 if signs == {-1} else 1
    if T.amount_if_one() in (1, -1):  # a range is its value: the order of values, lean for 10M ops (no copy)
        which = None if compared == len(T.has_value) else T.has_value
        count, a, b = order_violations(T.value if direction > 0 else -T.value, *T.intervals(), which)
        ev["out_of_order"] = count
        if not count:
            return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
        first, second = T.witness(a), T.witness(b)
        return CheckResult(name=NAME, key=key, valid=False,
                           evidence={**ev, "witness": [first, second], "reason": later_but_behind(first, second)})
    return _check_ranges(key, T, ev, initial, final, direction, returns)


def _check_ranges(key: str, T: TimedOps, ev: dict[str, Any], initial: int, final: int | None, direction: int,
                  returns: Literal["after", "before"]) -> CheckResult:
    """realtime-order for amounts other than one: the order of ranges, their overlaps, and their bounds."""
    rows = np.flatnonzero(T.has_value)
    start, end, pos = ranges(T, rows, direction, returns)
    count, a, b = range_order_violations(start, end, pos, *T.intervals(rows))
    crossed, i, j = overlaps(start, end, pos)
    # a counter moving one way stays within (I, F]: a range reaching out of it came from a state it
    # never had, or went to one it lost
    below = start < initial * direction
    out = below | (end > final * direction) if final is not None else below
    ev.update(out_of_order=count, outside=int(np.count_nonzero(out)))
    ev["overlapping"] = crossed + ev["outside"]
    if not count and not ev["overlapping"]:
        return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
    if count:
        first, second = T.witness(int(rows[a])), T.witness(int(rows[b]))
        ev.update(witness=[first, second], reason=_missed(first, second, returns))
    elif crossed:
        first, second = T.witness(int(rows[i])), T.witness(int(rows[j]))
        ev.update(witness=[first, second],
                  reason=f"op {first['op']} ({first['process']}) took the counter {moved(first, returns)} and op "
                         f"{second['op']} ({second['process']}) {moved(second, returns)}: one change counted by both")
    else:
        k = int(np.argmax(out))
        w = T.witness(int(rows[k]))
        bound = f"started at {initial}" if below[k] else f"ended at {final}"
        ev.update(witness=[w], reason=f"op {w['op']} ({w['process']}) took the counter {moved(w, returns)}, but the "
                                      f"counter {bound} and moves one way")
    return CheckResult(name=NAME, key=key, valid=False, evidence=ev)


def _missed(first: dict[str, Any], second: dict[str, Any], returns: Literal["after", "before"]) -> str:
    return (f"op {first['op']} ({first['process']}) finished at {first['completed_s']:.6f} s, having taken the "
            f"counter {moved(first, returns)}; op {second['op']} ({second['process']}) started later, at "
            f"{second['invoked_s']:.6f} s, and took it {moved(second, returns)}: it missed the change before it")


def describe(r: CheckResult) -> str:
    if (said := noted(r)) is not None:
        return said
    e = r.evidence
    if r.valid:
        said = (f"{e['compared']:,} returned values compared: none came below a value whose op had finished "
                "before it started")
        return said + ("; no two changes overlapped" if "overlapping" in e else "")
    if not e.get("out_of_order"):
        return f"{e['overlapping']:,} changes overlap another's or lie out of the counter's range: {e['reason']}"
    return f"{e['out_of_order']:,} ops got a value below one already handed out before they started: {e['reason']}"


CHECK = Check(name=NAME, fn=check_realtime_order, findings=(("out_of_order", "out of real-time order"),
                                                            ("overlapping", "changes overlapping another's or "
                                                                            "out of the counter's range")),
              timed=True,
              describe=describe)
