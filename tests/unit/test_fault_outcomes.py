"""What became of each planned fault, from hand-built faults.jsonl events, and what that does to a verdict."""

from __future__ import annotations

from typing import Any

import pytest

from harness.config.scenario import Fault
from harness.faults.outcomes import FaultOutcome, outcomes, with_faults

START = 1_000.0
STALL = Fault(at=1.5, action="stall-replication", duration=30)
FAILOVER = Fault(at=3, action="failover", duration=5)
KILL = Fault(at=2, action="kill")  # no duration: the server stays down


def ev(event: str, fault: int | None = None, t: float | None = None, **extra: Any) -> dict[str, Any]:
    """A version-2 event as the nemesis writes it (a fault is named by its place in the planned list; the
    action, server, at and duration it also carries are for readers, not for the judge)."""
    named = {} if fault is None else {"fault": fault}
    return {"schema_version": 2, "event": event, **named, "time": START + (t or 0.0), "t": t, **extra}


def one(planned: Fault, *events: dict[str, Any]) -> FaultOutcome:
    (o,) = outcomes([planned], list(events))
    return o


# --- outcomes from events ----------------------------------------------------------------------

def test_opened_and_healed():
    o = one(STALL, ev("begin", 0, 1.52), ev("end", 0, 31.6))
    assert (o.status, o.opened_s, o.healed_s, o.as_planned, o.why()) == ("healed", 1.52, 31.6, True, None)


def test_a_window_that_outlasts_the_load_heals_when_the_load_ends():
    o = one(STALL, ev("begin", 0, 1.5), ev("end", 0, 12.1, at_load_end=True))
    assert o.status == "healed" and o.healed_at_load_end and o.as_planned


def test_a_fault_without_duration_stays_open_as_planned():
    (_, _, o) = outcomes([STALL, FAILOVER, KILL], [ev("begin", 2, 2.0)])
    assert (o.status, o.opened_s, o.healed_s, o.as_planned) == ("open", 2.0, None, True)


def test_planned_after_the_load_ended():
    o = one(FAILOVER, ev("not-opened", 0, 2.4, why="load-ended", load_ended_s=2.0))
    assert (o.status, o.happened, o.as_planned) == ("load-ended", False, False)
    assert o.why() == "failover planned at 3 s did not happen: the load ended at 2 s"


def test_a_stop_signal_ended_the_load_before_it():
    o = one(FAILOVER, ev("not-opened", 0, 1.6, why="load-ended", load_ended_s=1.63, stopped_by="SIGTERM"))
    assert o.why() == "failover planned at 3 s did not happen: the load ended at 1.6 s (stopped by SIGTERM)"


def test_opening_it_raised():
    o = one(KILL, ev("open-error", 0, 2.0, error="StackError: no such server"))
    assert (o.status, o.happened, o.error) == ("open-error", False, "StackError: no such server")
    assert o.why() == "kill planned at 2 s did not happen: it raised StackError: no such server"


def test_healing_it_raised():
    o = one(FAILOVER, ev("begin", 0, 3.0), ev("heal-error", 0, 8.0, error="StackError: port taken"))
    assert (o.status, o.happened, o.as_planned) == ("heal-error", True, False)
    assert o.why() == "failover planned at 3 s opened at 3 s but did not heal: it raised StackError: port taken"


def test_the_load_never_started():
    o = one(FAILOVER, ev("not-opened", 0, None, why="load-never-started"))
    assert o.status == "load-never-started"
    assert o.why() == "failover planned at 3 s did not happen: the load never started"


def test_no_record_in_the_file_and_no_file_at_all():
    assert one(FAILOVER, ev("begin", 1, 1.5)).why() == \
        "failover planned at 3 s did not happen: faults.jsonl has no record of it"
    (o,) = outcomes([FAILOVER], None)
    assert o.status == "no-record" and "there is no faults.jsonl" in str(o.why())


def test_no_faults_planned_no_outcomes():
    assert outcomes([], None) == [] and outcomes([], []) == []


# --- version 1 files: begin and end only, no fault index, wall-clock times ---------------------

def v1(event: str, planned: Fault, t: float) -> dict[str, Any]:
    return {"schema_version": 1, "event": event, "action": planned.action, "server": planned.server,
            "at": planned.at, "duration": planned.duration, "time": START + t}


def test_version_1_windows_are_matched_by_action_and_server_in_the_order_planned():
    twice = [Fault(at=5, action="kill", duration=1), Fault(at=2, action="kill", duration=1)]
    got = outcomes(twice, [v1("begin", twice[1], 2.0), v1("end", twice[1], 3.1), v1("begin", twice[0], 5.0)],
                   load_started=START)
    assert [(o.status, o.opened_s, o.healed_s) for o in got] == [("not-healed", 5.0, None), ("healed", 2.0, 3.1)]


def test_version_1_without_the_load_start_has_no_times_but_knows_what_happened():
    (o,) = outcomes([KILL], [v1("begin", KILL, 2.0)])
    assert (o.status, o.opened_s) == ("open", None)


