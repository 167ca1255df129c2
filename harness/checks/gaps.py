"""gaps: every value the counter passed that no acknowledged op returned belongs to an uncertain op.

For unit increments that return the value after (or before) they applied, the counter passed each
value of ``(I, F]`` once. A value no acknowledged op returned (a gap) was made by an op whose answer
was lost -- an indeterminate one, sent before the first acknowledged op with a higher value was
answered, and before the first acknowledged read that saw the counter at or past it was answered.
(It may have taken effect any time after it was sent, even after its client gave up on it: a
request held up in the network reaches the server late.) Gaps are matched to distinct such ops,
greedily in value order, which is optimal as the ops one gap can use every later gap can use too. A
gap no op can account for is a phantom: an increment sent by nobody, or an op applied twice (a retry
after a lost answer); the check fails. The matches also say how many indeterminate ops were thereby
shown applied, and how many not.

What it cannot see: which of several candidates made a gap, amounts other than one, and keys
whose final value was not read. An incomplete history is undecided (a missing op may explain a gap).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from harness.checks.model import EVIDENCE_CAP, Check, CheckResult, Completeness, KeyTally

NAME = "gaps"
_MAX = np.iinfo(np.int64).max


def match_gaps(hi: Any, c_inv: Any) -> Any:
    """For each gap (by the latest time ``hi`` it can have been made, nondecreasing), whether a distinct
    candidate was sent by then (``c_inv``; a candidate may take effect any time after it was sent).

    Greedy in gap order, which is optimal as the candidates usable by a gap are usable by every later
    one: gap g is matched when the candidates sent by its ``hi`` outnumber the gaps matched before it.
    A send in the same microsecond as ``hi`` counts (times are truncated)."""
    sent = np.searchsorted(np.sort(c_inv), hi, side="right")  # candidates usable by each gap
    g = np.arange(len(hi))
    # matched so far after gap g: min(g + 1, min over k <= g of sent[k] + (g - k))
    so_far = np.minimum(np.minimum.accumulate(sent - g) + g, g + 1)
    return np.diff(np.r_[0, so_far]) > 0


def _read_deadlines(T: Any, gaps: Any, first: int, d: int, span: int, after: bool) -> Any:
    """For each gap, when an acknowledged read had certainly seen the counter past it (``_MAX``: none did):
    a read of ``r`` saw every change up to ``r`` made, so a gap there was made before the read's answer."""
    if not len(T.r_value) or not len(gaps):
        return np.full(len(gaps), _MAX)
    # the position in the walk of the last change a read saw: the one that left its value (values after),
    # or the one before the change that starts from it (values before)
    pos = (T.r_value - first) * d - (0 if after else 1)
    seen = np.full(span + 1, _MAX)
    inside = pos >= 0
    np.minimum.at(seen, np.minimum(pos[inside], span), T.completed(read=True)[inside])
    by = np.minimum.accumulate(seen[::-1])[::-1]  # the earliest read that saw this position or beyond
    return by[gaps]


def check_gaps(*, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
               returns: Literal["after", "before"] = "after") -> CheckResult:
    if t.streamed is not None:  # folded as the history streamed (harness.checks.stream)
        return t.streamed.result(NAME, key=key, initial=initial, final=final, t=t, history=history, returns=returns)
    ev: dict[str, Any] = {}
    if final is None:
        return CheckResult(name=NAME, key=key, valid=None, evidence={"reason": "the final value was not read"})
    if not history.complete:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={"reason": "the history is incomplete: a missing op may account for a gap"})
    if t.timed is None:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={"reason": f"the ops could not be placed in time: {t.untimed or 'no timing'}"})
    T = t.timed
    if not len(T.amount):
        return CheckResult(name=NAME, key=key, valid=True, evidence={"reason": "no op"})
    d = T.amount_if_one()
    if d not in (1, -1):
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={"reason": "amounts other than one: values do not name single ops"})
    if t.ok_without_value:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={"reason": "an acknowledged op returned no value: its value is unknown"})
    after = returns == "after"
    # the values the counter passed, in its direction: (I, F] for values after, [I, F) before
    first, last = (initial + d, final) if after else (initial, final - d)
    span = (last - first) * d + 1
    if span > 2 * len(T.amount) + 1000:  # more values than ops could produce: bounds says so; no walk here
        return CheckResult(name=NAME, key=key, valid=None, evidence={
            "reason": f"the counter moved {span} from its initial value, far more than the ops could: see bounds"})
    span = max(span, 0)
    ok = T.ok & T.has_value
    pos = T.value[ok]
    pos -= first
    if d < 0:
        np.negative(pos, out=pos)  # position in the walk
    inside = (pos >= 0) & (pos < span)
    if not inside.all():
        pos, ok = pos[inside], np.flatnonzero(ok)[inside]
    del inside
    # the latest each gap can have been made: before every higher value's op was answered (where a value
    # was handed out twice, its latest answer: the wider window)
    times = np.bincount(pos, minlength=span)
    once = int(times.max(initial=0)) <= 1
    seen = times > 0
    del times
    answer = np.full(span, _MAX)
    if once:  # every value handed out once (the usual case): no sort
        answer[pos] = T.completed(ok)
    else:
        order = np.argsort(pos, kind="stable")
        pos, cmp_hi = pos[order], T.completed(ok)[order]
        runs = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
        answer[pos[runs]] = np.maximum.reduceat(cmp_hi, runs)
        del order, cmp_hi, runs
    del pos, ok
    gaps = np.flatnonzero(~seen)
    del seen
    ev["gaps"] = len(gaps)
    cand = np.flatnonzero(~T.ok)
    ev["uncertain"] = len(cand)
    if not len(gaps):
        ev.update(shown_applied=0, shown_not_applied=len(cand), phantoms=0)
        return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
    higher_cmp = np.minimum.accumulate(answer[::-1], out=answer[::-1])[::-1]
    hi = np.where(gaps + 1 < span, higher_cmp[np.minimum(gaps + 1, span - 1)], _MAX)
    del answer, higher_cmp
    hi = np.minimum(hi, _read_deadlines(T, gaps, first, d, span, after))
    matched = match_gaps(hi, T.invoked(cand))
    phantoms = gaps[~matched]
    ev.update(shown_applied=int(matched.sum()), shown_not_applied=len(cand) - int(matched.sum()),
              phantoms=len(phantoms))
    if not len(phantoms):
        return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
    values = (phantoms * d + first).tolist()
    ev["phantom_values"] = [int(x) for x in values[:EVIDENCE_CAP]]
    ev["reason"] = (f"the counter passed {values[0]}, which no acknowledged op returned and no uncertain op "
                    "could have produced (none was out while it could happen): an increment nobody sent, or an op "
                    "applied twice")
    return CheckResult(name=NAME, key=key, valid=False, evidence=ev)


def describe(r: CheckResult) -> str:
    e = r.evidence
    if r.valid is None:
        return str(e.get("reason", "undecided"))
    if r.valid:
        if not e.get("gaps"):
            return f"no value was skipped; {e.get('uncertain', 0):,} uncertain ops were not applied"
        return (f"{e['gaps']:,} values no acknowledged op returned, each matched to an uncertain op that was out "
                f"when it could happen: {e['shown_applied']:,} uncertain ops shown applied, "
                f"{e['shown_not_applied']:,} not")
    return f"{e['phantoms']:,} increments no op accounts for: {e['reason']}"


CHECK = Check(name=NAME, fn=check_gaps, findings=(("phantoms", "increments no op accounts for"),), timed=True,
              workloads=frozenset({"counter", "unique-ids", "seats", "page-views"}),
              describe=describe)
