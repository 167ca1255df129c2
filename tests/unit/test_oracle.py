"""The slow oracle (tests/oracle.py) on tiny stories, checked against a slower one still; then
counterbench's checks against the oracle on 100,000 random histories (STYLE item 13).

The two rules of the comparison (issue 21, item 9):

- no false alarm: the checks never fail a history the oracle calls linearizable;
- complete where claimed: for unit increments whose acknowledged ops all returned the value after,
  every history the oracle rejects is failed (not passed, not unknown).
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter

import pytest

from harness.core.ops import Op, Outcome
from tests.oracle import (
    BUGS,
    COMPLETE_DOMAIN,
    MUTATIONS,
    NEVER,
    Comparison,
    History,
    _apply,
    _events,
    compare_many,
    history_at,
    judge,
    linearizable,
    linearize,
    random_history,
    shrink,
)
from tests.unit.oracle_cases import CASES, Case

K = "k"


def ok(w: str, i: int, inv: int, cmp: int, value: int | None, amount: int = 1, **kw: int) -> Op:
    return Op(w, i, K, "incr", amount, Outcome.OK, value, None, inv, cmp, **kw)


def unsure(w: str, i: int, inv: int, cmp: int | None, amount: int = 1) -> Op:
    return Op(w, i, K, "incr", amount, Outcome.INDETERMINATE, None, "timeout", inv, cmp)


def failed(w: str, i: int, inv: int, cmp: int) -> Op:
    return Op(w, i, K, "incr", 1, Outcome.FAIL, None, "429", inv, cmp)


def read(w: str, i: int, inv: int, cmp: int | None, value: int | None, outcome: Outcome = Outcome.OK) -> Op:
    return Op(w, i, K, "read", 0, outcome, value, None, inv, cmp)


def take(w: str, i: int, inv: int, cmp: int | None, outcome: Outcome, value: int | None = None) -> Op:
    return Op(w, i, K, "decr_if_positive", -1, outcome, value, None, inv, cmp)


def h(*ops: Op, initial: int = 0, final: int, resolved: tuple[tuple[str, int, int | None], ...] = ()) -> History:
    return History(ops=ops, initial=initial, final=final, resolved=resolved)


# --- the oracle's stories ----------------------------------------------------------------------------

def test_an_empty_history_holds_only_its_initial_value():
    assert linearizable(h(initial=3, final=3))
    assert not linearizable(h(initial=3, final=4))


def test_acknowledged_ops_in_order_of_their_values():
    story = h(ok("a", 0, 0, 2, 1), ok("b", 0, 1, 3, 2), final=2)
    assert linearizable(story)
    assert [s.state for s in linearize(story).order] == [1, 2]


def test_an_acknowledged_op_missing_from_the_final_value_is_a_lost_update():
    assert not linearizable(h(ok("a", 0, 0, 2, 1), ok("b", 0, 1, 3, 2), final=1))


def test_two_concurrent_ops_that_returned_the_same_value_lost_an_update():
    # read-modify-write: both read 0, both wrote 1; whatever the final value, one of them is not there
    for final in (1, 2):
        assert not linearizable(h(ok("a", 0, 0, 5, 1), ok("b", 0, 0, 5, 1), final=final))


def test_a_later_op_cannot_return_a_lower_value():
    assert not linearizable(h(ok("a", 0, 0, 2, 2), ok("b", 0, 3, 5, 1), final=2))


def test_overlapping_ops_may_return_values_in_either_order():
    assert linearizable(h(ok("a", 0, 0, 5, 2), ok("b", 0, 3, 8, 1), final=2))


def test_equal_timestamps_may_be_in_either_order():
    # b was sent in the microsecond a was answered: truncated times cannot say which came first
    assert linearizable(h(ok("a", 0, 0, 5, 2), ok("b", 0, 5, 7, 1), final=2))
    assert not linearizable(h(ok("a", 0, 0, 5, 2), ok("b", 0, 6, 7, 1), final=2))


def test_an_uncertain_op_may_or_may_not_have_applied():
    story = (ok("a", 0, 0, 2, 1), unsure("a", 1, 3, 9))
    assert linearizable(h(*story, final=1)) and linearizable(h(*story, final=2))
    assert not linearizable(h(*story, final=3))  # at most once


def test_an_uncertain_op_may_land_after_its_client_gave_up():
    # a gave up at 5; b, sent at 6, got 1; a's request landed after it: the counter ends at 2
    assert linearizable(h(unsure("a", 0, 0, 5), ok("b", 0, 6, 8, 1), final=2))


def test_an_uncertain_op_cannot_land_before_it_was_sent():
    # the read at 0-1 saw 1, but the only op that could make 1 was sent at 2
    assert not linearizable(h(read("r", 0, 0, 1, 1), unsure("a", 0, 2, 9), final=1))


def test_a_never_completed_op_may_land_at_any_time_after_its_invoke():
    assert linearizable(h(unsure("a", 0, 0, None), ok("b", 0, 50, 60, 1), final=2))
    assert linearizable(h(unsure("a", 0, 0, None), ok("b", 0, 50, 60, 2), final=2))


def test_a_resolved_op_that_landed_after_its_client_gave_up():
    # the lookup says a was applied and left 2: it landed after b (sent after a's client gave up)
    story = (unsure("a", 0, 0, 5), ok("b", 0, 6, 8, 1))
    assert linearizable(h(*story, final=2, resolved=(("a", 0, 2),)))
    assert not linearizable(h(*story, final=2, resolved=(("a", 0, 1),)))  # 1 was b's
    assert not linearizable(h(*story, final=2, resolved=(("a", 0, None),)))  # then what made 2?
    assert not linearizable(h(*story, final=1, resolved=(("a", 0, 2),)))  # it was applied: 2 at least


def test_a_resolved_op_cannot_land_before_it_was_sent():
    # b finished with 2 before a was sent, yet the lookup says a left 1
    assert not linearizable(h(ok("b", 0, 0, 2, 2), unsure("a", 0, 3, 9), final=2, resolved=(("a", 0, 1),)))


def test_a_resolution_speaks_only_of_an_uncertain_op():
    # as counterbench reads it: an acknowledged op keeps its own value whatever a lookup says
    assert linearizable(h(ok("a", 0, 0, 2, 1), final=1, resolved=(("a", 0, None),)))


def test_a_failed_op_never_applied():
    assert linearizable(h(failed("a", 0, 0, 2), final=0))
    assert not linearizable(h(failed("a", 0, 0, 2), final=1))


def test_a_retried_op_applies_once():
    # three requests, one op: a store that applied two of them shows it in the final value
    assert linearizable(h(ok("a", 0, 0, 9, 1, attempts=3), final=1))
    assert not linearizable(h(ok("a", 0, 0, 9, 2, attempts=3), final=2))


def test_a_stale_read():
    # b's +1 was acknowledged before the read was sent; the read answered from before it
    story = (ok("b", 0, 0, 2, 1), read("r", 0, 3, 4, 0))
    assert not linearizable(h(*story, final=1))
    assert linearizable(h(ok("b", 0, 0, 2, 1), read("r", 0, 1, 4, 0), final=1))  # overlapping: either


def test_a_read_must_be_explained_by_the_values_writes_returned():
    # a returned 2 before the read was sent (an uncertain op made 1): the read cannot see 1
    assert not linearizable(h(unsure("u", 0, 0, None), ok("a", 0, 0, 2, 2), read("r", 0, 3, 4, 1), final=2))


def test_a_read_never_sees_more_than_the_final_value_of_a_growing_counter():
    assert not linearizable(h(unsure("u", 0, 0, 1), read("r", 0, 2, 3, 1), final=0))


def test_reads_that_did_not_succeed_say_nothing():
    assert linearizable(h(read("r", 0, 0, 1, None, Outcome.INDETERMINATE), read("r", 1, 2, None, None,
                                                                                Outcome.INDETERMINATE), final=0))


def test_seats_are_taken_only_while_some_are_left():
    assert linearizable(h(take("a", 0, 0, 2, Outcome.OK, 0), initial=1, final=0))
    assert not linearizable(h(take("a", 0, 0, 2, Outcome.OK, -1), initial=0, final=-1))
    # an uncertain take at zero changes nothing; a sold-out refusal says nothing either
    assert linearizable(h(take("a", 0, 0, 2, Outcome.INDETERMINATE), take("b", 0, 0, 2, Outcome.FAIL), final=0))


def test_amounts_other_than_one():
    assert linearizable(h(ok("a", 0, 0, 2, 2, amount=2), ok("b", 0, 3, 5, 7, amount=5), final=7))
    # b missed a's +2: 5 is what +5 makes from 0
    assert not linearizable(h(ok("a", 0, 0, 2, 2, amount=2), ok("b", 0, 3, 5, 5, amount=5), final=7))


def test_an_op_cannot_complete_before_it_was_invoked():
    with pytest.raises(ValueError):
        linearize(h(ok("a", 0, 5, 4, 1), final=1))


def test_the_witness_of_a_rejection_is_the_longest_consistent_order():
    r = linearize(h(ok("a", 0, 0, 2, 1), ok("b", 0, 3, 5, 1), final=1))
    assert not r and [(s.worker, s.state) for s in r.order] == [("a", 1)]
    assert "not linearizable" in r.explain()


# --- the oracle against a slower one: every subset, every order -------------------------------------

def brute_force(story: History) -> bool:
    """Every subset of the uncertain ops, every order of what is placed: an order holds when no op comes
    after one that was invoked after it completed (then increasing points within the windows exist)."""
    events = _events(story)
    must = [e for e in events if e.must]
    may = [e for e in events if not e.must]
    for k in range(len(may) + 1):
        for chosen in itertools.combinations(may, k):
            for order in itertools.permutations(must + list(chosen)):
                if any(order[i].hi < order[j].lo for i in range(len(order)) for j in range(i)):
                    continue
                state: int | None = story.initial
                for e in order:
                    state = _apply(e, state)
                    if state is None:
                        break
                if state == story.final:
                    return True
    return False


def small_histories(n: int, seed: int, most: int) -> list[History]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        story = random_history(rng)
        if len(_events(story)) <= most:
            out.append(story)
    return out


def test_the_search_agrees_with_trying_every_order():
    histories = small_histories(1500, seed=5, most=6)
    verdicts = Counter()
    for story in histories:
        fast = linearizable(story)
        assert fast == brute_force(story), story.literal()
        verdicts[fast] += 1
    assert verdicts[True] > 300 and verdicts[False] > 300, verdicts


def test_the_uncertain_op_sent_first_is_tried_first_and_that_loses_nothing():
    # of two uncertain +1s, only the earlier-sent one is tried first: the later one can still be had
    story = h(unsure("a", 0, 0, None), unsure("b", 0, 10, None), read("r", 0, 12, 13, 2), final=2)
    assert linearizable(story) and brute_force(story)
    assert not linearizable(h(unsure("a", 0, 0, None), unsure("b", 0, 10, None), read("r", 0, 5, 6, 2), final=2))


# --- the generator ---------------------------------------------------------------------------------

def test_every_history_of_a_correct_store_is_linearizable():
    histories = [history_at(7, i) for i in range(4000)]
    correct = [x for x in histories if x.story == "correct"]
    assert len(correct) > 1000
    wrong = [x for x in correct if not linearizable(x)]
    assert not wrong, wrong[0].literal()


def test_the_generator_makes_what_real_services_do():
    histories = [history_at(7, i) for i in range(4000)]
    features = Counter(f for x in histories for f in x.features)
    for f in ("late-landing", "slow-ack", "retry", "409-in-progress", "429-after-uncertain", "never-completed",
              "never-completed-applied", "read", "resolved-applied", "resolved-applied-late", "resolved-not-applied",
              "equal-times"):
        assert features[f] >= 40, (f, features)
    for x in histories:  # a client sends its next op once its last one was answered or given up on
        for w in {o.worker for o in x.ops}:
            mine = sorted((o for o in x.ops if o.worker == w), key=lambda o: o.id)
            if x.story.startswith("mutation:"):
                continue
            for a, b in itertools.pairwise(mine):
                assert a.completed_us is not None and a.completed_us <= b.invoked_us, x.literal()
        assert len(x.ops) <= 10
    rejected = Counter(x.story for x in histories if not linearizable(x))
    for bug in BUGS:
        assert rejected[f"bug:{bug}"] >= 10, (bug, rejected)
    for m in MUTATIONS:
        assert rejected[f"mutation:{m}"] >= 10, (m, rejected)
    domains = Counter((x.domain, linearizable(x)) for x in histories)
    for d in ("unit-with-values", "amounts", "without-values", "seats"):
        assert domains[(d, True)] >= 100 and domains[(d, False)] >= 40, (d, domains)


def test_the_generator_is_deterministic():
    assert history_at(3, 17) == history_at(3, 17)
    assert NEVER > 10**12


def test_shrink_keeps_what_it_is_asked_to():
    story = h(ok("a", 0, 3, 9, 1), ok("b", 0, 12, 20, 3), unsure("c", 0, 0, 30), read("r", 0, 40, 41, 9),
              initial=0, final=3)
    small = shrink(story, lambda x: not linearizable(x) and any(o.kind == "read" for o in x.ops))
    assert not linearizable(small) and [o.kind for o in small.ops] == ["read"]
    assert (small.ops[0].invoked_us, small.ops[0].completed_us) == (0, 0)


# --- counterbench's checks against the oracle ----------------------------------------------------------

N = 100_000
SEED = 21


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    t0 = time.perf_counter()
    c = compare_many(N, seed=SEED, processes=2)
    print(f"\n{c.summary()}\nwall {time.perf_counter() - t0:.1f} s")
    return c


@pytest.mark.timeout(600)
def test_no_false_alarm_on_any_linearizable_history(comparison: Comparison):
    assert comparison.histories == N
    alarms = comparison.false_alarms()
    assert not alarms, (f"{sum(alarms.values())} linearizable histories failed by the checks:\n"
                        + comparison.describe(list(alarms)[:12]))


@pytest.mark.timeout(600)
def test_every_rejected_history_fails_where_the_checks_claim_completeness(comparison: Comparison):
    missed = comparison.misses()
    assert not missed, (f"{sum(missed.values())} non-linearizable histories ({COMPLETE_DOMAIN}) not failed:\n"
                        + comparison.describe(list(missed)[:12]))


@pytest.mark.timeout(600)
def test_the_comparison_saw_both_kinds_in_every_domain(comparison: Comparison):
    for d in ("unit-with-values", "amounts", "without-values", "seats"):
        accepted = sum(n for (dom, lin, _), n in comparison.table.items() if dom == d and lin)
        rejected = sum(n for (dom, lin, _), n in comparison.table.items() if dom == d and not lin)
        assert accepted >= N // 50 and rejected >= N // 100, (d, accepted, rejected)


def test_judge_sees_resolutions():
    # the checks get the lookup's answers: an applied one must show in the final value
    story = h(ok("a", 0, 0, 2, 1), unsure("b", 0, 0, 5), final=1, resolved=(("b", 0, 2),))
    assert not linearizable(story)
    assert judge(story)[0] == "fail"


# --- histories found where the two disagreed (tests/unit/oracle_cases.py) -----------------------------

@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_oracle_on_a_found_case(case: Case):
    assert linearizable(case.history) == case.linearizable, case.why


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_checks_on_a_found_case(case: Case):
    verdict, failed = judge(case.history)
    if case.linearizable:
        assert verdict != "fail", f"false alarm by {failed}: {case.why}"
    elif case.history.domain == COMPLETE_DOMAIN:
        assert verdict == "fail", f"{verdict}, not fail: {case.why}"
