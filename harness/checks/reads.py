"""reads: every read during the run lies within what the writes around it allow, and reads move one way.

For an acknowledged read r of a key (initial I): the writes certainly applied before it are the
acknowledged ones that completed before r was invoked (C); the writes that may have been are all
not known to have failed that were invoked before r completed (P, which holds C). So
``lower = I + C's increments + P's decrements`` and ``upper = I + C's decrements + P's increments``
(Jepsen's counter read rule, for amounts of either sign). A read below ``lower`` is stale (a cache, a
lagging replica, an eventually consistent read); one above ``upper`` saw changes nobody had sent yet.
And if read r1 completed before read r2 was invoked, r2 lies at or beyond r1 (reads are monotonic in
real time, for a counter moving one way).

Times are truncated to the microsecond: a write sent in the microsecond a read was answered may be
in it; one answered in the microsecond the read was sent is not certainly before it.

With an incomplete history, missing writes of the workload's sign can only widen the bound on their
side: a read is then invalid only beyond the other. What it cannot see: a read without a value, and
anything between writes whose intervals overlap the read's.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from harness.checks.model import EVIDENCE_CAP, Check, CheckResult, Completeness, KeyTally, noted
from harness.checks.realtime import order_violations
from harness.checks.timed import later_but_behind

NAME = "reads"


def _sums_before(times: Any, amounts: Any, one: int | None, at: Any, *, strictly: bool) -> tuple[Any, Any]:
    """For each of ``at``: the sums of the positive and of the negative ``amounts`` whose time is earlier
    (``strictly``, or at the same microsecond too; ``one``: the amount every op asks for, which needs a
    count only)."""
    side: Literal["left", "right"] = "left" if strictly else "right"
    if one is not None:
        s = np.searchsorted(np.sort(times, kind="stable"), at, side=side) * one
        return (s, 0) if one >= 0 else (0, s)
    order = np.argsort(times, kind="stable")
    before = np.searchsorted(times[order], at, side=side)
    a = amounts[order]
    del order
    pos = np.r_[0, np.cumsum(np.maximum(a, 0))][before]
    return pos, np.r_[0, np.cumsum(np.minimum(a, 0))][before]


def read_bounds(t: Any, initial: int) -> tuple[Any, Any]:
    """``lower`` and ``upper`` of every acknowledged read of a key's placed ops (int64 arrays)."""
    r_inv_lo, r_cmp_hi = t.intervals(read=True)
    one = t.amount_if_one()
    w_inv_lo, _ = t.intervals()
    # sent before the read's answer came (the same microsecond may be before: times are truncated)
    p_pos, p_neg = _sums_before(w_inv_lo, t.amount, one, r_cmp_hi, strictly=False)
    del w_inv_lo
    _, w_cmp_hi = t.intervals(t.ok)  # acknowledged before the read was sent
    c_pos, c_neg = _sums_before(w_cmp_hi, None if one is not None else t.amount[t.ok], one, r_inv_lo,
                                strictly=True)
    return initial + c_pos + p_neg, initial + c_neg + p_pos


def check_reads(*, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
                returns: Literal["after", "before"] = "after") -> CheckResult:
    ev: dict[str, Any] = {"reads": t.reads_ok}
    if t.reads_ok == 0:
        return CheckResult(name=NAME, key=key, valid=True, evidence={**ev, "reason": "no acknowledged read"})
    if t.timed is None:
        return CheckResult(name=NAME, key=key, valid=None, evidence={
            **ev, "reason": f"the ops could not be placed in time: {t.untimed or 'no timing'}"})
    T = t.timed
    lower, upper = read_bounds(T, initial)
    value = T.r_value
    stale = value < lower
    ahead = value > upper
    if not history.complete:  # a missing write of the workload's sign widens the bound on its side
        if 1 in history.op_signs:
            ahead[:] = False
        if -1 in history.op_signs:
            stale[:] = False
    ev.update(stale=int(stale.sum()), ahead=int(ahead.sum()))
    signs = history.possible_signs(t.signs)
    backwards, a, b = 0, -1, -1
    if len(signs) == 1:
        direction = -1 if signs == {-1} else 1
        backwards, a, b = order_violations(value * direction, *T.intervals(read=True))  # equal is fine
    ev["backwards"] = backwards
    if not (stale.any() or ahead.any() or backwards):
        return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
    ev["bad_reads"] = int(stale.sum() + ahead.sum()) + backwards
    bad = np.flatnonzero(stale | ahead)
    if len(bad):
        i = int(bad[0])
        read = T.witness(i, read=True)
        ev["witness"] = [read]
        if stale[i]:  # the acknowledged write, finished before the read was sent, that it did not see
            _, w_cmp_hi = T.intervals()
            before = np.flatnonzero(T.ok & T.has_value & (w_cmp_hi < T.intervals(i, read=True)[0]))
            if len(before):
                ev["witness"] = [T.witness(int(before[np.argmax(T.value[before] * (-1 if signs == {-1} else 1))])),
                                 read]
        ev["bounds"] = [int(lower[i]), int(upper[i])]
        if stale[i]:
            why = f"the changes acknowledged before it was sent had already taken the counter to {int(lower[i])}"
        else:
            why = f"all the changes sent before its answer came could take the counter to {int(upper[i])} at most"
        ev["reason"] = (f"read op {read['op']} ({read['process']}), sent at {read['invoked_s']:.6f} s and answered at "
                        f"{read['completed_s']:.6f} s, got {read['value']}; {why}")
        ev["stale_reads"] = [int(x) for x in value[stale][:EVIDENCE_CAP].tolist()]
    else:
        first, second = T.witness(a, read=True), T.witness(b, read=True)
        ev["witness"] = [first, second]
        ev["reason"] = f"{later_but_behind(first, second, noun='read op', process=False)}: the counter went back"
    return CheckResult(name=NAME, key=key, valid=False, evidence=ev)


def describe(r: CheckResult) -> str:
    if (said := noted(r)) is not None:
        return said
    e = r.evidence
    if r.valid:
        return f"{e['reads']:,} reads, each within what the writes around it allow, none going back"
    counts = ", ".join(f"{e[k]:,} {w}" for k, w in (("stale", "stale"), ("ahead", "ahead of every write sent"),
                                                       ("backwards", "going back")) if e.get(k))
    return f"{counts}: {e['reason']}"


CHECK = Check(name=NAME, fn=check_reads, findings=(("bad_reads", "reads out of bounds or going back"),), timed=True,
              describe=describe)
