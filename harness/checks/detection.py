"""Detection power: the smallest rate of lost (or twice-applied) acknowledged ops a run would have caught.

A pass only means something if the run could have caught a fault. The model: each of the N
acknowledged writes is lost independently with probability p (its effect missing from the final
state). A loss hides only behind uncertainty: an indeterminate op may have been applied in its
place, so with U indeterminate ops the checks are sure to see the losses only when there are more
than U of them (the worst case: every uncertain op applied, each covering one loss). The run then
catches a loss rate p with probability P(Binomial(N, p) > U); ``rate`` is the p at which that
reaches the confidence (95%). With U = 0 that is 1 - 0.05^(1/N), about 3/N (the rule of three).
Double applications mirror it (an uncertain op not applied can cover one). Returned values catch
more than this -- one value handed out twice proves a loss whatever U is -- so the rate is an upper
bound on what the run would have missed, not a promise of what it finds.
"""

from __future__ import annotations

import math
from typing import Any

CONFIDENCE = 0.95


def _at_most(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k)."""
    if k >= n:
        return 1.0
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    var = n * p * (1 - p)
    if var > 400:  # normal, with a continuity correction: within 1e-3 here
        return 0.5 * math.erfc(-(k + 0.5 - n * p) / math.sqrt(2 * var))
    log_term = n * math.log1p(-p)  # i = 0
    step = math.log(p) - math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        total += math.exp(log_term)
        log_term += math.log(n - i) - math.log(i + 1) + step
    return min(1.0, total)


def smallest_rate(n: int, masked: int, confidence: float = CONFIDENCE) -> float | None:
    """The smallest per-op rate p with P(Binomial(n, p) > masked) >= confidence (None: never, n too small)."""
    if n <= masked:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 1 - _at_most(masked, n, mid) >= confidence:
            hi = mid
        else:
            lo = mid
    return hi


def detection(*, acknowledged: int, indeterminate: int, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """verdict.json's ``detection``."""
    rate = smallest_rate(acknowledged, indeterminate, confidence)
    total = acknowledged + indeterminate
    return {
        "confidence": confidence,
        "loss_rate": rate,  # per acknowledged op; None: the run cannot be sure of catching any
        "double_apply_rate": rate,
        "one_in": round(1 / rate) if rate else None,
        "uncertain_ops": indeterminate,
        "uncertain_share": indeterminate / total if total else None,
        "model": "each acknowledged write lost (or applied twice) independently; up to all indeterminate "
                 "ops may cover as many",
    }


def sentence(d: dict[str, Any] | None) -> str | None:
    """One line for the terminal and the report."""
    if not d:
        return None
    if d.get("loss_rate") is None:
        return (f"detection: too few acknowledged ops against {d['uncertain_ops']:,} uncertain ones to be sure of "
                "catching any loss")
    one_in = d["one_in"]
    return (f"would have caught lost or twice-applied updates at a rate of 1 in {one_in:,} acknowledged ops "
            f"with {d['confidence']:.0%} confidence ({d['uncertain_ops']:,} uncertain ops could hide as many)")
