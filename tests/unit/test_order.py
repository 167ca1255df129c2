"""Stories of the checks that read time: real-time order, reads during the run, gap attribution."""

from __future__ import annotations

import itertools

from harness.checks import Completeness, run_checks
from harness.checks.columns import ColumnTally, Resolution
from harness.checks.timed import Clock, clocks, offset
from harness.core.ops import Op, Outcome
from harness.history import OpColumns

KEY = "k"
UP = Completeness(complete=True, op_signs=frozenset({1}))


def o(outcome: str, inv: int, cmp: int | None, value: int | None = None, *, kind: str = "incr", amount: int = 1,
      worker: str = "w", op: list[int] = [0]) -> Op:  # noqa: B006 - a counter shared on purpose: unique op ids
    op[0] += 1
    return Op(worker, op[0], KEY, kind, 0 if kind == "read" else amount, Outcome(outcome), value, None, inv, cmp)


def read(inv: int, cmp: int, value: int, worker: str = "w") -> Op:
    return o("ok", inv, cmp, value, kind="read", worker=worker)


def check(name: str, ops: list[Op], final: int, *, initial: int = 0, history: Completeness = UP,
          clocks: dict[str, Clock] | None = None, applied: dict[int, int] | None = None):
    """One check's result; ``applied``: uncertain ops (by id, of worker "w") a lookup found applied, with
    the value each left."""
    if clocks is None:
        resolutions = {"w": Resolution([[i, v] for i, v in applied.items()], [])} if applied else None
        r = run_checks(checks=(name,), ops=ops, initial={KEY: initial}, final={KEY: final}, history=history,
                       resolutions=resolutions)
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
    loose = {"w1": Clock(0, 10_000), "w2": Clock(0, 10_000)}  # either clock may be 10 us off: the order is not known
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
    assert c is not None and c["b"].base_ns - c["a"].base_ns == 0  # b's wall clock ran 3 s ahead: taken back
    # each clock is known within 50 us (half the round trip) and 0.5 ms of drift: 1.1 ms between two processes
    assert c["a"].uncertainty_ns == c["b"].uncertainty_ns and 550_000 <= c["a"].uncertainty_ns <= 560_000
    # b's op, 2 ms after a's finished on the master's clock, got a lower value: a violation beyond the bound
    a, b = o("ok", 0, 10, 2, worker="a"), o("ok", 2_000, 2_100, 1, worker="b")
    assert check("realtime-order", [a, b], 2, clocks=c).valid is False
    near = o("ok", 600, 700, 1, worker="b")  # within the clocks' uncertainty of a's end: not an order
    assert check("realtime-order", [a, near], 2, clocks=c).valid is True


def test_hosts_are_told_apart_by_machine_and_boot_not_by_name():
    def header(host: str, boot: str) -> dict:
        return {"host": host, "machine_id": "m-" + boot, "boot_id": boot, "anchor_wall_ns": 10**18,
                "anchor_monotonic_ns": 5}

    # two machines both named "worker": two clocks, which cannot be placed without the master's samples
    assert clocks({"a": header("worker", "b1"), "b": header("worker", "b2")}) is None
    # one machine under two names (a UTS namespace, a container): one monotonic clock, exact
    one = clocks({"a": header("worker-a", "b1"), "b": header("worker-b", "b1")})
    assert one == {"a": Clock(5), "b": Clock(5)}
    # histories written before boot ids were recorded: by host name, as they were
    old = {"host": "h", "anchor_monotonic_ns": 5}
    assert clocks({"a": old, "b": old}) == {"a": Clock(5), "b": Clock(5)}


def test_ops_less_than_a_microsecond_apart_are_never_read_in_an_order():
    # two processes whose anchors lie 600 ns apart: a's op ended in its microsecond 10, b's began in its
    # microsecond 10 -- b's began 600 ns later on the timeline, which a's truncated end may pass
    a, b = o("ok", 0, 10, 2, worker="a"), o("ok", 10, 20, 1, worker="b")
    assert check("realtime-order", [a, b], 2, clocks={"a": Clock(0), "b": Clock(600)}).valid is True
    # a whole microsecond after a's end could be: the order holds
    assert check("realtime-order", [a, b], 2, clocks={"a": Clock(0), "b": Clock(1_000)}).valid is False


