"""reads: every read during the run lies within what the writes around it allow, and reads move one way.

For an acknowledged read r of a key (initial I): the writes certainly applied before it are the
acknowledged ones that completed before r was invoked (C); the writes that may have been are all
not known to have failed that were invoked before r completed (P, which holds C). So
``lower = I + C's increments + P's decrements`` and ``upper = I + C's decrements + P's increments``
(Jepsen's counter read rule, for amounts of either sign). A read below ``lower`` is stale (a cache, a
lagging replica, an eventually consistent read); one above ``upper`` saw changes nobody had sent yet.

For a key that moves one way, the values writes returned bound a read too -- counts alone lag the
value by every write applied but not yet answered: a write of amount ``a`` that returned ``v`` took the
counter from ``v - a`` to ``v``, so a read is at least where any write acknowledged before it was sent
left the counter, and at most where any write sent after its answer came found it. A read beyond the
final value of such a key saw a state that was later lost, and a read strictly inside the range of one
write (an amount other than one: ``+3`` took it from 0 to 3 at once) saw a value the counter never
held. And if read r1 completed before read r2 was invoked, r2 lies at or beyond r1 (reads are
monotonic in real time). For a key that goes down
(seats) "stale" and "ahead" are meant along its way: a stale read shows seats already taken as free.

Times are widened by their truncation to the microsecond and by clock uncertainty
(``harness.checks.timed``); a write whose client got no acknowledgement -- even one a lookup later
showed applied -- has no known completion, so it is never certainly before a read.

With an incomplete history, missing writes of the workload's sign can only widen the bound on their
side: a read is then invalid only beyond the other. What it cannot see: a read without a value, and
anything between writes whose intervals overlap the read's.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from harness.checks.model import EVIDENCE_CAP, Check, CheckResult, Completeness, KeyTally, noted
from harness.checks.realtime import order_violations
from harness.checks.timed import later_but_behind, moved

NAME = "reads"
_INF = np.iinfo(np.int64).max // 4  # beyond any counter value: no bound


def _sums_before(times: Any, amounts: Any, one: int | None, at: Any, *, strictly: bool) -> tuple[Any, Any]:
    """For each of ``at``: the sums of the positive and of the negative ``amounts`` whose time is earlier
    (``strictly``, or at the same time too; ``one``: the amount every op asks for, which needs a count only)."""
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
    """``lower`` and ``upper`` of every acknowledged read of a key's placed ops, by counts (int64 arrays)."""
    r_inv_lo, r_cmp_hi = t.intervals(read=True)
    one = t.amount_if_one()
    # sent before the read's answer came
    p_pos, p_neg = _sums_before(t.invoked(), t.amount, one, r_cmp_hi, strictly=False)
    # acknowledged before the read was sent
    c_pos, c_neg = _sums_before(t.completed(t.ok), None if one is not None else t.amount[t.ok], one, r_inv_lo,
                                strictly=True)
    return initial + c_pos + p_neg, initial + c_neg + p_pos


def _ends(t: Any, direction: int, returns: Literal["after", "before"], *, start: bool) -> Any:
    """Where each write took the counter from (``start``) or to, turned to go up (garbage where it
    returned no value)."""
    v = t.value if direction > 0 else -t.value
    after = returns == "after"
    if after != start:  # the value returned is the end asked for
        return v
    a = t.amount if direction > 0 else -t.amount
    return v - a if start else v + a


