"""Detection power: the smallest rate of lost (or twice-applied) acknowledged ops a run would have caught.

A pass only means something if the run could have caught a fault. The model: each of the N
acknowledged writes is lost independently with probability p (its effect missing from the final
state). A loss hides only behind uncertainty: an indeterminate op may have been applied in its
place, and an uncertain op of amount 100 covers as much as a hundred lost ops of amount one. So the
losses the checks cannot be sure to see are as many of the smallest acknowledged amounts as the
uncertain amounts add up to (the worst case: every uncertain op applied): M of them, M = U for ops
of one. The run then catches a loss rate p with probability P(Binomial(N, p) > M) at least (more
losses than M add up to more than the uncertain amounts can cover); ``rate`` is the p at which that
reaches the confidence (95%). With M = 0 that is 1 - 0.05^(1/N), about 3/N (the rule of three).
Double applications mirror it (an uncertain op not applied can cover as much). Returned values catch
more than this -- one value handed out twice proves a loss whatever the uncertainty -- so the rate
is an upper bound on what the run would have missed, not a promise of what it finds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


def hidden(ok_amounts: Mapping[int, int], uncertain_amounts: Mapping[int, int]) -> int:
    """How many acknowledged ops the uncertain ones can hide: as many of the smallest acknowledged amounts
    (by size) as the uncertain amounts' total covers. For ops of one: the number of uncertain ops."""
    budget = sum(abs(a) * n for a, n in uncertain_amounts.items())
    count = 0
    for size, n in sorted(_by_size(ok_amounts).items()):
        take = min(n, budget // size)
        count += take
        budget -= take * size
        if take < n:
            break
    return count


def _by_size(amounts: Mapping[int, int]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for a, n in amounts.items():
        if a:
            sizes[abs(a)] = sizes.get(abs(a), 0) + n
    return sizes


def detection(*, ok_amounts: Mapping[int, int], uncertain_amounts: Mapping[int, int],
              confidence: float = CONFIDENCE) -> dict[str, Any]:
    """verdict.json's ``detection``, from the acknowledged and the uncertain ops' amounts (amount -> count)."""
    acknowledged, uncertain = sum(ok_amounts.values()), sum(uncertain_amounts.values())
    masked = hidden(ok_amounts, uncertain_amounts)
    rate = smallest_rate(acknowledged, masked, confidence)
    total = acknowledged + uncertain
    return {
        "confidence": confidence,
        "loss_rate": rate,  # per acknowledged op; None: the run cannot be sure of catching any
        "double_apply_rate": rate,
        "one_in": round(1 / rate) if rate else None,
        "uncertain_ops": uncertain,
        "uncertain_share": uncertain / total if total else None,
        "hidden_ops": masked,  # acknowledged ops the uncertain amounts could cover
        "model": "each acknowledged write lost (or applied twice) independently; the uncertain ops, all applied "
                 "(or none), may cover as many of the smallest acknowledged amounts as they add up to",
    }


def sentence(d: dict[str, Any] | None) -> str | None:
    """One line for the terminal and the report."""
    if not d:
        return None
    hide = d.get("hidden_ops", d["uncertain_ops"])  # verdicts before amounts were weighed: one op covers one
    if d.get("loss_rate") is None:
        return (f"detection: too few acknowledged ops against {d['uncertain_ops']:,} uncertain ones to be sure of "
                "catching any loss")
    one_in = d["one_in"]
    return (f"would have caught lost or twice-applied updates at a rate of 1 in {one_in:,} acknowledged ops "
            f"with {d['confidence']:.0%} confidence ({d['uncertain_ops']:,} uncertain ops could hide "
            f"{'as many' if hide == d['uncertain_ops'] else f'{hide:,}'})")
