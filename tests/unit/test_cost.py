"""Cost per million acknowledged increments: hand-computed figures, the shipped price table, its errors,
and the op mix read from a run folder written by the project's own history writer."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from harness.config.scenario import Scenario
from harness.core.errors import ConfigError
from harness.core.ops import Completion, OpKind, Outcome
from harness.core.runfolder import RunFolder
from harness.cost import OpMix, cost, load_prices, op_mix, run_cost
from harness.history import HistoryWriter
from harness.history.format import NEVER_COMPLETED
from harness.targets.classify import (
    DYNAMODB_RULES,
    HTTP_RULES,
    NotSent,
    classify_dynamodb_error,
    classify_exception,
    classify_http_status,
    classify_redis_error_reply,
)

SHIPPED = Path(__file__).resolve().parents[2] / "harness" / "prices.yaml"


@pytest.fixture(scope="module")
def prices():
    return load_prices()


# --- hand-computed figures -----------------------------------------------------------------------------

def test_retries_are_charged_as_write_units(prices):
    # 1,000,000 acknowledged increments and 20,000 retries: 1,020,000 WRU at $0.625/M = $0.6375
    c = cost(OpMix(acked=1_000_000, write_retries=20_000), target_kind="dynamodb", prices=prices)
    assert c.usd_per_million == pytest.approx(0.6375)
    wru = next(x for x in c.lines if x.price_id == "dynamodb-on-demand-write")
    assert wru.units_per_increment == pytest.approx(1.02) and wru.usd_per_million == pytest.approx(0.6375)
    assert c.basis.startswith("request-priced: 1.02 WRU per acknowledged increment (retries +2.0%) at $0.625/M WRU")
    assert "us-east-1, checked 2025-01" in c.basis
    assert c.row() == {"usd_per_M": 0.6375, "cost_basis": c.basis}


def test_api_gateway_and_the_dynamodb_write_behind_each_request(prices):
    c = cost(OpMix(acked=1_000_000), target_kind="apigateway", prices=prices)
    assert [x.price_id for x in c.lines] == ["apigateway-rest-requests-tier1", "dynamodb-on-demand-write"]
    assert [x.usd_per_million for x in c.lines] == pytest.approx([3.50, 0.625])
    assert c.usd_per_million == pytest.approx(4.125)
    assert "at $3.50/M requests (tier 1: the first 333M requests a month)" in c.basis  # the tier is said


def test_failed_conditional_writes_are_charged_on_both_layers(prices):
    # the demo's apigateway-seats: 500 seats sold, 1,258 requests refused by the condition (409)
    mix = OpMix(acked=500, failed=1258, failed_conditional=1258)
    c = cost(mix, target_kind="apigateway", prices=prices)
    assert c.usd_per_million == pytest.approx(1758 / 500 * (3.50 + 0.625))  # $14.50 per million seats
    assert "failed conditional writes +251.6%" in c.basis
    # refused at the gateway (a 429, a 403) is an API request but no write; never sent is neither
    mix = OpMix(acked=1000, failed=150, unsent=50)
    c = cost(mix, target_kind="apigateway", prices=prices)
    assert [x.units_per_increment for x in c.lines] == pytest.approx([1.1, 1.0])
    assert c.usd_per_million == pytest.approx(1.1 * 3.50 + 0.625)


def test_indeterminate_ops_are_charged_they_may_have_been_served(prices):
    c = cost(OpMix(acked=1000, indeterminate=100), target_kind="dynamodb", prices=prices)
    assert c.usd_per_million == pytest.approx(1.1 * 0.625)
    assert "indeterminate +10.0%" in c.basis


@pytest.mark.parametrize(("consistent", "rru"), [(True, 1.0), (False, 0.5)])
def test_reads_cost_read_units_by_consistency(prices, consistent, rru):
    c = cost(OpMix(acked=1000, reads=1000, reads_ok=1000, consistent_reads=consistent), target_kind="dynamodb",
             prices=prices)
    assert c.usd_per_million == pytest.approx(0.625 + rru * 0.125)
    assert f"({rru:g} each)" in c.basis


def test_unsafe_variants_pay_for_the_read_before_each_write(prices):
    c = cost(OpMix(acked=1000, reads_before_writes=1000), target_kind="dynamodb", prices=prices)
    assert c.usd_per_million == pytest.approx(0.625 + 0.125)


def test_provisioned_capacity_is_priced_fully_used(prices):
    c = cost(OpMix(acked=1000), target_kind="dynamodb", prices=prices, price_ids=["dynamodb-provisioned-wcu-hour"])
    assert c.usd_per_million == pytest.approx(0.00065 / 3600 * 1e6)  # one WCU-second per write: $0.18/M
    assert "lower bound" in c.basis


def test_node_priced_at_the_slo_knee(prices):
    c = cost(OpMix(acked=1000, ok_per_s=9_999.0), target_kind="redis", prices=prices, knee_ok_per_s=41_200)
    assert c.usd_per_million == pytest.approx(0.149 / (41_200 * 3600) * 1e6)  # $0.001 per million
    assert c.basis.startswith("node-priced: cache.m6g.large $0.149/h at 41,200 ok ops/s (the SLO knee)")
    assert "measured" not in c.basis and "this machine" not in c.basis


def test_node_priced_counts_only_the_share_of_ok_ops_that_were_increments_and_every_node(prices):
    mix = OpMix(acked=800, reads=200, reads_ok=200, nodes=2, failed=10)
    c = cost(mix, target_kind="redis", prices=prices, knee_ok_per_s=10_000)
    assert c.usd_per_million == pytest.approx(2 * 0.149 / (10_000 * 0.8 * 3600) * 1e6)
    assert "80.0% of them increments (the rest reads)" in c.basis and "x 2 nodes" in c.basis
    assert "the 1.0% of requests not acknowledged (fails, retries) took node time within that figure" in c.basis


def test_node_priced_without_a_knee_says_it_is_the_measured_throughput(prices):
    mix = OpMix(acked=127_440, duration_s=5.0, ok_per_s=25_488.0, local=True)
    c = cost(mix, target_kind="http", prices=prices)
    assert c.usd_per_million == pytest.approx(0.0725 / (25_488 * 3600) * 1e6)
    assert "at the measured 25,488 ok ops/s (no SLO knee" in c.basis and "upper bound" in c.basis
    assert "not on the priced EC2 c7g.large" in c.basis  # a local server is not the priced instance
    no_throughput = cost(OpMix(acked=10), target_kind="redis", prices=prices)
    assert no_throughput.usd_per_million is None and "no throughput" in no_throughput.basis


def test_nothing_acknowledged_has_no_cost_per_increment(prices):
    for kind in ("dynamodb", "apigateway", "redis", "http"):
        c = cost(OpMix(acked=0, failed=1258, failed_conditional=1258, ok_per_s=100.0), target_kind=kind, prices=prices)
        assert c.usd_per_million is None and c.lines == ()
        assert "no acknowledged increments" in c.basis and "1,258 requests sent" in c.basis
        assert c.row()["usd_per_M"] is None


def test_a_kind_without_defaults_and_an_unknown_price_id(prices):
    c = cost(OpMix(acked=1), target_kind="carrier-pigeon", prices=prices)
    assert c.usd_per_million is None and "no defaults.carrier-pigeon" in c.basis
    with pytest.raises(ConfigError, match=r"no price row with id 'nope'; known: .*ec2-c7g\.large"):
        cost(OpMix(acked=1), target_kind="redis", prices=prices, price_ids=["nope"])


def test_an_op_mix_that_cannot_be_is_refused():
    with pytest.raises(ValueError, match="failed writes"):
        OpMix(acked=1, failed=1, failed_conditional=2)
    with pytest.raises(ValueError, match="below zero"):
        OpMix(acked=-1)


# --- the shipped table -------------------------------------------------------------------------------------

def test_every_shipped_row_has_a_date_a_source_and_a_region(prices):
    assert prices.path.resolve() == SHIPPED.resolve()
    assert len(prices.rows) >= 12
    for row in prices.rows.values():
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", row.checked), row.id
        assert re.fullmatch(r"https://aws\.amazon\.com/[a-z0-9\-]+/pricing/([a-z\-]+/)?", row.source), row.id
        assert row.region == "us-east-1" and row.usd > 0, row.id


def test_the_shipped_figures_and_defaults(prices):
    usd = {i: r.usd for i, r in prices.rows.items()}
    assert [usd[f"apigateway-rest-requests-tier{t}"] for t in (1, 2, 3, 4)] == [3.50, 2.80, 2.38, 1.51]
    assert (usd["dynamodb-on-demand-write"], usd["dynamodb-on-demand-read"]) == (0.625, 0.125)
    assert (usd["dynamodb-provisioned-wcu-hour"], usd["dynamodb-provisioned-rcu-hour"]) == (0.00065, 0.00013)
    assert prices.rows["dynamodb-on-demand-write"].request_units == {"write": 1, "transactional_write": 2}
    assert prices.rows["dynamodb-on-demand-read"].request_units == {
        "strongly_consistent_read": 1, "eventually_consistent_read": 0.5, "transactional_read": 2}
    assert prices.defaults == {"apigateway": ("apigateway-rest-requests-tier1", "dynamodb-on-demand-write"),
                               "dynamodb": ("dynamodb-on-demand-write", "dynamodb-on-demand-read"),
                               "redis": ("elasticache-cache.m6g.large",), "http": ("ec2-c7g.large",)}
    head = SHIPPED.read_text().split("schema_version")[0]
    assert "NOT RE-CHECKED ONLINE" in head and "2026-12-02" in head and "--prices FILE" in head


# --- a broken or overriding table ------------------------------------------------------------------------

ROW = """  - id: {id}
    what: a node
    unit: node-hour
    usd: {usd}
    region: eu-west-1
    source: https://aws.amazon.com/elasticache/pricing/
{checked}"""


def table(tmp_path: Path, *rows: str, defaults: str = "  redis: [mine]\n") -> Path:
    p = tmp_path / "mine.yaml"
    p.write_text("schema_version: 1\nprices:\n" + "".join(rows) + "defaults:\n" + defaults)
    return p


def line_of(path: Path, text: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return hits[nth - 1]


def test_a_bad_type_names_file_line_and_key(tmp_path):
    p = table(tmp_path, ROW.format(id="mine", usd="cheap", checked='    checked: "2025-01"\n'))
    with pytest.raises(ConfigError) as e:
        load_prices(p)
    assert str(e.value).startswith(f"{p}:{line_of(p, 'usd: cheap')}: prices.0.usd: ")
    assert "'cheap'" in str(e.value)


def test_a_quoted_price_is_refused_not_read(tmp_path):
    p = table(tmp_path, ROW.format(id="mine", usd='"3.50"', checked='    checked: "2025-01"\n'))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(p))}:{line_of(p, 'usd:')}: prices\.0\.usd: "):
        load_prices(p)


def test_a_row_without_checked_is_an_error(tmp_path):
    p = table(tmp_path, ROW.format(id="other", usd=1, checked='    checked: "2025-01"\n'),
              ROW.format(id="mine", usd=1, checked=""))
    with pytest.raises(ConfigError) as e:
        load_prices(p)
    assert str(e.value) == f"{p}:{line_of(p, 'id: mine')}: prices.1.checked: required key is missing"


@pytest.mark.parametrize(("checked", "why"), [("2025", "string"), ('"2025-13"', "pattern"), ('"last year"', "pattern")])
def test_checked_must_be_a_month_or_a_day(tmp_path, checked, why):
    p = table(tmp_path, ROW.format(id="mine", usd=1, checked=f"    checked: {checked}\n"))
    with pytest.raises(ConfigError, match=rf":{line_of(p, 'checked:')}: prices\.0\.checked: .*{why}"):
        load_prices(p)


def test_an_unquoted_day_is_a_date_and_accepted(tmp_path):
    p = table(tmp_path, ROW.format(id="mine", usd=1, checked="    checked: 2026-11-30\n"))
    assert load_prices(p).rows["mine"].checked == "2026-11-30"


def test_table_level_mistakes_name_their_lines(tmp_path):
    ok = '    checked: "2025-01"\n'
    p = table(tmp_path, ROW.format(id="mine", usd=1, checked=ok), ROW.format(id="mine", usd=2, checked=ok),
              defaults="  redis: [mine, yours]\n  reddis: [mine]\n")
    with pytest.raises(ConfigError) as e:
        load_prices(p)
    assert str(e.value).splitlines() == [
        f"{p}:{line_of(p, 'id: mine', 2)}: prices.1.id: 'mine' is a second row with that id",
        f"{p}:{line_of(p, 'redis: [mine, yours]')}: defaults.redis.1: no price row with id 'yours'",
        f"{p}:{line_of(p, 'reddis')}: defaults.reddis: not a target kind (known: apigateway, dynamodb, http, redis)",
    ]


def test_a_write_unit_row_must_say_how_many_units_a_write_takes(tmp_path):
    row = ROW.format(id="mine", usd=1, checked='    checked: "2025-01"\n').replace("node-hour", "million WRU")
    p = table(tmp_path, row)
    where = f"{re.escape(str(p))}:{line_of(p, 'id: mine')}"
    with pytest.raises(ConfigError, match=rf"^{where}: prices\.0: a 'million WRU' row needs request_units: write$"):
        load_prices(p)


def test_a_table_without_rows(tmp_path):
    p = table(tmp_path, defaults="  {}\n")
    p.write_text(p.read_text().replace("prices:\n", "prices: []\n"))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(p))}:2: prices: no price rows$"):
        load_prices(p)


def test_not_yaml_and_no_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("schema_version: 1\nprices: [\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(p))}:\d+: not valid YAML"):
        load_prices(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_prices(tmp_path / "missing.yaml")


def test_a_users_table_replaces_the_shipped_one(tmp_path, prices):
    p = table(tmp_path, ROW.format(id="mine", usd=1.0, checked='    checked: "2026-11"\n'))
    mine = load_prices(p)
    assert mine.path == p and list(mine.rows) == ["mine"]
    mix = OpMix(acked=3600, ok_per_s=1000.0)
    c = cost(mix, target_kind="redis", prices=mine)
    assert c.usd_per_million == pytest.approx(1.0 / 3_600_000 * 1e6)
    assert "eu-west-1, checked 2026-11" in c.basis
    assert cost(mix, target_kind="redis", prices=prices).usd_per_million == pytest.approx(0.149 / 3_600_000 * 1e6)
    assert cost(mix, target_kind="dynamodb", prices=mine).usd_per_million is None  # no default there


# --- the op mix of a run folder ---------------------------------------------------------------------------

def run_folder(tmp_path: Path, target: dict, workload: dict, ops: list[tuple[OpKind, Completion]], *,
               url: str = "http://127.0.0.1:8000", never_completed: int = 0) -> RunFolder:
    """A run folder whose history the project's own writer wrote: one op a millisecond, each 0.5 ms long."""
    scenario = Scenario.model_validate({"name": "cost", "target": target, "workload": workload,
                                        "load": {"users": 1, "duration": 1}})
    folder = RunFolder(tmp_path / "run")
    folder.write(folder.run_json, {"run_id": "r", "scenario": scenario.model_dump(mode="json"),
                                   "target": {"kind": target["kind"], "url": url, "variant": "atomic"}, "keys": ["k"]})
    w = HistoryWriter(folder.history_file("w1"), worker="w1", run_id="r", scenario="cost")
    t = time.monotonic_ns()
    for i, (kind, done) in enumerate(ops):
        w.record("k", kind, 0 if kind == "read" else -1 if kind == "decr_if_positive" else 1,
                 t + i * 1_000_000, done, t + i * 1_000_000 + 500_000)
    for _ in range(never_completed):
        w.invoke("k", "incr", 1, t + len(ops) * 1_000_000)
    w.close()
    return folder