def value_bounds(t: Any, direction: int, returns: Literal["after", "before"]) -> tuple[Any, Any]:
    """For a key moving one way (``direction``), each acknowledged read's bounds by the values writes
    returned, turned to go up: the furthest any write acknowledged before the read was sent took the
    counter (``lower``; -inf if none), and the nearest any write sent after the read's answer came found
    it (``upper``; +inf if none).

    Lean, for 10M ops: the writes are not sorted, each is dropped into the bucket of the reads it bounds
    (the reads sorted by time: a write bounds a run of them), a running maximum (minimum) over the
    buckets does the rest."""
    n = len(t.r_value)
    lower, upper = np.full(n, -_INF), np.full(n, _INF)
    if not n or not t.has_value.any():
        return lower, upper
    r_inv_lo, r_cmp_hi = t.intervals(read=True)
    # lower: a write acknowledged before a read was sent (completion before its invoke) bounds every read
    # sent later; one never acknowledged to its client has no completion (NEVER) and bounds none
    order = np.argsort(r_inv_lo, kind="stable")
    bucket = np.searchsorted(r_inv_lo[order], t.completed(), side="right")
    bucket[~t.has_value] = n
    top = np.full(n + 1, -_INF)
    np.maximum.at(top, bucket, _ends(t, direction, returns, start=False))
    lower[order] = np.maximum.accumulate(top[:n])
    # upper: a write sent after a read's answer came bounds every read answered earlier
    order = np.argsort(r_cmp_hi, kind="stable")
    bucket = np.searchsorted(r_cmp_hi[order], t.invoked(), side="left") - 1
    bucket[~t.has_value | (bucket < 0)] = n
    bottom = np.full(n + 1, _INF)
    np.minimum.at(bottom, bucket, _ends(t, direction, returns, start=True))
    upper[order] = np.minimum.accumulate(bottom[:n][::-1])[::-1]
    return lower, upper


def _inside(T: Any, value: Any, d: int, returns: Literal["after", "before"]) -> Any:
    """Which reads (their values turned to go up) fell strictly inside the range of a write that
    returned a value: a state the counter passed over at once, and never held."""
    rows = np.flatnonzero(T.has_value)
    if not len(rows):
        return np.zeros(len(value), dtype=bool)
    start = _ends(T, d, returns, start=True)[rows]
    end = _ends(T, d, returns, start=False)[rows]
    order = np.argsort(start, kind="stable")
    reach = np.maximum.accumulate(end[order])  # the furthest any range starting this low goes
    k = np.searchsorted(start[order], value, side="left") - 1  # the ranges starting below each value
    return (k >= 0) & (value < reach[np.maximum(k, 0)])


def _holding(T: Any, v: int, d: int, returns: Literal["after", "before"]) -> int:
    """A write whose range holds ``v`` (turned to go up) strictly inside it."""
    start, end = _ends(T, d, returns, start=True), _ends(T, d, returns, start=False)
    return int(np.flatnonzero(T.has_value & (start < v) & (v < end))[0])


def _furthest_before(T: Any, i: int, d: int, returns: Literal["after", "before"]) -> int:
    """The acknowledged write, finished before read ``i`` was sent, that took the counter furthest (-1: none)."""
    before = np.flatnonzero(T.ok & T.has_value & (T.completed() < T.invoked(i, read=True)))
    return int(before[np.argmax(_ends(T, d, returns, start=False)[before])]) if len(before) else -1


def _nearest_after(T: Any, i: int, d: int, returns: Literal["after", "before"]) -> int:
    """The write, sent after read ``i`` was answered, that found the counter least far (-1: none)."""
    after = np.flatnonzero(T.has_value & (T.invoked() > T.completed(i, read=True)))
    return int(after[np.argmin(_ends(T, d, returns, start=True)[after])]) if len(after) else -1


