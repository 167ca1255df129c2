"""Stories of the checks that read time: real-time order, reads during the run, gap attribution."""

from __future__ import annotations

from harness.checks import Completeness, run_checks
from harness.checks.columns import ColumnTally
from harness.checks.timed import Clock, clocks, offset
from harness.history import OpColumns
from harness.ops import Op, Outcome

KEY = "k"
UP = Completeness(complete=True, op_signs=frozenset({1}))


def o(outcome: str, inv: int, cmp: int | None, value: int | None = None, *, kind: str = "incr", amount: int = 1,
      worker: str = "w", op: list[int] = [0]) -> Op:  # noqa: B006 - a counter shared on purpose: unique op ids
    op[0] += 1
    return Op(worker, op[0], KEY, kind, 0 if kind == "read" else amount, Outcome(outcome), value, None, inv, cmp)


def read(inv: int, cmp: int, value: int, worker: str = "w") -> Op:
    return o("ok", inv, cmp, value, kind="read", worker=worker)


def check(name: str, ops: list[Op], final: int, *, initial: int = 0, history: Completeness = UP,
          clocks: dict[str, Clock] | None = None):
    if clocks is None:
        r = run_checks(checks=(name,), ops=ops, initial={KEY: initial}, final={KEY: final}, history=history)
    else:
        t = ColumnTally(timed=True, clocks=clocks)
        for w in sorted({x.worker for x in ops}):
            t.add(OpColumns.from_ops(w, [x for x in ops if x.worker == w]))
        r = run_checks(checks=(name,), tallies=t.tallies(), initial={KEY: initial}, final={KEY: final},
                       history=history)
    return next(c for c in r.checks if c.name == name)


# --- realtime-order ----------------------------------------------------------------------------------

def test_a_later_op_with_a_lower_value_is_out_of_order():
    a, b = o("ok", 0, 10, 2), o("ok", 20, 30, 1)
    r = check("realtime-order", [a, b], 2)
    assert r.valid is False and r.evidence["out_of_order"] == 1
    assert [w["op"] for w in r.evidence["witness"]] == [a.id, b.id]
    assert r.evidence["reason"] == (f"op {a.id} (w) finished at 0.000010 s with 2; op {b.id} (w) started later, "
                                    "at 0.000020 s, and got 1")  # the sentence a person reads


def test_overlapping_ops_may_take_values_in_either_order():
    assert check("realtime-order", [o("ok", 0, 30, 2), o("ok", 20, 40, 1)], 2).valid is True


def test_decrements_must_go_down_in_real_time():
    ops = [o("ok", 0, 10, 4, kind="decr_if_positive", amount=-1), o("ok", 20, 30, 5, kind="decr_if_positive",
                                                                  amount=-1)]
    r = check("realtime-order", ops, 4, initial=6, history=Completeness(complete=True, op_signs=frozenset({-1})))
    assert r.valid is False


def test_clock_uncertainty_makes_a_close_order_undecidable():
    a, b = o("ok", 0, 10, 2, worker="w1"), o("ok", 15, 30, 1, worker="w2")
    exact = {"w1": Clock(0, 0), "w2": Clock(0, 0)}
    assert check("realtime-order", [a, b], 2, clocks=exact).valid is False
    loose = {"w1": Clock(0, 10), "w2": Clock(0, 10)}  # either clock may be 10 us off: the order is not known
    assert check("realtime-order", [a, b], 2, clocks=loose).valid is True


def test_ops_of_equal_value_are_not_ordered_by_it():
    a, b = o("ok", 0, 10, 5), o("ok", 20, 30, 5)  # a value handed out twice: unique-values' finding, not this
    for ops in ([a, b], [b, a]):
        assert check("realtime-order", ops, 6, initial=4).valid is True
        assert check("unique-values", ops, 6, initial=4).valid is False
    late = o("ok", 40, 50, 4)  # ... but an op after both that got a lower value is out of order all the same
    assert check("realtime-order", [a, b, late], 6, initial=3).evidence["out_of_order"] == 1