def test_op_mix_of_dynamodb_seats_from_the_targets_own_error_texts(tmp_path, prices):
    conditional = classify_dynamodb_error("ConditionalCheckFailedException", "The conditional request failed", 400)
    throttled = classify_dynamodb_error("ThrottlingException", "slow down", 400)
    unsent = classify_exception(NotSent("read before write failed"), DYNAMODB_RULES)
    assert conditional.outcome is throttled.outcome is unsent.outcome is Outcome.FAIL
    ops: list[tuple[OpKind, Completion]] = [
        *[("decr_if_positive", Completion.ok(v)) for v in (3, 2, 1)],
        ("decr_if_positive", Completion(Outcome.OK, 0, None, 2)),  # one retry, then acknowledged
        ("decr_if_positive", conditional), ("decr_if_positive", conditional),
        ("decr_if_positive", throttled), ("decr_if_positive", unsent),
        ("decr_if_positive", Completion(Outcome.INDETERMINATE, None, "3 attempts; last: indeterminate", 3)),
        ("read", Completion.ok(1)), ("read", Completion.ok(0)), ("read", throttled),
    ]
    folder = run_folder(tmp_path, {"kind": "dynamodb", "consistent_reads": False},
                        {"kind": "seats", "initial": 4, "reads": 0.2}, ops, never_completed=1)
    mix = op_mix(folder)
    assert (mix.acked, mix.failed, mix.failed_conditional, mix.unsent, mix.indeterminate) == (4, 4, 2, 1, 2)
    assert (mix.write_retries, mix.reads, mix.reads_ok, mix.reads_failed, mix.read_retries) == (3, 3, 2, 1, 0)
    assert mix.consistent_reads is False and mix.reads_before_writes == 0 and mix.nodes == 1 and mix.complete
    assert mix.local  # 127.0.0.1
    assert mix.duration_s == pytest.approx(0.012, abs=2e-6)  # 12 ops a millisecond apart, the last one still out
    assert mix.ok_per_s == pytest.approx(6 / mix.duration_s)
    # WRU: 4 acknowledged + 2 refused by the condition + 2 indeterminate + 3 retries; RRU: 2 reads at 0.5
    c = cost(mix, target_kind="dynamodb", prices=prices)
    assert [x.units_per_increment for x in c.lines] == pytest.approx([11 / 4, 0.5 * 2 / 4])
    assert run_cost(folder.path, prices=prices) == c