def test_version_1_a_fault_never_begun_has_no_record():
    (stall, failover) = outcomes([STALL, FAILOVER], [v1("begin", STALL, 1.5), v1("end", STALL, 12.0)],
                                 load_started=START)
    assert stall.status == "healed" and failover.status == "no-record"


# --- the verdict the faults allow --------------------------------------------------------------

HEALED = one(STALL, ev("begin", 0, 1.5), ev("end", 0, 12.0))
MISSED = one(FAILOVER, ev("not-opened", 0, 2.0, why="load-ended", load_ended_s=2.0))
BROKEN = one(KILL, ev("open-error", 0, 2.0, error="StackError: no such server"))


def test_a_run_whose_planned_faults_all_happened_passes():
    assert with_faults("pass", "every check holds", [HEALED]) == ("pass", "every check holds")


def test_a_run_without_faults_passes():
    assert with_faults("pass", "every check holds", []) == ("pass", "every check holds")


def test_a_run_whose_planned_faults_did_not_all_happen_cannot_pass():
    assert with_faults("pass", "every check holds", [HEALED, MISSED]) == (
        "unknown", "failover planned at 3 s did not happen: the load ended at 2 s")


def test_several_missed_faults_name_the_first_and_count_the_rest():
    verdict, reason = with_faults("pass", "every check holds", [MISSED, BROKEN])
    assert verdict == "unknown" and reason.startswith("failover planned at 3 s did not happen")
    assert reason.endswith("(and 1 more planned fault not as planned)")


PARTITION = Fault(at=2, action="partition", duration=8, isolate="primary", clients="keep")


def test_a_partition_that_promoted_another_node_went_as_planned():
    o = one(PARTITION, ev("begin", 0, 2.0), ev("end", 0, 10.0, promoted="127.0.0.1:6380"))
    assert (o.status, o.promoted, o.as_planned, o.to_json()["promoted"]) == ("healed", "127.0.0.1:6380", True,
                                                                             "127.0.0.1:6380")


def test_a_partition_whose_failover_never_happened_cannot_pass():
    o = one(PARTITION, ev("begin", 0, 2.0), ev("end", 0, 10.0, promoted=None))
    assert (o.status, o.happened, o.as_planned) == ("no-failover", True, False)
    assert with_faults("pass", "every check holds", [o]) == (
        "unknown", "partition planned at 2 s opened at 2 s and healed at 10 s, but no other node was promoted "
                   "meanwhile: the failover it was there to cause never happened")
    assert with_faults("fail", "bounds violated: 3 lost", [o])[0] == "fail"


def test_a_heal_that_did_not_look_for_a_promotion_is_a_heal():
    o = one(PARTITION, ev("begin", 0, 2.0), ev("end", 0, 10.0))  # an older file: its heal did not say
    assert (o.status, o.as_planned) == ("healed", True)


def test_a_fault_whose_heal_failed_cannot_pass_either():
    broken_heal = one(FAILOVER, ev("begin", 0, 3.0), ev("heal-error", 0, 8.0, error="StackError: x"))
    assert with_faults("pass", "every check holds", [broken_heal])[0] == "unknown"


@pytest.mark.parametrize("faults", [[MISSED], [BROKEN], [HEALED]])
def test_a_fail_stays_a_fail_whatever_the_faults_did(faults):
    assert with_faults("fail", "bounds violated: 3 lost", faults) == ("fail", "bounds violated: 3 lost")


def test_an_unknown_stays_unknown_and_says_the_fault_too():
    verdict, reason = with_faults("unknown", "the history is incomplete", [MISSED])
    assert verdict == "unknown"
    assert reason == "the history is incomplete; failover planned at 3 s did not happen: the load ended at 2 s"


def test_the_json_of_an_outcome():
    assert MISSED.to_json() == {
        "fault": 0, "action": "failover", "server": "target", "at": 3.0, "duration": 5.0, "status": "load-ended",
        "happened": False, "opened_s": None, "healed_s": None, "healed_at_load_end": False, "load_ended_s": 2.0,
        "stopped_by": None, "error": None, "promoted": None,
        "why": "failover planned at 3 s did not happen: the load ended at 2 s"}


def test_the_report_says_which_node_a_partition_promoted_or_why_it_did_not_go_as_planned():
    from harness.report.summary import fault_line

    promoted = one(PARTITION, ev("begin", 0, 2.0), ev("end", 0, 10.0, promoted="127.0.0.1:6380")).to_json()
    assert fault_line(promoted) == ("partition planned at 2 s opened at 2 s, healed at 10 s; 127.0.0.1:6380 was "
                                    "promoted meanwhile")
    missed = one(PARTITION, ev("begin", 0, 2.0), ev("end", 0, 10.0, promoted=None)).to_json()
    assert fault_line(missed).endswith("the failover it was there to cause never happened")
