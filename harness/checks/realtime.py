"""realtime-order: an op that starts after another has finished returns a value beyond it.

For ops that all move a counter the same way and return the value after (or before) they applied:
if op a completed before op b was invoked, b's value lies beyond a's (above it for increments,
below for decrements). A violation is a linearizability violation even where totals and
uniqueness hold: a cache or an id allocator handing out values out of order.

Sorted by value, with a running minimum of completion times: O(n log n), no search. Times are on
one timeline (``harness.checks.timed``); an interval is widened by its process's clock uncertainty,
so an order is only read where it holds. Equal values are not this check's (unique-values').
What it cannot see: an op without a returned value, an op that never completed (it may have been
applied at any time after its invoke), and an order between ops whose intervals overlap.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from harness.checks.model import Check, CheckResult, Completeness, KeyTally, noted
from harness.checks.timed import later_but_behind

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


def check_realtime_order(*, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
                         returns: Literal["after", "before"] = "after") -> CheckResult:
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
    which = None if compared == len(T.has_value) else T.has_value
    count, a, b = order_violations(-T.value if signs == {-1} else T.value, *T.intervals(), which)
    ev["out_of_order"] = count
    if not count:
        return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
    first, second = T.witness(a), T.witness(b)
    ev["witness"] = [first, second]
    ev["reason"] = later_but_behind(first, second)
    return CheckResult(name=NAME, key=key, valid=False, evidence=ev)


def describe(r: CheckResult) -> str:
    if (said := noted(r)) is not None:
        return said
    e = r.evidence
    if r.valid:
        return (f"{e['compared']:,} returned values compared: none came below a value whose op had finished "
                "before it started")
    return f"{e['out_of_order']:,} ops got a value below one already handed out before they started: {e['reason']}"


CHECK = Check(name=NAME, fn=check_realtime_order, findings=(("out_of_order", "out of real-time order"),),
              timed=True,
              describe=describe)