@pytest.mark.parametrize("stream", [False, True])
def test_the_op_mix_check_counted_is_the_one_the_history_gives(tmp_path, prices, stream):
    """check keeps the op mix in verdict.json (report then need not read a billion ops again); as the
    history itself gives it, whichever way check read it."""
    from harness.judge import judge

    throttled = classify_dynamodb_error("ThrottlingException", "slow down", 400)
    ops: list[tuple[OpKind, Completion]] = [
        *[("incr", Completion.ok(v)) for v in (1, 2, 3)], ("incr", throttled),
        ("incr", Completion(Outcome.INDETERMINATE, None, "timeout", 2)), ("read", Completion.ok(3))]
    folder = run_folder(tmp_path, {"kind": "dynamodb"}, {"kind": "counter", "reads": 0.2}, ops, never_completed=1)
    folder.write(folder.state_json, {"initial": {"k": 0}, "final": {"k": 4}})
    from_history = op_mix(folder)
    judge(folder, stream=stream)
    assert folder.read(folder.verdict_json)["op_mix"]["counts"]["acked"] == 3
    shutil.rmtree(folder.history_dir)  # read from verdict.json, not from the history
    assert op_mix(folder) == from_history
    assert run_cost(folder, prices=prices) == cost(from_history, target_kind="dynamodb", prices=prices)


