"""DynamoDB and the seed article's API Gateway design, on dynalite: both directions."""

from __future__ import annotations

import pytest

from harness.core.ops import Outcome
from harness.history import read_history
from harness.targets.dynamodb import DynamoAdmin, DynamoOps, DynamoTarget, dynamodb_client
from tests.integration.conftest import SHIPPED, run_cli

pytestmark = pytest.mark.integration
SHORT = ["--users", "16", "--spawn-rate", "16", "--duration", "3"]


@pytest.mark.parametrize("scenario", ["dynamodb-counter", "dynamodb-seats", "dynamodb-sharded-counter"])
def test_safe_dynamodb_scenarios_pass(tmp_path, dynalite_url, scenario):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", scenario, "--target-url", dynalite_url, *SHORT)
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v and v["reason"]
    assert v["totals"]["ok"] > 20


def test_eventually_consistent_reads_of_the_embedded_dynamodb_are_never_stale(tmp_path, dynalite_url):
    """dynalite is one node: an eventually consistent GetItem reads the same data as a strong one. Against
    DynamoDB the same scenario may fail; here its reads are checked and hold."""
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "dynamodb-counter-stale-reads", "--target-url",
                      dynalite_url, *SHORT)
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v and v["reason"]
    assert v["totals"]["reads"] > 10
    assert next(c for c in v["checks"] if c["name"] == "reads")["valid"] is True


def test_sharded_counter_is_checked_per_shard_and_in_total(tmp_path, dynalite_url):
    _, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "dynamodb-sharded-counter", "--target-url", dynalite_url,
                   *SHORT)
    assert v is not None and v["totals"]["keys"] == 8
    bounds = {c["key"]: c for c in v["checks"] if c["name"] == "bounds"}
    assert bounds["(every key)"]["evidence"]["keys"] == 8
    assert bounds["(total)"]["valid"] is True


def test_read_modify_write_on_dynamodb_loses_updates(tmp_path, dynalite_url):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "dynamodb-counter-unsafe", "--target-url", dynalite_url,
                      "--users", "32", "--duration", "3")
    assert v is not None and (code, v["verdict"]) == (1, "fail")
    assert v["totals"]["lost"] > 0


def test_the_article_update_on_a_missing_item_is_refused_not_applied(dynalite_url):
    # `set counterValue = counterValue + :num` on an item without counterValue: ValidationException
    target = DynamoTarget(kind="dynamodb", table="cb-missing", update="set")
    client = dynamodb_client(url=dynalite_url, region="us-east-1", timeout=5)
    admin = DynamoAdmin(client, table="cb-missing", key_of=lambda k: {"pk": {"S": k}}, attribute="counterValue",
                        key_schema=["pk"], create_table=True, where=dynalite_url)
    admin.setup({"present": 5})
    ops = DynamoOps(target, client)
    done = ops.incr("absent", 1)
    assert done.outcome is Outcome.FAIL and "ValidationException" in (done.error or "")
    assert admin.read(["absent", "present"]) == {"absent": None, "present": 5}
    assert ops.incr("present", 2).value == 7


def test_the_seed_article_through_the_emulator_passes_with_32_users(tmp_path):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "apigateway-counter", "--users", "32",
                      "--spawn-rate", "32", "--duration", "3")
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v and v["reason"]
    assert v["totals"]["ok"] > 50
    unique = next(c for c in v["checks"] if c["name"] == "unique-values")
    assert unique["valid"] is True and unique["evidence"]["returns"] == "before"
    # UPDATED_OLD: the values handed out are the ones before each increment, from the initial 0
    ops = list(read_history(tmp_path / "run" / "history").ops())
    assert min(o.value for o in ops if o.outcome is Outcome.OK) == 0


def test_conditional_seats_through_the_emulator_answer_409_when_sold_out(tmp_path):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "apigateway-seats")  # 6 s: long enough to sell out
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v and v["reason"]
    assert v["totals"]["fail"] > 0 and v["totals"]["oversold"] == 0
    ops = list(read_history(tmp_path / "run" / "history").ops())
    assert {o.error for o in ops if o.outcome is Outcome.FAIL} == {"HTTP 409"}


def test_unmapped_sold_out_is_indeterminate_never_ok(tmp_path):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "apigateway-seats-unmapped")
    assert v is not None
    ops = list(read_history(tmp_path / "run" / "history").ops())
    ok = [o for o in ops if o.outcome is Outcome.OK]
    assert len(ok) == 500 and all(o.value is not None for o in ok)  # exactly the capacity, each with a value
    assert v["totals"]["indeterminate"] > 0
    assert (code, v["verdict"]) == (0, "pass")
