"""Figures across repeated runs: a median's interval, and whether two groups of runs differ.

One run gives one sample of each figure (ok ops/s, p99, ...): the requests within a run are
autocorrelated and are not independent samples, so every interval here is *across runs*.
Both intervals are distribution-free and exact, so they hold for the skewed, outlier-prone
figures a shared machine produces and give the same answer every time (no resampling):

- a group's median: the order-statistic interval ``[x(j), x(n+1-j)]``, whose coverage is a
  binomial sum. With fewer than 6 runs no such interval reaches 95%; the widest one (min to max)
  is given with the coverage it has (5 runs: 93.8%).
- two groups: the Hodges-Lehmann estimate of the shift in log(figure) (the median of every
  pairwise difference of logs) and its interval from the exact Mann-Whitney distribution, turned
  into a ratio. Logs, because a backend being "12% faster" is a ratio. With fewer than 4 runs a
  side, no 95% interval exists at all.

A difference is called only when its whole interval lies beyond the noise band (default ±2%);
when the interval lies within the band the groups do not differ by more than the band; otherwise
more runs are needed, and how many is estimated from the interval's width (it shrinks as 1/√n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

LEVEL = 0.95
NOISE_BAND = 0.02
DASH = "\u2013"  # a range, as in "8\u201316%"


@dataclass(frozen=True, kw_only=True)
class Interval:
    """A group's median and an interval around it; ``coverage`` is None with a single run."""

    n: int
    median: float
    lo: float
    hi: float
    coverage: float | None

    def text(self, fmt: str = "{:,.1f}") -> str:
        """``median (lo<en dash>hi)``, with the coverage when below 95%; a single run's figure alone."""
        if self.n == 1:
            return fmt.format(self.median)
        cov = "" if self.coverage is not None and self.coverage >= LEVEL else f"; {self.coverage:.0%} interval"
        return f"{fmt.format(self.median)} ({fmt.format(self.lo)}{DASH}{fmt.format(self.hi)}{cov})"