def test_op_mix_counts_a_sold_out_as_conditional_only_on_a_decrement(tmp_path):
    sold_out = classify_http_status(409, (400, 404, 409, 429))
    refused = classify_exception(ConnectionRefusedError(111, "refused"), HTTP_RULES)
    assert sold_out is not None
    ops: list[tuple[OpKind, Completion]] = [("decr_if_positive", Completion.ok(1)), ("decr_if_positive", sold_out),
                                            ("incr", sold_out), ("incr", refused)]
    mix = op_mix(run_folder(tmp_path, {"kind": "http"}, {"kind": "seats", "initial": 2}, ops,
                            url="http://counter.example.com"))
    assert (mix.acked, mix.failed, mix.failed_conditional, mix.unsent) == (1, 3, 1, 1)
    assert not mix.local
    assert mix.duration_s == pytest.approx(0.0035, abs=2e-6)  # the first invoke to the last answer


def test_op_mix_of_replicated_redis_and_of_dynamodbs_unsafe_variant(tmp_path):
    sold_out = classify_redis_error_reply("SOLDOUT no seats left")
    mix = op_mix(run_folder(tmp_path / "a", {"kind": "redis", "replicas": 1}, {"kind": "seats", "initial": 1},
                            [("decr_if_positive", Completion.ok(0)), ("decr_if_positive", sold_out)]))
    assert (mix.acked, mix.failed_conditional, mix.nodes) == (1, 1, 2)
    unsafe = op_mix(run_folder(tmp_path / "b", {"kind": "dynamodb", "variant": "read-modify-write"},
                               {"kind": "counter"}, [("incr", Completion.ok(1)), ("incr", Completion.ok(2))]))
    assert unsafe.reads_before_writes == 2 and unsafe.reads == 0