def test_a_clock_offset_is_bounded_by_half_the_round_trips_of_the_masters_samples():
    # the worker's timeline runs 5 s ahead of the master's; answers take 2 ms there and back
    master, worker = (1_000_000_000_000, 0), (1_000_000_000_000 + 5_000_000_000, 0)
    samples = [(t, t + 2_000_000, t + 1_000_000) for t in range(0, 10_000_000_000, 1_000_000_000)]
    off, unc = offset(samples, master=master, worker=worker)
    assert abs(off - 5_000_000_000) <= 1_000 and 1_000_000 <= unc <= 1_600_000  # rtt/2 + 0.5 ms of drift
    # the reading may have been taken anywhere inside the round trip: the true offset stays inside the bound
    early = [(a, b, a) for a, b, _ in samples]
    late = [(a, b, b) for a, b, _ in samples]
    for s in (early, late):
        o, u = offset(s, master=master, worker=worker)
        assert abs(o - 5_000_000_000) <= u
    # a clock that drifted while the run lasted: the bound is the hull of the samples
    drifting = [(a, b, r + i * 100_000) for i, (a, b, r) in enumerate(samples)]
    o, u = offset(drifting, master=master, worker=worker)
    assert u >= 450_000 + 1_000_000


def test_ops_of_several_hosts_are_placed_by_the_measured_offsets():
    headers = {"a": {"host": "h1", "anchor_wall_ns": 10**18, "anchor_monotonic_ns": 0},
               "b": {"host": "h2", "anchor_wall_ns": 10**18 + 3_000_000_000, "anchor_monotonic_ns": 0}}
    assert clocks(headers, None) is None  # two hosts and no samples: no order can be read
    sampled = {"anchor_wall_ns": 10**18, "anchor_monotonic_ns": 0,
               "workers": {"a": [(0, 100_000, 50_000)], "b": [(0, 100_000, 50_000)]}}
    c = clocks(headers, sampled)
    assert c is not None and c["b"].base_us - c["a"].base_us == 0  # b's wall clock ran 3 s ahead: taken back
    # each clock is known within 50 us (half the round trip) and 0.5 ms of drift: 1.1 ms between two processes
    assert c["a"].uncertainty_us == c["b"].uncertainty_us and 550 <= c["a"].uncertainty_us <= 560
    # b's op, 2 ms after a's finished on the master's clock, got a lower value: a violation beyond the bound
    a, b = o("ok", 0, 10, 2, worker="a"), o("ok", 2_000, 2_100, 1, worker="b")
    assert check("realtime-order", [a, b], 2, clocks=c).valid is False
    near = o("ok", 600, 700, 1, worker="b")  # within the clocks' uncertainty of a's end: not an order
    assert check("realtime-order", [a, near], 2, clocks=c).valid is True


def test_realtime_order_without_values_is_undecided():
    assert check("realtime-order", [o("ok", 0, 10)], 1).valid is None


# --- reads -------------------------------------------------------------------------------------------

def test_a_read_after_an_acknowledged_increment_must_see_it():
    w, r = o("ok", 0, 10, 1), read(20, 30, 0)
    result = check("reads", [w, r], 1)
    assert result.valid is False and result.evidence["stale"] == 1
    assert [x["op"] for x in result.evidence["witness"]] == [w.id, r.id]  # the increment it did not see


def test_a_read_concurrent_with_an_increment_may_see_it_or_not():
    for seen in (0, 1):
        assert check("reads", [o("ok", 0, 30, 1), read(10, 20, seen)], 1).valid is True


def test_a_read_of_a_change_nobody_sent_yet_is_ahead():
    result = check("reads", [read(0, 10, 1), o("ok", 20, 30, 1)], 1)
    assert result.valid is False and result.evidence["ahead"] == 1


def test_an_uncertain_increment_may_or_may_not_be_seen():
    for seen in (0, 1):
        assert check("reads", [o("indeterminate", 0, 5), read(10, 20, seen)], 1).valid is True
    assert check("reads", [o("indeterminate", 0, 5), read(10, 20, 2)], 1).valid is False


