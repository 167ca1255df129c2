"""bounds: the final value is one the acknowledged and uncertain ops can explain.

With initial I, acknowledged amounts A and indeterminate amounts U, the final F
must be reachable: ``F = I + A + s`` for some sub-sum ``s`` of U. For +1 ops
that is Jepsen's ``I + A <= F <= I + A + U``. ``lost`` counts acknowledged
change missing from F, ``duplicated`` change in F that no op can explain.
"""

from __future__ import annotations

from typing import Any

from harness.checks.model import CheckResult, Completeness, KeyTally
from harness.checks.reachable import TooManyIntervals, contains, nearest, reachable

NAME = "bounds"


def check_bounds(*, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness) -> CheckResult:
    ev: dict[str, Any] = {
        "initial": initial,
        "final": final,
        "ok": t.ok,
        "ok_sum": t.ok_sum,
        "indeterminate": t.indeterminate,
        "indeterminate_sum": sum(a * n for a, n in t.indeterminate_amounts.items()),
    }
    if final is None:
        return CheckResult(name=NAME, key=key, valid=None, evidence={**ev, "reason": "the final value was not read"})
    signs = t.signs
    base = initial + t.ok_sum
    pos = sum(a * n for a, n in t.indeterminate_amounts.items() if a > 0)
    neg = sum(a * n for a, n in t.indeterminate_amounts.items() if a < 0)
    lo, hi = base + neg, base + pos
    ev.update(lower=lo, upper=hi)
    if signs == {-1}:
        lost, duplicated = max(0, final - hi), max(0, lo - final)
    else:  # increments, or mixed: "lost" is acknowledged change missing below the range
        lost, duplicated = max(0, lo - final), max(0, final - hi)
    ev.update(lost=lost, duplicated=duplicated)

    if not history.complete:
        # missing ops can only widen the range, in the direction of their amounts
        ev["missing"] = list(history.missing)
        if signs <= {1} and final < lo:
            return CheckResult(name=NAME, key=key, valid=False, evidence={
                **ev, "reason": "final is below what acknowledged ops alone give; no missing op can explain it"})
        if signs == {-1} and final > hi:
            return CheckResult(name=NAME, key=key, valid=False, evidence={
                **ev, "reason": "final is above what acknowledged ops alone give; no missing op can explain it"})
        return CheckResult(name=NAME, key=key, valid=None, evidence={
            **ev, "reason": "the history is incomplete; missing ops could explain the final value"})

    if not lo <= final <= hi:
        return CheckResult(name=NAME, key=key, valid=False, evidence=ev)
    if t.unit:
        return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
    try:
        ranges = reachable(base, t.indeterminate_amounts)
    except TooManyIntervals as e:
        return CheckResult(name=NAME, key=key, valid=None, evidence={
            **ev, "reason": f"final is within [lower, upper] but the reachable set is too fragmented: {e}"})
    if contains(ranges, final):
        return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
    below, above = nearest(ranges, final)
    return CheckResult(name=NAME, key=key, valid=False, evidence={
        **ev, "nearest_reachable": [below, above],
        "reason": "no subset of the indeterminate ops gives the final value"})
