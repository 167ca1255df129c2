"""Figures across repeated runs: the median's interval, the difference between groups, an A/A test."""

from __future__ import annotations

import math
import random

import pytest

from harness.report.compare import differences, group_row
from harness.report.stats import _mann_whitney_counts, _shift_rank, difference, median_interval


def test_mann_whitney_null_distribution_is_exact():
    assert _mann_whitney_counts(2, 2) == (1, 1, 2, 1, 1)  # the 6 orderings of 2 + 2 values
    for n, m in ((3, 5), (5, 5), (7, 4)):
        counts = _mann_whitney_counts(n, m)
        assert sum(counts) == math.comb(n + m, n) and counts == counts[::-1]


def test_the_exact_coverages_the_readme_states():
    k, coverage = _shift_rank(5, 5, 0.95)
    assert k == 3 and coverage == pytest.approx(0.9683, abs=1e-4)  # 96.8% at 5 vs 5
    assert _shift_rank(4, 4, 0.95) == (1, pytest.approx(68 / 70))  # 4 a side: [min, max] of the differences
    assert _shift_rank(3, 3, 0.95) is None  # fewer than 4 a side: no 95% interval exists


def test_median_interval_by_order_statistics():
    one = median_interval([7.0])
    assert (one.median, one.coverage) == (7.0, None)
    five = median_interval([5, 1, 4, 2, 3])
    assert (five.median, five.lo, five.hi) == (3, 1, 5)
    assert five.coverage == pytest.approx(30 / 32)  # below 95%: the widest there is, and it says so
    assert "94% interval" in five.text()
    twenty = median_interval(list(range(20)))
    # j = 6: 1 - 2 P(Bin(20, 1/2) <= 5) = 0.9586; j = 7 would cover only 0.8847
    assert (twenty.lo, twenty.hi) == (5, 14) and twenty.coverage == pytest.approx(0.95861, abs=1e-5)


def test_median_interval_covers_the_true_median_as_it_says():
    rng = random.Random(3)
    trials, hits = 2000, 0
    for _ in range(trials):
        iv = median_interval([rng.lognormvariate(0, 0.3) for _ in range(12)])
        hits += iv.lo <= 1.0 <= iv.hi  # the lognormal's median is exactly 1
    assert hits / trials >= 0.95 - 0.015


def _groups(rng: random.Random, n: int, *, shift: float, noise: float) -> tuple[list[float], list[float]]:
    a = [1000 * (1 + shift) * rng.lognormvariate(0, noise) for _ in range(n)]
    b = [1000 * rng.lognormvariate(0, noise) for _ in range(n)]
    return a, b


def test_a_clear_difference_is_called_with_its_size_and_direction():
    d = difference("A", [100, 102, 99, 101, 100], "B", [80, 82, 79, 81, 80], metric="ok_per_s")
    assert d.call == "better" and d.lo > 1.2 and d.hi < 1.3
    assert d.sentence.startswith("A is faster than B by 25% (")
    lat = difference("A", [10, 10.2, 9.9, 10.1, 10], "B", [8, 8.2, 7.9, 8.1, 8], metric="p99")
    assert lat.call == "worse" and "higher than B by 25%" in lat.sentence  # lower latency is better
    big = difference("A", [1000, 1020, 990, 1010, 1000], "B", [100, 102, 99, 101, 100], metric="ok_per_s")
    assert big.sentence.startswith("A is 10.0x as fast as B (9.")  # not "faster by 900%"


def test_a_difference_inside_the_noise_band_is_not_called():
    a = [101.0, 101.1, 100.9, 101.05, 100.95]
    b = [100.0, 100.1, 99.9, 100.05, 99.95]
    assert difference("A", a, "B", b, metric="ok_per_s").call == "same"  # 1% apart, band 2%
    assert difference("A", a, "B", b, metric="ok_per_s", band=0.0).call == "better"  # no band: a real 1%


def test_too_few_runs_and_too_noisy_say_how_many_more():
    few = difference("A", [100, 110, 95], "B", [100, 101, 99], metric="ok_per_s")
    assert few.call == "undecided" and few.more_runs == 1 and few.lo is None  # 3 vs 3: at best 90%
    noisy = difference("A", [100, 130, 85, 110, 95], "B", [100, 104, 96, 101, 99], metric="ok_per_s")
    assert noisy.call == "undecided" and noisy.more_runs and noisy.more_runs > 0
    assert "too noisy" in noisy.sentence and f"{noisy.more_runs} more run" in noisy.sentence


def test_no_acknowledged_ops_is_not_comparable():
    d = difference("A", [0.0, 10, 11, 12], "B", [10, 11, 12, 13], metric="ok_per_s")
    assert d.call == "undecided" and d.ratio is None and "not comparable" in d.sentence


@pytest.mark.parametrize("band", [0.0, 0.02])
def test_a_a_significant_in_at_most_5_percent(band):
    """The same scenario as two groups of 5 runs: a difference is called in at most 5% of trials,
    even with no noise band at all (the interval's own coverage). Synthetic samples, for speed:
    bench/aa_compare.py runs the real A/A."""
    rng = random.Random(20261202)
    trials = 2000
    called = sum(difference("A", *_aa(rng), metric="ok_per_s", band=band).call in ("better", "worse")
                 for _ in range(trials))
    assert called / trials <= 0.05
    latency = sum(difference("A", *_aa(rng), metric="p99", band=band).call in ("better", "worse")
                  for _ in range(trials))
    assert latency / trials <= 0.05


def _aa(rng: random.Random) -> tuple[list[float], str, list[float]]:
    a, b = _groups(rng, 5, shift=0.0, noise=0.08)
    return a, "B", b


def test_a_real_difference_is_found_almost_always_and_never_backwards():
    rng = random.Random(7)
    calls = [difference("A", a, "B", b, metric="ok_per_s").call
             for a, b in (_groups(rng, 5, shift=0.15, noise=0.03) for _ in range(500))]
    assert calls.count("better") / len(calls) >= 0.95 and "worse" not in calls


def _rows(name: str, workload: str, values: list[float]) -> list[dict[str, object]]:
    return [{"scenario": name, "target": "redis", "variant": "atomic", "workload": workload, "verdict": "pass",
             "ok_per_s": v, "p50": 1000 / v, "p99": 5000 / v, "p99.9": 9000 / v} for v in values]


def test_groups_and_their_differences_from_run_rows():
    rows = (_rows("fast", "counter", [1200, 1210, 1190, 1205, 1195])
            + _rows("slow", "counter", [1000, 1010, 990, 1005, 995]) + _rows("ids", "unique-ids", [500]))
    g = group_row("fast", [r for r in rows if r["scenario"] == "fast"])
    assert (g["runs"], g["ok_per_s"], g["ok_per_s_lo"], g["ok_per_s_hi"], g["verdict"]) == (5, 1200, 1190, 1210,
                                                                                             "5 pass")
    diffs = differences(rows)
    assert {d.metric for d in diffs} == {"ok_per_s", "p50", "p99", "p99.9"}  # within one workload; no prices
    by = {d.metric: d for d in diffs}
    assert by["ok_per_s"].sentence.startswith("fast is faster than slow by 20% (")
    assert by["p99"].sentence.startswith("fast's p99 is lower than slow by 17% (")
    # said from the better side whichever order the groups came in
    flipped = differences(_rows("slow", "counter", [1000, 1010, 990, 1005, 995])
                          + _rows("fast", "counter", [1200, 1210, 1190, 1205, 1195]))
    assert flipped[0].sentence == by["ok_per_s"].sentence