def test_a_run_without_history_has_no_cost_and_says_why(tmp_path, prices):
    folder = run_folder(tmp_path, {"kind": "redis"}, {"kind": "counter"}, [])
    for p in folder.history_dir.iterdir():
        p.unlink()
    c = run_cost(folder, prices=prices)
    assert c.usd_per_million is None and c.basis.startswith("no cost: no history in")


@pytest.mark.parametrize("fixture", ["run-v1", "run-v2"])
def test_op_mix_of_the_shipped_fixture_runs(fixture, prices):
    # redis-counter: one op acknowledged, one refused before it was sent, one never completed
    folder = RunFolder(Path(__file__).resolve().parents[1] / "fixtures" / fixture)
    mix = op_mix(folder)
    assert (mix.acked, mix.failed, mix.unsent, mix.indeterminate, mix.requests) == (1, 1, 1, 1, 2)
    c = run_cost(folder, prices=prices)
    assert c.usd_per_million == pytest.approx(0.149 / (mix.ok_per_s * 3600) * 1e6)
    assert "the 50.0% of requests not acknowledged" in c.basis and "not on the priced cache.m6g.large" in c.basis


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
def test_verdict_json_says_why_ops_failed_or_stayed_indeterminate_most_frequent_first(tmp_path, stream):
    """A contract that cannot read its answers: every op indeterminate for the same reason, each quoting a
    different answer -- one reason, counted once per op, its first answer kept as the sample."""
    from harness.judge import judge

    why = "unparseable answer: BadReply: no integer at JSON pointer /data/like: "
    unread = [Completion(Outcome.INDETERMINATE, None, why + f"b'{{\"data\": {{\"likes\": {v}}}}}'") for v in (1, 2, 3)]
    ops: list[tuple[OpKind, Completion]] = [
        *[("incr", c) for c in unread], ("incr", Completion(Outcome.INDETERMINATE, None, "timeout")),
        ("incr", Completion(Outcome.FAIL, None, "HTTP 429")), ("incr", Completion.ok(1))]
    folder = run_folder(tmp_path, {"kind": "http"}, {"kind": "counter"}, ops, never_completed=1)
    folder.write(folder.state_json, {"initial": {"k": 0}, "final": {"k": 5}})
    reasons = judge(folder, stream=stream)["reasons"]
    top = reasons["indeterminate"][0]
    assert (top["reason"], top["ops"]) == ("unparseable answer: BadReply: no integer at JSON pointer /data/like", 3)
    assert top["sample"].endswith("""b'{"data": {"likes": 1}}'""")
    # ties: in the order they were first met
    assert [(r["reason"], r["ops"]) for r in reasons["indeterminate"][1:]] == [("timeout", 1), (NEVER_COMPLETED, 1)]
    assert [(r["reason"], r["ops"]) for r in reasons["fail"]] == [("HTTP 429", 1)]


def test_a_service_counterbench_did_not_start_is_priced_only_by_a_table_of_your_own(tmp_path, prices):
    ops: list[tuple[OpKind, Completion]] = [("incr", Completion.ok(v)) for v in (1, 2, 3)]
    folder = run_folder(tmp_path, {"kind": "http"}, {"kind": "counter"}, ops)
    assert run_cost(folder, prices=prices).usd_per_million is not None  # the reference service, as started
    folder.update(folder.run_json, target={"kind": "http", "url": "http://127.0.0.1:9911", "variant": None})
    mine = run_cost(folder, prices=prices)
    assert mine.usd_per_million is None and "price table of your own" in mine.basis
    own = shutil.copy(SHIPPED, tmp_path / "mine.yaml")
    assert run_cost(folder, prices=load_prices(Path(own))).usd_per_million is not None  # your table, your call