def check_reads(*, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
                returns: Literal["after", "before"] = "after") -> CheckResult:
    if t.streamed is not None:  # folded as the history streamed (harness.checks.stream)
        return t.streamed.result(NAME, key=key, initial=initial, final=final, t=t, history=history, returns=returns)
    ev: dict[str, Any] = {"reads": t.reads_ok}
    if t.reads_ok == 0:
        return CheckResult(name=NAME, key=key, valid=True, evidence={**ev, "reason": "no acknowledged read"})
    if t.timed is None:
        return CheckResult(name=NAME, key=key, valid=None, evidence={
            **ev, "reason": f"the ops could not be placed in time: {t.untimed or 'no timing'}"})
    T = t.timed
    signs = history.possible_signs(t.signs)
    one_way = len(signs) == 1
    d = -1 if signs == {-1} else 1  # bounds are turned to go up: "stale" is behind the counter's way
    lower, upper = read_bounds(T, initial)
    if d < 0:
        lower, upper = -upper, -lower
    v_upper = None
    if one_way:
        v_lower, v_upper = value_bounds(T, d, returns)
        lower, upper = np.maximum(lower, v_lower), np.minimum(upper, v_upper)
    value = T.r_value * d
    stale = value < lower
    ahead = value > upper
    none = np.zeros(len(value), dtype=bool)
    lost = value > final * d if one_way and final is not None else none
    # a change of more than one moved the counter past the values between at once: none was ever read
    never = _inside(T, value, d, returns) if one_way and T.amount_if_one() not in (1, -1) else none
    if not history.complete:  # a missing write of the workload's sign widens the bound on its side
        if d in history.op_signs:
            ahead[:] = False
        if -d in history.op_signs:
            stale[:] = False
    ev.update(stale=int(stale.sum()), ahead=int(ahead.sum()), lost_state=int(lost.sum()),
              never_held=int(never.sum()))
    backwards, a, b = order_violations(value, *T.intervals(read=True)) if one_way else (0, -1, -1)  # equal: fine
    ev["backwards"] = backwards
    bad = stale | ahead | lost | never
    if not (bad.any() or backwards):
        return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
    ev["bad_reads"] = int(bad.sum()) + backwards
    if not bad.any():
        first, second = T.witness(a, read=True), T.witness(b, read=True)
        ev["witness"] = [first, second]
        ev["reason"] = f"{later_but_behind(first, second, noun='read op', process=False)}: the counter went back"
        return CheckResult(name=NAME, key=key, valid=False, evidence=ev)
    i = int(np.flatnonzero(bad)[0])
    read = T.witness(i, read=True)
    ev["bounds"] = sorted((int(lower[i]) * d, int(upper[i]) * d))
    ev["stale_reads"] = [int(x) * d for x in value[stale][:EVIDENCE_CAP].tolist()]
    if stale[i]:
        writer = _furthest_before(T, i, d, returns) if one_way else -1
        witness = [T.witness(writer), read] if writer >= 0 else [read]
        why = WHY["stale"](int(lower[i]) * d)
    elif ahead[i] and v_upper is not None and upper[i] == v_upper[i]:  # a write sent after the answer set it
        w = T.witness(_nearest_after(T, i, d, returns))
        witness = [w, read]
        why = found_at(w, int(upper[i]) * d)
    elif ahead[i]:
        witness = [read]
        why = WHY["ahead"](int(upper[i]) * d)
    elif never[i]:
        w = T.witness(_holding(T, value[i], d, returns))
        witness = [w, read]
        why = f"op {w['op']} ({w['process']}) took the counter {moved(w, returns)} at once: it never held that value"
    else:
        witness = [read]
        why = later_lost(d, final)
    ev["witness"] = witness
    ev["reason"] = bad_read(read, why)
    return CheckResult(name=NAME, key=key, valid=False, evidence=ev)


# the words of a bad read (the streamed check says them too: harness.checks.streamed)
WHY = {"stale": lambda v: f"the changes acknowledged before it was sent had already taken the counter to {v}",
       "ahead": lambda v: f"all the changes sent before its answer came could take the counter to {v} at most"}


def found_at(w: dict[str, Any], v: int) -> str:
    return f"op {w['op']} ({w['process']}), sent only after that answer came, found the counter at {v}"


def later_lost(d: int, final: int | None) -> str:
    return (f"the counter, which only {'grows' if d > 0 else 'shrinks'}, ended at {final}: it read a state that was "
            "later lost")


def bad_read(read: dict[str, Any], why: str) -> str:
    return (f"read op {read['op']} ({read['process']}), sent at {read['invoked_s']:.6f} s and answered at "
            f"{read['completed_s']:.6f} s, got {read['value']}; {why}")


def describe(r: CheckResult) -> str:
    if (said := noted(r)) is not None:
        return said
    e = r.evidence
    if r.valid:
        return f"{e['reads']:,} reads, each within what the writes around it allow, none going back"
    counts = ", ".join(f"{e[k]:,} {w}" for k, w in (("stale", "stale"), ("ahead", "ahead of every write sent"),
                                                       ("lost_state", "of a state later lost"),
                                                       ("never_held", "of a value the counter never held"),
                                                       ("backwards", "going back")) if e.get(k))
    return f"{counts}: {e['reason']}"


CHECK = Check(name=NAME, fn=check_reads, findings=(("bad_reads", "reads out of bounds or going back"),), timed=True,
              describe=describe)