def test_a_clock_beyond_its_last_sample_is_placed_ever_more_loosely():
    # sampled for the first second only (sampling stopped): 1 ms of uncertainty, growing by 0.5 ms each second
    loose = Clock(0, 1_000_000, (0, 1_000_000_000))
    for at_s, gap_us, ordered in ((0.5, 1_500, True), (60, 1_500, False), (60, 65_000, True)):
        t = int(at_s * 1e6)
        a, b = o("ok", t - 10, t, 2, worker="a"), o("ok", t + gap_us, t + gap_us + 10, 1, worker="b")
        exact_a = {"a": Clock(0), "b": loose}
        assert (check("realtime-order", [a, b], 2, clocks=exact_a).valid is False) == ordered, (at_s, gap_us)


def test_clock_sampling_thins_out_evenly_but_never_stops():
    from harness.load.clock import ClockSamples

    kept = ClockSamples(cap=1_000)
    for t in range(1, 100_002):  # a day and more of one sample a second, kept in at most 1,001
        kept.add((t, t, t))
    samples = kept.samples()
    assert len(samples) <= 1_001 and samples[0][0] == 1 and samples[-1][0] == 100_001  # the newest: always
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(samples)]
    assert max(gaps) <= 128 and sorted(gaps)[len(gaps) // 2] == 128  # evenly spread over the whole run


def test_an_op_of_any_amount_occupies_the_range_it_moved_the_counter_through():
    # +2 -> 2 finished, then +5 -> 5: the second took the counter from 0 to 5, missing the first's change
    a, b = o("ok", 0, 10, 2, amount=2), o("ok", 20, 30, 5, amount=5)
    r = check("realtime-order", [a, b], 7)
    assert r.valid is False and r.evidence["out_of_order"] == 1
    assert r.evidence["reason"] == (f"op {a.id} (w) finished at 0.000010 s, having taken the counter from 0 to 2; "
                                    f"op {b.id} (w) started later, at 0.000020 s, and took it from 0 to 5: it "
                                    "missed the change before it")
    # ... +2 -> 2 then +5 -> 7 is the truth
    assert check("realtime-order", [a, o("ok", 20, 30, 7, amount=5)], 7).valid is True


def test_ranges_that_overlap_count_one_change_twice_whenever_they_ran():
    a, b = o("ok", 0, 30, 2, amount=2), o("ok", 10, 40, 5, amount=5)  # concurrent: no order, but (0,2] and (0,5]
    r = check("realtime-order", [a, b], 5)
    assert r.valid is False and (r.evidence["out_of_order"], r.evidence["overlapping"]) == (0, 1)
    assert "from 0 to 2" in r.evidence["reason"] and "from 0 to 5" in r.evidence["reason"]
    # the same two ops, each seeing the other: (5,7] above (0,5]
    assert check("realtime-order", [o("ok", 0, 30, 7, amount=2), o("ok", 10, 40, 5, amount=5)], 7).valid is True


def test_a_range_lies_within_the_initial_and_final_values():
    # +3 -> 2 from 0 started at -1, a state the counter never had
    r = check("realtime-order", [o("ok", 0, 10, 2, amount=3)], 3)
    assert r.valid is False and (r.evidence["outside"], r.evidence["overlapping"]) == (1, 1)
    assert "took the counter from -1 to 2, but the counter started at 0" in r.evidence["reason"]
    # +3 -> 5 from 0, yet the counter ended at 4: it went to a state later lost
    r = check("realtime-order", [o("ok", 0, 10, 2, amount=2), o("ok", 20, 30, 5, amount=3)], 4)
    assert r.valid is False and "but the counter ended at 4" in r.evidence["reason"]
    assert check("realtime-order", [o("ok", 0, 10, 2, amount=2), o("ok", 20, 30, 5, amount=3)], 5).valid is True


def test_ranges_of_values_before_and_of_decrements():
    before = Completeness(complete=True, op_signs=frozenset({1}))
    # UPDATED_OLD: 0 (+2) then 1 (+5): the second started from 1 after the first had taken it to 2
    ops = [o("ok", 0, 10, 0, amount=2), o("ok", 20, 30, 1, amount=5)]
    r = run_checks(checks=("realtime-order",), ops=ops, initial={KEY: 0}, final={KEY: 7}, history=before,
                   returns="before")
    assert r.checks[0].valid is False
    ops = [o("ok", 0, 10, 0, amount=2), o("ok", 20, 30, 2, amount=5)]
    r = run_checks(checks=("realtime-order",), ops=ops, initial={KEY: 0}, final={KEY: 7}, history=before,
                   returns="before")
    assert r.checks[0].valid is True
    down = Completeness(complete=True, op_signs=frozenset({-1}))
    # 10 -3 -> 7, then -2 -> 8: the second began at 10, above where the first had left it
    ops = [o("ok", 0, 10, 7, amount=-3), o("ok", 20, 30, 8, amount=-2)]
    assert check("realtime-order", ops, 5, initial=10, history=down).valid is False
    ops = [o("ok", 0, 10, 7, amount=-3), o("ok", 20, 30, 5, amount=-2)]
    assert check("realtime-order", ops, 5, initial=10, history=down).valid is True


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


def test_a_read_is_at_least_where_an_acknowledged_write_left_the_counter():
    # a slow acknowledgement: +1 applied first but answered at 100; +1 -> 2 answered at 10. A read sent at
    # 20 counts only one write acknowledged before it (so 1 would do by counts), yet 2 was already handed out
    slow, fast, r = o("ok", 0, 100, 1), o("ok", 0, 10, 2), read(20, 30, 1)
    result = check("reads", [slow, fast, r], 2)
    assert result.valid is False and result.evidence["stale"] == 1
    assert [x["op"] for x in result.evidence["witness"]] == [fast.id, r.id]
    assert check("reads", [slow, fast, read(20, 30, 2)], 2).valid is True


def test_a_read_is_at_most_where_a_write_sent_after_its_answer_found_the_counter():
    # three writes sent before the read's answer (counts allow 3), but the one that made 3 was sent after it
    ops = [o("ok", 0, 50, 1), o("ok", 0, 50, 2), o("indeterminate", 0, 50), o("ok", 20, 30, 3)]
    r = read(0, 10, 3)
    result = check("reads", [*ops, r], 4)
    assert result.valid is False and result.evidence["ahead"] == 1
    assert result.evidence["witness"][0]["op"] == ops[3].id and "found the counter at 2" in result.evidence["reason"]
    assert check("reads", [*ops, read(0, 10, 2)], 4).valid is True


def test_a_read_beyond_the_final_value_of_a_counter_that_only_grows_saw_a_state_later_lost():
    ops = [o("indeterminate", 0, 5) for _ in range(3)]
    r = check("reads", [*ops, read(10, 20, 3)], 2)  # counts allow 3, but the counter ended at 2
    assert r.valid is False and r.evidence["lost_state"] == 1
    assert "which only grows, ended at 2: it read a state that was later lost" in r.evidence["reason"]
    assert check("reads", [*ops, read(10, 20, 2)], 2).valid is True
    # seats go down: a read below where they ended
    down = Completeness(complete=True, op_signs=frozenset({-1}))
    takes = [o("indeterminate", 0, 5, kind="decr_if_positive", amount=-1) for _ in range(2)]
    r = check("reads", [*takes, read(10, 20, 8)], 9, initial=10, history=down)
    assert r.valid is False and "which only shrinks, ended at 9" in r.evidence["reason"]


def test_a_read_inside_one_changes_range_saw_a_value_the_counter_never_held():
    # +3 took the counter from 0 to 3 at once; the read, sent before the only other op, saw 1
    plus3, late, r = o("ok", 0, 10, 3, amount=3), o("indeterminate", 20, None), read(0, 10, 1)
    result = check("reads", [plus3, late, r], 4)
    assert result.valid is False and result.evidence["never_held"] == 1
    assert [w["op"] for w in result.evidence["witness"]] == [plus3.id, r.id]
    assert "took the counter from 0 to 3 at once: it never held that value" in result.evidence["reason"]
    assert check("reads", [plus3, late, read(0, 10, 3)], 4).valid is True
    assert check("reads", [plus3, late, read(0, 10, 0)], 4).valid is True


# --- ops a lookup showed applied: no known completion -------------------------------------------------

def test_an_op_resolved_applied_may_have_landed_after_its_client_gave_up():
    # timed out at 10, found applied with 2 after the run; an op sent at 20 got 1: it landed before the late one
    late, after = o("indeterminate", 0, 10), o("ok", 20, 30, 1)
    assert check("realtime-order", [late, after], 2, applied={late.id: 2}).valid is True
    # ... and a read at 20 need not see it
    late = o("indeterminate", 0, 10)
    assert check("reads", [late, read(20, 30, 0)], 1, applied={late.id: 1}).valid is True
    # ... and an uncertain op sent after it gave up may have made the value below its own
    first, late, other = o("ok", 0, 2, 1), o("indeterminate", 0, 5), o("indeterminate", 20, 25)
    r = check("gaps", [first, late, other], 3, applied={late.id: 3})
    assert r.valid is True and r.evidence["phantoms"] == 0
    # but its invoke is known: it cannot have landed before it was sent
    early, late = o("ok", 0, 10, 2), o("indeterminate", 20, 30)
    assert check("realtime-order", [early, late], 2, applied={late.id: 1}).valid is False


# --- gaps --------------------------------------------------------------------------------------------

def test_a_value_nobody_returned_is_the_uncertain_op_that_was_out_then():
    ops = [o("ok", 0, 10, 1), o("indeterminate", 5, 25), o("ok", 20, 30, 3)]
    r = check("gaps", ops, 3)
    assert r.valid is True and (r.evidence["gaps"], r.evidence["shown_applied"]) == (1, 1)


def test_a_value_a_read_saw_was_made_before_the_read_was_answered():
    # the read saw 2 by 12: 1 and 2 were made by then, and not by b (which made 3). Only u was out by
    # then; v, sent at 50, came too late for either
    u, v, b, r = o("indeterminate", 0, None), o("indeterminate", 50, None), o("ok", 0, 100, 3), read(10, 12, 2)
    result = check("gaps", [u, v, b, r], 3)
    assert result.valid is False and result.evidence["phantoms"] == 1
    # sent before the read was answered, v may have made 2
    assert check("gaps", [u, o("indeterminate", 11, None), b, r], 3).valid is True


def test_a_read_bounds_the_gaps_below_it_for_values_before_and_for_decrements():
    # values before (UPDATED_OLD): b moved 2 -> 3; the read saw 2, so 0 -> 1 and 1 -> 2 were made by 12
    u, v, b, r = o("indeterminate", 0, None), o("indeterminate", 50, None), o("ok", 0, 100, 2), read(10, 12, 2)
    result = run_checks(checks=("gaps",), ops=[u, v, b, r], initial={KEY: 0}, final={KEY: 3}, history=UP,
                        returns="before")
    assert result.checks[0].valid is False and result.checks[0].evidence["phantoms"] == 1
    # seats: b took the last seat (-> 0); the read saw 1 left, so 3 -> 2 and 2 -> 1 were taken by 12
    down = Completeness(complete=True, op_signs=frozenset({-1}))
    takes = [o("indeterminate", 0, None, kind="decr_if_positive", amount=-1),
             o("indeterminate", 50, None, kind="decr_if_positive", amount=-1),
             o("ok", 0, 100, 0, kind="decr_if_positive", amount=-1)]
    result = check("gaps", [*takes, read(10, 12, 1)], 0, initial=3, history=down)
    assert result.valid is False and result.evidence["phantoms"] == 1


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