def median_interval(values: list[float], level: float = LEVEL) -> Interval:
    """The median with the narrowest symmetric order-statistic interval covering ``level``."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("no values")
    med = float(np.median(xs))
    if n == 1:
        return Interval(n=1, median=med, lo=xs[0], hi=xs[0], coverage=None)
    # P(x(j) <= median <= x(n+1-j)) = 1 - 2 P(Binomial(n, 1/2) <= j-1)
    best_j, best_cov = 1, _order_coverage(n, 1)
    for j in range(2, n // 2 + 1):
        cov = _order_coverage(n, j)
        if cov < level:
            break
        best_j, best_cov = j, cov
    return Interval(n=n, median=med, lo=xs[best_j - 1], hi=xs[n - best_j], coverage=best_cov)


def _order_coverage(n: int, j: int) -> float:
    tail = sum(math.comb(n, i) for i in range(j)) / 2**n
    return 1.0 - 2.0 * tail


@cache
def _mann_whitney_counts(n: int, m: int) -> tuple[int, ...]:
    """Number of orderings of n + m distinct values giving each U = 0 .. n*m (the null distribution)."""
    # c(n, m, u) = c(n-1, m, u-m) + c(n, m-1, u): the largest value belongs to one side or the other
    if n == 0 or m == 0:
        return (1,)
    a = _mann_whitney_counts(n - 1, m)
    b = _mann_whitney_counts(n, m - 1)
    out = [0] * (n * m + 1)
    for u, c in enumerate(b):
        out[u] += c
    for u, c in enumerate(a):
        out[u + m] += c
    return tuple(out)


def _shift_rank(n: int, m: int, level: float) -> tuple[int, float] | None:
    """k (1-based) such that [D(k), D(nm+1-k)] of the sorted pairwise differences covers ``level``,
    with its exact coverage; None when even [min, max] does not."""
    if n * m > 2500:  # large groups: the normal approximation to U (no ties)
        z = _z(level)
        sd = math.sqrt(n * m * (n + m + 1) / 12)
        k = max(1, math.floor(n * m / 2 - z * sd))
        return k, level
    counts = _mann_whitney_counts(n, m)
    total = math.comb(n + m, n)
    tail, k, cov = 0, 0, None
    for u in range(n * m // 2):
        tail += counts[u]
        c = 1.0 - 2.0 * tail / total
        if c < level:
            break
        k, cov = u + 1, c
    return (k, cov) if cov is not None else None


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


@dataclass(frozen=True, kw_only=True)
class Difference:
    """How group A's figure compares with group B's: a ratio A/B, its interval, and a verdict.

    ``call`` is "better", "worse" (A against B, by what the figure means), "same" (within the
    noise band) or "undecided" (more runs needed: ``more_runs`` each, or None when not estimable).
    """

    metric: str
    a: str
    b: str
    ratio: float | None
    lo: float | None
    hi: float | None
    coverage: float | None
    call: str
    more_runs: int | None
    sentence: str


# What each compared figure means: higher is better for throughput, lower for latency
METRICS: dict[str, tuple[str, bool]] = {
    "ok_per_s": ("ok ops/s", True), "p50": ("p50", False), "p99": ("p99", False), "p99.9": ("p99.9", False),
    "usd_per_M": ("$ per M increments", False),
}
MIN_RUNS = 4  # per side: with fewer, no 95% interval of a shift exists (3 vs 3: 90%)


def difference(a_name: str, a: list[float], b_name: str, b: list[float], *, metric: str,
               band: float = NOISE_BAND, level: float = LEVEL) -> Difference:
    """Compare A's runs with B's on one figure (see the module's docstring)."""
    label, higher_better = METRICS[metric]
    base = {"metric": metric, "a": a_name, "b": b_name}
    if not a or not b or min(a + b) <= 0 or any(math.isnan(x) for x in a + b):
        return Difference(**base, ratio=None, lo=None, hi=None, coverage=None, call="undecided", more_runs=None,
                          sentence=f"{label}: not comparable (a run had no acknowledged ops)")
    la, lb = np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b, dtype=float))
    diffs = np.sort((la[:, None] - lb[None, :]).ravel())
    ratio = float(math.exp(np.median(diffs)))
    rank = _shift_rank(len(a), len(b), level)
    if rank is None:
        need = max(0, MIN_RUNS - min(len(a), len(b)))
        return Difference(**base, ratio=ratio, lo=None, hi=None, coverage=None, call="undecided", more_runs=need,
                          sentence=f"{label}: too few runs for a {level:.0%} interval: {need} more of each "
                                   f"needed (A/B {_pct(ratio)} so far)")
    k, coverage = rank
    lo, hi = float(math.exp(diffs[k - 1])), float(math.exp(diffs[len(diffs) - k]))
    upper, lower = math.log1p(band), math.log(1 - band)  # the band in log space: A/B within [1-band, 1+band]
    llo, lhi, est = math.log(lo), math.log(hi), math.log(ratio)
    if llo > upper or lhi < lower:
        call = "better" if (llo > 0) == higher_better else "worse"
        return Difference(**base, ratio=ratio, lo=lo, hi=hi, coverage=coverage, call=call, more_runs=0,
                          sentence=_called(a_name, b_name, label, ratio, lo, hi, higher_better))
    if llo >= lower and lhi <= upper:
        return Difference(**base, ratio=ratio, lo=lo, hi=hi, coverage=coverage, call="same", more_runs=0,
                          sentence=f"{label}: no significant difference (A/B {_pct(ratio)}, {_pct(lo)} to "
                                   f"{_pct(hi)}, within the ±{band:.0%} noise band)")
    # The interval straddles an edge of the band: to settle, its half-width must shrink below the
    # estimate's distance to the nearest edge (inside the band or clear of it)
    half = (lhi - llo) / 2
    room = min(abs(est - upper), abs(est - lower))
    n = min(len(a), len(b))
    more = None if room <= half / 20 else max(1, math.ceil(n * (half / room) ** 2) - n)
    need = f"{more} more run{'s' if more != 1 else ''} of each needed" if more is not None else \
        "the difference is too close to the noise band to settle with a practical number of runs"
    return Difference(**base, ratio=ratio, lo=lo, hi=hi, coverage=coverage, call="undecided", more_runs=more,
                      sentence=f"{label}: too noisy: {need} (A/B {_pct(ratio)}, {_pct(lo)} to {_pct(hi)})")


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def _called(a: str, b: str, label: str, ratio: float, lo: float, hi: float, higher_better: bool) -> str:
    word = ("faster" if ratio > 1 else "slower") if higher_better else ("lower" if ratio < 1 else "higher")
    what = f"{a} is {word}" if label == "ok ops/s" else f"{a}'s {label} is {word}"
    if ratio >= 2:  # "by 955%" reads worse than "10.5x"
        what = f"{a} is" if label == "ok ops/s" else f"{a}'s {label} is"
        return f"{what} {ratio:.1f}x {'as fast as' if higher_better else 'that of'} {b} ({lo:.1f}{DASH}{hi:.1f}x)"
    mag = lambda r: abs(r - 1) * 100  # noqa: E731
    a_, b_ = sorted((mag(lo), mag(hi)))
    return f"{what} than {b} by {mag(ratio):.0f}% ({a_:.0f}{DASH}{b_:.0f}%)"
