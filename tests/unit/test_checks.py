"""Check stories on tiny histories, one edge per test (after Jepsen's counter-test)."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.checks import ALL_KEYS, TOTAL_KEY, Completeness, run_checks
from harness.checks.reachable import TooManyIntervals, contains, reachable
from tests.unit.histories import KEY, op, take

COMPLETE = Completeness(complete=True)


def verdict(ops, final, initial=0, checks=("bounds", "unique-values"), history=COMPLETE, returns="after"):
    keys = {o.key for o in ops} | {KEY}
    init = dict.fromkeys(keys, initial)
    fin = final if isinstance(final, dict) else {KEY: final}
    return run_checks(checks=checks, ops=ops, initial=init, final=fin, history=history, returns=returns)


def result(report, name, key=KEY):
    return next(c for c in report.checks if c.name == name and c.key == key)


def test_empty_history_is_unknown_not_pass():
    r = verdict([], 0)
    assert r.verdict == "unknown"
    assert "no op was acknowledged" in r.reason


def test_all_ok_matching_final_passes():
    r = verdict([op("ok", value=1), op("ok", value=2), op("ok", value=3)], 3)
    assert r.verdict == "pass"
    assert r.totals["ok"] == 3 and r.totals["lost"] == 0


def test_failed_op_is_ignored():
    r = verdict([op("ok", value=1), op("fail")], 1)
    assert r.verdict == "pass"
    assert result(r, "bounds").evidence["upper"] == 1


def test_failed_op_that_was_applied_is_duplication():
    r = verdict([op("ok", value=1), op("fail")], 2)
    assert r.verdict == "fail"
    assert r.totals["duplicated"] == 1


def test_indeterminate_widens_only_the_upper_bound():
    ops = [op("ok", value=1), op("indeterminate"), op("indeterminate")]
    for final in (1, 2, 3):
        assert verdict(ops, final).verdict == "pass", final
    b = result(verdict(ops, 3), "bounds")
    assert (b.evidence["lower"], b.evidence["upper"]) == (1, 3)
    assert verdict(ops, 0).verdict == "fail"
    assert verdict(ops, 4).verdict == "fail"


def test_final_below_lower_bound_is_lost():
    r = verdict([op("ok", value=1), op("ok", value=2), op("ok", value=3)], 1)
    assert r.verdict == "fail"
    assert r.totals["lost"] == 2
    assert "2 lost" in r.reason


def test_final_above_upper_bound_is_duplicated():
    r = verdict([op("ok", value=1), op("ok", value=2)], 5)
    assert r.verdict == "fail"
    assert r.totals["duplicated"] == 3


def test_repeated_value_with_correct_total_fails():
    # two ops both saw 1: one update was lost, yet a retry made the total look right
    r = verdict([op("ok", value=1), op("ok", value=1), op("ok", value=3)], 3)
    assert result(r, "bounds").valid is True
    u = result(r, "unique-values")
    assert u.valid is False
    assert u.evidence["repeated"] == [{"value": 1, "times": 2}]
    assert r.totals["duplicate_values"] == 1
    assert r.verdict == "fail"


def test_value_above_final_proves_loss():
    r = verdict([op("ok", value=1), op("ok", value=7)], 2)
    assert result(r, "unique-values").evidence["out_of_range_values"] == [7]


def test_updated_old_values_lie_in_initial_to_final_exclusive():
    ops = [op("ok", value=10), op("ok", value=11)]
    assert verdict(ops, 12, initial=10, returns="before").verdict == "pass"
    assert verdict(ops, 12, initial=10, returns="after").verdict == "fail"


def test_ok_without_value_is_not_checked_for_uniqueness_but_counts():
    r = verdict([op("ok", value=None), op("ok", value=2)], 2)
    assert r.verdict == "pass"
    assert result(r, "unique-values").evidence["ok_without_value"] == 1


def test_unique_values_unknown_when_no_value_was_returned():
    r = verdict([op("ok"), op("ok")], 2)
    assert result(r, "unique-values").valid is None
    assert r.verdict == "unknown"


SEATS = ("bounds", "unique-values", "no-oversell")


def test_seats_sold_out_is_not_oversold():
    ops = [take("ok", 1), take("ok", 0), take("fail"), take("fail")]
    r = verdict(ops, 0, initial=2, checks=SEATS)
    assert r.verdict == "pass"
    assert result(r, "no-oversell").evidence["sold"] == 2


def test_oversell_below_zero_fails():
    ops = [take("ok", 1), take("ok", 0), take("ok", -1)]
    r = verdict(ops, -1, initial=2, checks=SEATS)
    assert r.verdict == "fail"
    assert r.totals["oversold"] == 1


def test_more_sold_than_capacity_fails_even_if_final_looks_fine():
    ops = [take("ok", 1), take("ok", 1), take("ok", 0)]
    r = verdict(ops, 0, initial=2, checks=SEATS)
    assert result(r, "no-oversell").valid is False
    assert result(r, "unique-values").valid is False


def test_negative_final_is_oversold_even_within_capacity():
    # one seat of two acknowledged, yet the store went below zero: something sold what it did not have
    r = verdict([take("ok", 1)], -1, initial=2, checks=("no-oversell",))
    o = result(r, "no-oversell")
    assert o.valid is False and o.evidence["oversold"] == 1 and r.verdict == "fail"


def test_oversell_unknown_when_the_final_value_was_not_read():
    r = verdict([take("ok", 1)], {KEY: None}, initial=2, checks=("no-oversell",))
    assert result(r, "no-oversell").valid is None and r.verdict == "unknown"


def test_oversell_unknown_with_an_incomplete_history():
    # missing reservations may have been acknowledged beyond the capacity
    r = verdict([take("ok", 1)], 1, initial=2, checks=("no-oversell",), history=DECR_MISSING)
    assert result(r, "no-oversell").valid is None and r.verdict == "unknown"


def test_seat_acknowledged_but_not_taken_is_lost():
    r = verdict([take("ok", 1), take("ok", 0)], 1, initial=2, checks=SEATS)
    assert r.verdict == "fail"
    assert r.totals["lost"] == 1


def test_mixed_signs_use_reachable_sums_not_the_interval():
    # +10 and -10 indeterminate: reachable finals are -10, 0, 10 -- never 5
    ops = [op("ok", 5, None), op("indeterminate", 10), op("indeterminate", -10)]
    checks = ("bounds",)
    assert verdict(ops, 5, checks=checks).verdict == "pass"
    assert verdict(ops, 15, checks=checks).verdict == "pass"
    r = verdict(ops, 10, checks=checks)
    assert r.verdict == "fail"
    assert result(r, "bounds").evidence["nearest_reachable"] == [5, 15]


def test_large_positive_amounts_have_gaps_too():
    ops = [op("ok", 100, 100), op("indeterminate", 500)]
    assert verdict(ops, 600, checks=("bounds",)).verdict == "pass"
    assert verdict(ops, 350, checks=("bounds",)).verdict == "fail"


def test_per_key_and_total():
    ops = [op("ok", value=1, key="a"), op("ok", value=2, key="a"), op("ok", value=1, key="b")]
    ok = verdict(ops, {"a": 2, "b": 1, KEY: 0})
    assert ok.verdict == "pass"
    assert result(ok, "bounds", ALL_KEYS).evidence["keys"] == 3
    assert result(ok, "bounds", TOTAL_KEY).valid is True
    bad = verdict(ops, {"a": 1, "b": 1, KEY: 0})
    assert bad.verdict == "fail"
    assert result(bad, "bounds", "a").evidence["lost"] == 1
    assert result(bad, "bounds", TOTAL_KEY).evidence["lost"] == 1


def test_an_unknown_key_makes_the_summary_unknown_not_valid():
    # two keys: "a" holds, "b" returned no values: over every key, unique-values is undecided
    ops = [op("ok", value=1, key="a"), op("ok", key="b")]
    r = verdict(ops, {"a": 1, "b": 1, KEY: 0}, checks=("unique-values",))
    summary = result(r, "unique-values", ALL_KEYS)
    assert summary.valid is None and summary.evidence["unknown_keys"] == 1
    assert r.verdict == "unknown"


def test_an_invalid_key_makes_the_summary_invalid():
    ops = [op("ok", value=1, key="a"), op("ok", value=1, key="a"), op("ok", key="b")]
    r = verdict(ops, {"a": 2, "b": 1, KEY: 0}, checks=("unique-values",))
    assert result(r, "unique-values", ALL_KEYS).valid is False and r.verdict == "fail"


def test_unique_values_unknown_when_the_final_value_was_not_read():
    r = verdict([op("ok", value=1), op("ok", value=2)], {KEY: None}, checks=("unique-values",))
    assert result(r, "unique-values").valid is None and r.verdict == "unknown"


def test_unique_values_of_an_untouched_key_unknown_when_its_final_was_not_read():
    r = verdict([op("ok", value=1, key="a")], {"a": 1, KEY: None}, checks=("unique-values",))
    assert result(r, "unique-values", KEY).valid is None and r.verdict == "unknown"


def test_untouched_key_must_keep_its_initial_value():
    r = verdict([op("ok", value=1, key="a")], {"a": 1, KEY: 3})
    assert r.verdict == "fail"
    assert result(r, "bounds", KEY).evidence["duplicated"] == 3


INCR_MISSING = Completeness(complete=False, missing=("w2: no footer",), op_signs=frozenset({1}))
DECR_MISSING = Completeness(complete=False, missing=("w2: no footer",), op_signs=frozenset({-1}))


def test_incomplete_history_cannot_prove_duplication():
    r = verdict([op("ok", value=1)], 5, history=INCR_MISSING)
    assert r.verdict == "unknown"
    b = result(r, "bounds")
    assert b.evidence["missing"] == ["w2: no footer"]
    # how far the final lies beyond the recorded range is reported, but never as a finding
    assert "duplicated" not in b.evidence and b.evidence["beyond_recorded"] == 4
    assert r.totals["duplicated"] == 0 and r.totals["unexplained"] == 4


def test_incomplete_history_still_proves_loss():
    r = verdict([op("ok", value=1), op("ok", value=2)], 1, history=INCR_MISSING)
    assert r.verdict == "fail"
    assert result(r, "bounds").valid is False and r.totals["lost"] == 1


def test_incomplete_history_of_unknown_direction_proves_no_loss():
    # Completeness without op_signs: a missing op may have moved the counter either way
    hist = Completeness(complete=False, missing=("w2: no footer",))
    r = verdict([op("ok", value=1), op("ok", value=2)], 1, history=hist, checks=("bounds",))
    assert r.verdict == "unknown" and r.totals["lost"] == 0


def test_incomplete_seats_history_still_proves_lost_reservations():
    # three seats acknowledged, yet only one is gone: missing takes could only lower the final further
    r = verdict([take("ok", 4), take("ok", 3), take("ok", 2)], 4, initial=5, checks=("bounds",),
                history=DECR_MISSING)
    assert r.verdict == "fail"
    assert result(r, "bounds").evidence["lost"] == 2 and r.totals["lost"] == 2


def test_incomplete_seats_history_without_ops_is_unknown_never_lost():
    # the history file is gone: 50 seats taken by ops nobody recorded explain the final 0
    r = verdict([], 0, initial=50, checks=SEATS, history=DECR_MISSING)
    assert r.verdict == "unknown", r.reason
    assert result(r, "bounds").valid is None and r.totals["lost"] == 0 and r.totals["unexplained"] == 50
    # no undecided check carries a finding, not even a zero
    assert not [c for c in r.checks if c.valid is None and {"lost", "duplicated", "oversold"} & set(c.evidence)]


def test_incomplete_seats_history_below_the_range_is_unknown():
    r = verdict([take("ok", 4)], 1, initial=5, checks=("bounds",), history=DECR_MISSING)
    assert r.verdict == "unknown" and r.totals["duplicated"] == 0


def test_incomplete_history_is_never_a_pass():
    assert verdict([op("ok", value=1)], 1, history=INCR_MISSING).verdict == "unknown"
    assert verdict([take("ok", 1)], 1, initial=2, checks=SEATS, history=DECR_MISSING).verdict == "unknown"


def test_incomplete_history_still_proves_a_repeated_value():
    r = verdict([op("ok", value=1), op("ok", value=1)], 2, history=INCR_MISSING, checks=("unique-values",))
    assert r.verdict == "fail" and r.totals["duplicate_values"] == 1


def test_incomplete_history_of_unknown_direction_cannot_place_values():
    # a missing decrement could have brought the counter below a value an increment returned
    hist = Completeness(complete=False, missing=("w2: no footer",))
    r = verdict([op("ok", value=1), op("ok", value=2)], 1, history=hist, checks=("unique-values",))
    assert r.verdict == "unknown"


def test_incomplete_history_is_never_a_pass_even_when_every_check_it_ran_holds():
    # unique values hold whatever the missing ops did; the verdict still cannot be a pass
    r = verdict([op("ok", value=1), op("ok", value=2)], 2, history=INCR_MISSING, checks=("unique-values",))
    assert result(r, "unique-values").valid is True
    assert r.verdict == "unknown" and "incomplete" in r.reason


def test_bounds_unknown_when_the_final_value_was_not_read():
    r = verdict([op("ok", value=1)], {KEY: None}, checks=("bounds",))
    assert result(r, "bounds").valid is None and r.verdict == "unknown"


def test_bounds_unknown_when_the_reachable_set_is_too_fragmented():
    # 17 indeterminate amounts whose subset sums never touch: 2**17 disjoint finals, past the cap
    ops = [op("ok", 1, None)] + [op("indeterminate", 3 * 2**k) for k in range(17)]
    r = verdict(ops, 1 + 3 + 6 + 1, checks=("bounds",))  # inside [lower, upper], in a gap or not: undecidable
    b = result(r, "bounds")
    assert b.valid is None and "too fragmented" in b.evidence["reason"] and r.verdict == "unknown"


def test_final_not_read_is_unknown():
    r = verdict([op("ok", value=1)], {KEY: None})
    assert r.verdict == "unknown"


def test_crashing_check_is_unknown(monkeypatch):
    import dataclasses

    import harness.checks as checks

    def boom(**_):
        raise RuntimeError("bug")

    monkeypatch.setitem(checks.CHECKS, "bounds", dataclasses.replace(checks.CHECKS["bounds"], fn=boom))
    r = verdict([op("ok", value=1)], 1)
    b = result(r, "bounds")
    assert b.valid is None and "RuntimeError: bug" in b.evidence["error"]
    assert r.verdict == "unknown"


def test_evidence_lists_are_capped():
    ops = [op("ok", value=1) for _ in range(100)]
    u = result(verdict(ops, 100), "unique-values")
    assert u.evidence["duplicate_values"] == 99
    assert len(u.evidence["repeated"]) <= 20


def test_reachable_collapses_unit_steps_to_an_interval():
    assert reachable(5, Counter({1: 1_000_000})) == [(5, 1_000_005)]


def test_reachable_keeps_gaps():
    r = reachable(0, Counter({10: 1, -10: 1}))
    assert r == [(-10, -10), (0, 0), (10, 10)]
    assert contains(r, 0) and not contains(r, 5)


def test_reachable_gives_up_when_too_fragmented():
    amounts = Counter({2**i: 1 for i in range(4, 30)})
    with pytest.raises(TooManyIntervals):
        reachable(0, amounts, cap=1000)


# --- the same stories tallied from columns (numpy), as judge tallies history files ---------------

def column_verdict(ops, final, initial=0, checks=("bounds", "unique-values"), history=COMPLETE, returns="after",
                   batch=2):
    """run_checks on tallies built by ColumnTally from batches of columns (several workers)."""
    from harness.checks.columns import ColumnTally
    from harness.history import OpColumns

    t = ColumnTally()
    for i in range(0, len(ops), batch):
        t.add(OpColumns.from_ops(f"w{i % 3}", ops[i:i + batch]))
    keys = {o.key for o in ops} | {KEY}
    fin = final if isinstance(final, dict) else {KEY: final}
    return run_checks(checks=checks, tallies=t.tallies(), initial=dict.fromkeys(keys, initial), final=fin,
                      history=history, returns=returns)


STORIES = [  # (ops, final, keyword arguments): passing and failing histories
    ([op("ok", value=1), op("ok", value=2), op("ok", value=3)], 3, {}),
    ([op("ok", value=1), op("fail")], 2, {}),  # a failed op that was applied: duplicated
    ([op("ok", value=1), op("indeterminate"), op("indeterminate")], 2, {}),
    ([op("ok", value=1), op("ok", value=2), op("ok", value=3)], 1, {}),  # lost
    ([op("ok", value=1), op("ok", value=1), op("ok", value=3)], 3, {}),  # repeated value, total matches
    ([op("ok", value=1), op("ok", value=7)], 2, {}),  # out of range
    ([op("ok", value=v) for v in (5, 5, 5, 9, 9, 2, 1, 3)], 4, {}),  # repeats ranked, out of range listed
    ([op("ok", value=10), op("ok", value=11)], 12, {"initial": 10, "returns": "before"}),
    ([op("ok", value=None), op("ok", value=2)], 2, {}),
    ([op("ok"), op("ok")], 2, {}),
    ([take("ok", 1), take("ok", 0), take("fail"), take("fail")], 0, {"initial": 2, "checks": SEATS}),
    ([take("ok", 1), take("ok", 0), take("ok", -1)], -1, {"initial": 2, "checks": SEATS}),  # oversold
    ([take("ok", 1), take("ok", 1), take("ok", 0)], 0, {"initial": 2, "checks": SEATS}),
    ([op("ok", 5, None), op("indeterminate", 10), op("indeterminate", -10)], 10, {"checks": ("bounds",)}),
    ([op("ok", 100, 100), op("indeterminate", 500), op("ok", 7, 107)], 350, {}),
    ([op("ok", value=1, key="a"), op("ok", value=2, key="a"), op("ok", value=1, key="b")],
     {"a": 1, "b": 1, KEY: 0}, {}),  # per key and total
    ([op("ok", value=1, key="a")], {"a": 1, KEY: 3}, {}),  # an untouched key moved
    ([op("ok", value=1)], 5, {"history": INCR_MISSING}),
    ([op("ok", value=1), op("ok", value=2)], 1, {"history": INCR_MISSING}),
    ([], 0, {"initial": 50, "checks": SEATS, "history": DECR_MISSING}),
    ([op("ok", value=2**70), op("ok", value=2**70), op("ok", 2**65, None)], 2**70, {}),  # beyond 64 bits
    ([op("ok", value=1) for _ in range(100)], 100, {}),  # evidence capped
]


@pytest.mark.parametrize(("ops", "final", "kw"), STORIES)
@pytest.mark.parametrize("batch", [1, 2, 100])
def test_column_tallies_give_the_same_report_as_ops(ops, final, kw, batch):
    by_ops = verdict(ops, final, **kw)
    by_columns = column_verdict(ops, final, batch=batch, **kw)
    assert by_columns.verdict == by_ops.verdict
    assert by_columns.totals == by_ops.totals
    assert [c.to_json() for c in by_columns.checks] == [c.to_json() for c in by_ops.checks]


def test_column_tallies_catch_duplicates_and_lost_updates():
    import numpy as np

    from harness.checks.columns import ColumnTally
    from harness.history import OpColumns

    # a large history in columns: values 1..N once each, except ten handed out twice (lost updates)
    n = 50_000
    values = np.arange(1, n + 1, dtype=np.int64)
    values[1000:1010] = values[999]  # eleven ops saw 1000
    cols = OpColumns(worker="w", strings=["k"], id=np.arange(n, dtype=np.int64),
                     key=np.ones(n, dtype=np.uint32), kind=np.zeros(n, dtype=np.uint8),
                     amount=np.ones(n, dtype=np.int64), outcome=np.zeros(n, dtype=np.uint8),
                     has_value=np.ones(n, dtype=bool), value=values, error=np.zeros(n, dtype=np.uint32),
                     attempts=np.ones(n, dtype=np.uint16), invoked_us=np.arange(n, dtype=np.int64),
                     completed_us=np.arange(n, dtype=np.int64) + 5)
    t = ColumnTally(latencies=True)
    t.add(cols)
    tallies = t.tallies()
    assert isinstance(tallies["k"].ok_values, np.ndarray) and tallies["k"].ok_sum == n
    r = run_checks(checks=("bounds", "unique-values"), tallies=tallies, initial={"k": 0}, final={"k": n - 10},
                   history=COMPLETE)
    assert r.verdict == "fail"
    assert r.totals["lost"] == 10 and r.totals["duplicate_values"] == 10
    u = result(r, "unique-values", "k")
    assert u.evidence["repeated"] == [{"value": 1000, "times": 11}]
    assert u.evidence["out_of_range"] == 10 and u.evidence["out_of_range_values"] == list(range(n - 9, n + 1))
    assert list(t.latencies_us()[:2]) == [5, 5] and (t.invoked_min, t.invoked_max) == (0, n - 1)
    ok = run_checks(checks=("bounds", "unique-values"), tallies={"k": tallies["k"]}, initial={"k": 0},
                    final={"k": n}, history=COMPLETE)
    assert result(ok, "bounds", "k").valid is True and ok.verdict == "fail"  # the repeats still fail it


# --- uncertain ops resolved after the run by their idempotency keys -------------------------------

def test_resolved_ops_count_as_what_the_lookup_said():
    from harness.checks.columns import ColumnTally, Resolution
    from harness.history import OpColumns

    ops = [op("ok", value=1), op("indeterminate"), op("indeterminate"), op("indeterminate")]
    applied, not_applied, unknown = (o.id for o in ops[1:])
    t = ColumnTally(resolutions={"w": Resolution([[applied, 2]], [not_applied])})
    t.add(OpColumns.from_ops("w", ops))
    tallies = t.tallies()
    assert (t.resolved_applied, t.resolved_not_applied) == (1, 1)
    k = tallies[KEY]
    assert (k.ok, k.fail, k.indeterminate) == (2, 1, 1) and sorted(k.ok_values.tolist()) == [1, 2]
    del unknown
    # the final must now hold the applied one: 1 lost if it does not
    lost = run_checks(checks=("bounds",), tallies=tallies, initial={KEY: 0}, final={KEY: 1}, history=COMPLETE)
    assert lost.verdict == "fail" and lost.totals["lost"] == 1


def test_resolutions_of_another_process_do_not_apply():
    from harness.checks.columns import ColumnTally, Resolution
    from harness.history import OpColumns

    ops = [op("ok", value=1), op("indeterminate")]
    t = ColumnTally(resolutions={"other": Resolution([[ops[1].id, 2]], [])})
    t.add(OpColumns.from_ops("w", ops))
    assert t.tallies()[KEY].indeterminate == 1 and t.resolved_applied == 0
