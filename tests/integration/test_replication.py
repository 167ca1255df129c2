"""Where acknowledged increments vanish (asynchronous replication + failover) and where they are applied
twice (retries after lost answers) -- and the setups that keep them: each scenario of the shipped
`replication` suite gives the verdict it expects, with the loss or the duplication counted."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import SHIPPED, run_cli

pytestmark = pytest.mark.integration


def run(tmp_path, scenario: str, *extra: str) -> dict:
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", scenario, *extra)
    assert v is not None, f"{scenario}: no verdict (exit {code})"
    assert code == {"pass": 0, "fail": 1, "unknown": 2}[v["verdict"]]
    return v


def test_redis_failover_after_a_stalled_replica_loses_acknowledged_increments(tmp_path):
    v = run(tmp_path, "redis-replicated-failover")
    assert v["verdict"] == "fail", v["reason"]
    assert v["totals"]["lost"] > 0 and v["totals"]["duplicate_values"] > 0  # the new primary counts again
    assert v["totals"]["out_of_order"] > 0  # ... handing out values below ones already acknowledged
    faults = [json.loads(line) for line in (tmp_path / "run" / "faults.jsonl").read_text().splitlines()]
    assert {(f["action"], f["event"]) for f in faults} >= {("stall-replication", "begin"), ("failover", "begin")}
    stall, failover = v["faults"]  # both happened; the stall was planned for 30 s, so the load's end healed it
    assert (stall["status"], stall["healed_at_load_end"], failover["status"]) == ("healed", True, "healed")
    assert 3 <= failover["opened_s"] < 3.5 and failover["healed_s"] >= 8


def test_the_lost_increments_are_named_with_when_they_were_acknowledged(tmp_path):
    from harness.report.build import build_report

    v = run(tmp_path, "redis-replicated-failover")
    html = build_report(tmp_path / "run").read_text()
    assert "Lost increments" in html and "lost_increments.png" not in html  # embedded, not linked
    # every one was acknowledged while replication was stalled, before the failover
    assert f"{v['totals']['lost']:,} acknowledged increments never reached the final value" in html
    assert "failover at " in html and "0 after it" in html


def test_wait_for_a_replica_keeps_every_acknowledged_increment_through_the_same_failover(tmp_path):
    v = run(tmp_path, "redis-replicated-failover-wait")
    assert v["verdict"] == "pass", v["reason"]
    assert v["totals"]["indeterminate"] > 0  # what no replica acknowledged was not claimed


def test_reads_from_a_lagging_replica_are_stale(tmp_path):
    v = run(tmp_path, "redis-replicated-stale-reads")
    assert v["verdict"] == "fail", v["reason"]
    assert v["totals"]["bad_reads"] > 0 and v["totals"]["lost"] == 0  # no update lost: the reads were behind
    reads = next(c for c in v["checks"] if c["name"] == "reads")
    e = reads["evidence"]
    assert e["stale"] > 0 and e["ahead"] == 0
    write, read = e["witness"]  # the increment acknowledged before the read was sent, that it did not see
    assert write["completed_s"] < read["invoked_s"] and read["value"] < write["value"]
    assert read["kind"] == "read" and "stale" in reads["finding"]


def test_postgres_asynchronous_replica_promoted_loses_committed_increments(tmp_path):
    v = run(tmp_path, "service-postgres-failover-async")
    assert v["verdict"] == "fail", v["reason"]
    assert v["totals"]["lost"] > 0
    # the primary the fault killed (and that stays down) is no unexpected death
    assert json.loads((tmp_path / "run" / "run.json").read_text())["servers_died"] == []


def test_postgres_synchronous_replica_promoted_keeps_every_commit(tmp_path):
    v = run(tmp_path, "service-postgres-failover-sync")
    assert v["verdict"] == "pass", v["reason"]


@pytest.mark.parametrize("scenario", ["http-counter-retry-lost-responses", "dynamodb-counter-retry-lost-responses"])
def test_retrying_after_a_lost_answer_applies_increments_twice(tmp_path, scenario):
    v = run(tmp_path, scenario)
    assert v["verdict"] == "fail", v["reason"]
    assert v["totals"]["duplicated"] > 0 and v["totals"]["retried_ops"] > 0
    if scenario.startswith("http"):  # values returned: each twice-applied increment is a value no op accounts for
        assert v["totals"]["phantoms"] == v["totals"]["duplicated"]


def test_an_idempotency_key_makes_retries_one_op_and_resolves_what_stays_uncertain(tmp_path):
    v = run(tmp_path, "http-counter-idempotent-retry")
    assert v["verdict"] == "pass", v["reason"]
    t = v["totals"]
    assert t["retried_ops"] > 0 and t["duplicated"] == 0
    resolutions = json.loads((tmp_path / "run" / "resolutions.json").read_text())
    assert resolutions["asked"] == t["resolved_applied"] + t["resolved_not_applied"] + t["unresolved_lookups"]
    assert t["indeterminate"] == t["unresolved_lookups"]  # each uncertain op was looked up