def test_times_are_truncated_to_the_microsecond_so_a_tie_may_go_either_way():
    # the read answered in the microsecond the increment was sent: it may have seen it
    assert check("reads", [read(0, 2, 1), o("ok", 2, 3, 1)], 1).valid is True
    # ... and the uncertain op sent in the microsecond a higher value was answered may have made the gap
    ops = [o("ok", 0, 5, 2), o("indeterminate", 5, 9)]
    assert check("gaps", ops, 2).valid is True
    # but an op sent in the microsecond another finished is not after it: no real-time order between them
    assert check("realtime-order", [o("ok", 0, 10, 2), o("ok", 10, 20, 1)], 2).valid is True


def test_reads_do_not_go_back():
    first, second = read(10, 20, 2), read(30, 40, 1)
    result = check("reads", [o("ok", 0, 100, 1), o("ok", 0, 100, 2), first, second], 2)
    assert result.valid is False and result.evidence["backwards"] == 1
    assert result.evidence["reason"] == (f"read op {first.id} finished at 0.000020 s with 2; read op {second.id} "
                                         "started later, at 0.000030 s, and got 1: the counter went back")


def test_an_incomplete_history_only_proves_stale_reads_of_increments():
    missing = Completeness(complete=False, missing=("w2: no footer",), op_signs=frozenset({1}))
    assert check("reads", [read(0, 10, 5)], 5, history=missing).valid is True  # missing increments explain it
    assert check("reads", [o("ok", 0, 10, 1), read(20, 30, 0)], 1, history=missing).valid is False


# --- gaps --------------------------------------------------------------------------------------------

def test_a_value_nobody_returned_is_the_uncertain_op_that_was_out_then():
    ops = [o("ok", 0, 10, 1), o("indeterminate", 5, 25), o("ok", 20, 30, 3)]
    r = check("gaps", ops, 3)
    assert r.valid is True and (r.evidence["gaps"], r.evidence["shown_applied"]) == (1, 1)


def test_a_value_no_op_could_have_produced_is_a_phantom():
    r = check("gaps", [o("ok", 0, 10, 1), o("ok", 20, 30, 3)], 3)
    assert r.valid is False and r.evidence["phantom_values"] == [2]


def test_an_uncertain_op_sent_after_the_value_was_passed_cannot_account_for_it():
    # 2 lies below 3, whose op was answered at 70: the op sent at 80 came too late for 2 (it made 4)
    ops = [o("ok", 40, 50, 1), o("ok", 60, 70, 3), o("indeterminate", 80, 90)]
    r = check("gaps", ops, 4)
    assert r.valid is False and r.evidence["phantom_values"] == [2] and r.evidence["shown_applied"] == 1


def test_a_value_handed_out_twice_closes_the_window_of_the_gap_below_at_its_latest_answer():
    # 3 was returned twice, last answered at 200: the uncertain op sent at 50 may have made 2 before it
    ops = [o("ok", 0, 5, 1), o("ok", 0, 200, 3), o("ok", 10, 20, 3), o("indeterminate", 50, 60)]
    r = check("gaps", ops, 3)
    assert r.valid is True and r.evidence["shown_applied"] == 1


def test_an_op_that_timed_out_may_still_take_effect_after_its_client_gave_up():
    # timed out at 10; the value it made (2) came after 1, whose op was sent at 20: a request held up in
    # the network reaches the server late
    ops = [o("indeterminate", 0, 10), o("ok", 20, 25, 1), o("ok", 30, 40, 3)]
    r = check("gaps", ops, 3)
    assert r.valid is True and r.evidence["shown_applied"] == 1


def test_uncertain_ops_not_needed_are_shown_not_applied():
    r = check("gaps", [o("ok", 0, 10, 1), o("indeterminate", 0, 20)], 1)
    assert r.valid is True and r.evidence["shown_not_applied"] == 1


def test_gaps_of_an_incomplete_history_are_undecided():
    missing = Completeness(complete=False, missing=("w2: no footer",), op_signs=frozenset({1}))
    assert check("gaps", [o("ok", 0, 10, 1), o("ok", 20, 30, 3)], 3, history=missing).valid is None
