"""bounds: the final value is one the acknowledged and uncertain ops can explain.

With initial I, acknowledged amounts A and indeterminate amounts U, the final F
must be reachable: ``F = I + A + s`` for some sub-sum ``s`` of U. For +1 ops
that is Jepsen's ``I + A <= F <= I + A + U``. ``lost`` counts acknowledged
change missing from F, ``duplicated`` change in F that no op can explain.

With an incomplete history, ops the history lacks may have moved F too, in the
direction of the workload's amounts (``Completeness.op_signs``) and by any
amount: F is then invalid only on the side no missing op could reach. Anything
else is unknown, and the distance from the recorded range is reported as
``beyond_recorded`` -- unexplained, not a finding.
"""

from __future__ import annotations

from typing import Any, Literal

from harness.checks.model import Check, CheckResult, Completeness, KeyTally
from harness.checks.reachable import TooManyIntervals, contains, nearest, reachable

NAME = "bounds"


def check_bounds(*, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
                 returns: Literal["after", "before"] = "after") -> CheckResult:
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
    base = initial + t.ok_sum
    pos = sum(a * n for a, n in t.indeterminate_amounts.items() if a > 0)
    neg = sum(a * n for a, n in t.indeterminate_amounts.items() if a < 0)
    lo, hi = base + neg, base + pos
    ev.update(lower=lo, upper=hi)
    # which way the counter moves: the key's own ops, or (none recorded) the workload's
    decrements = (t.signs or set(history.op_signs)) == {-1}

    def finding(*, below: int, above: int) -> dict[str, int]:
        """lost / duplicated for a final ``below`` the range or ``above`` it: a decrement's missing
        change shows above the range, an increment's below."""
        return {"lost": above, "duplicated": below} if decrements else {"lost": below, "duplicated": above}

    below, above = max(0, lo - final), max(0, final - hi)
    if not history.complete:
        ev["missing"] = list(history.missing)
        # a missing op moved the counter in one of the workload's directions, by any amount
        if below and -1 not in history.op_signs:
            return CheckResult(name=NAME, key=key, valid=False, evidence={
                **ev, **finding(below=below, above=0),
                "reason": "final is below what acknowledged ops alone give; no missing op can explain it"})
        if above and 1 not in history.op_signs:
            return CheckResult(name=NAME, key=key, valid=False, evidence={
                **ev, **finding(below=0, above=above),
                "reason": "final is above what acknowledged ops alone give; no missing op can explain it"})
        if below or above:
            ev["beyond_recorded"] = above or -below
            side = f"{above} above" if above else f"{below} below"
            why = f"final is {side} the range the recorded ops explain; the missing ops could account for it"
        else:
            why = "the history is incomplete; missing ops could have changed the final value"
        return CheckResult(name=NAME, key=key, valid=None, evidence={**ev, "reason": why})

    if below or above:
        return CheckResult(name=NAME, key=key, valid=False, evidence={**ev, **finding(below=below, above=above)})
    if t.unit:
        return CheckResult(name=NAME, key=key, valid=True, evidence={**ev, "lost": 0, "duplicated": 0})
    try:
        ranges = reachable(base, t.indeterminate_amounts)
    except TooManyIntervals as e:
        return CheckResult(name=NAME, key=key, valid=None, evidence={
            **ev, "reason": f"final is within [lower, upper] but the reachable set is too fragmented: {e}"})
    if contains(ranges, final):
        return CheckResult(name=NAME, key=key, valid=True, evidence={**ev, "lost": 0, "duplicated": 0})
    below_r, above_r = nearest(ranges, final)
    return CheckResult(name=NAME, key=key, valid=False, evidence={
        **ev, "lost": 0, "duplicated": 0, "nearest_reachable": [below_r, above_r],
        "reason": "no subset of the indeterminate ops gives the final value"})


def describe(r: CheckResult) -> str:
    e = r.evidence
    if r.valid is None:
        return str(e.get("reason", "undecided"))
    if r.valid:
        return (f"the final value {e['final']:,} lies where the ops put it ({e['lower']:,} to {e['upper']:,}: "
                f"{e['ok']:,} acknowledged, {e['indeterminate']:,} uncertain)")
    if e.get("lost"):
        return (f"{e['lost']:,} acknowledged changes are missing: the final value is {e['final']:,}, the "
                f"acknowledged ops alone make it {e['lower'] if e['final'] < e['lower'] else e['upper']:,}")
    if e.get("duplicated"):
        return (f"{e['duplicated']:,} changes nobody acknowledged or left uncertain are in the final value "
                f"{e['final']:,} (the ops allow {e['lower']:,} to {e['upper']:,}): applied twice")
    return str(e.get("reason", "violated"))


CHECK = Check(name=NAME, fn=check_bounds, findings=(("lost", "lost"), ("duplicated", "applied twice")), over_total=True,
              describe=describe)
