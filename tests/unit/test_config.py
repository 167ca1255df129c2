"""scenarios.yaml validation: every mistake names file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.checks import default_checks
from harness.config import get_scenario, load_scenarios, with_overrides
from harness.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "scenarios.yaml"
    p.write_text(textwrap.dedent(text).lstrip())
    return p


GOOD = """
schema_version: 1
scenarios:
  s:
    target: {kind: redis}
    workload: {kind: counter}
"""


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as e:
        load_scenarios(write(tmp_path, text))
    return str(e.value)


def test_shipped_scenarios_are_valid_and_named_as_promised():
    names = set(load_scenarios(ROOT / "scenarios.yaml"))
    assert {"redis-counter", "redis-counter-unsafe", "redis-seats", "redis-seats-unsafe", "redis-amount",
            "redis-unique-ids", "redis-page-views", "http-counter", "http-seats", "http-amount"} <= names


def test_defaults_fill_in(tmp_path):
    s = load_scenarios(write(tmp_path, GOOD))["s"]
    assert s.checks == default_checks("counter")
    assert s.load.users == 32 and s.target.variant == "atomic" and not s.allow_remote


def test_unknown_key_names_line_and_key(tmp_path):
    msg = error_of(tmp_path, GOOD + "    lod: {users: 3}\n")
    assert msg == f"{tmp_path / 'scenarios.yaml'}:6: scenarios.s.lod: unknown key (did you mean 'load'?)"


def test_an_unknown_key_close_to_a_known_one_says_which_and_a_far_one_says_none(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("workload: {kind: counter}", "workload: {kind: counter, intial: 5}"))
    assert msg.endswith("scenarios.s.workload.intial: unknown key (did you mean 'initial'?)"), msg
    assert error_of(tmp_path, GOOD + "    zzqx: 1\n").endswith("scenarios.s.zzqx: unknown key")


def test_wrong_type_names_line_key_and_value(tmp_path):
    msg = error_of(tmp_path, GOOD + "    load:\n      users: many\n")
    assert f"{tmp_path / 'scenarios.yaml'}:7: scenarios.s.load.users:" in msg
    assert "'many'" in msg


def test_impossible_value(tmp_path):
    msg = error_of(tmp_path, GOOD + "    load:\n      duration: 0\n")
    assert ":7: scenarios.s.load.duration: Input should be greater than or equal to 1" in msg


def test_bad_enum_inside_the_target_union(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("{kind: redis}", "{kind: redis, variant: atomc}"))
    assert ":4: scenarios.s.target.variant:" in msg and "'atomc'" in msg


def test_unknown_target_kind(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("{kind: redis}", "{kind: memcached}"))
    assert ":4: scenarios.s.target" in msg


def test_missing_required_key_names_its_parent_line(tmp_path):
    msg = error_of(tmp_path, "schema_version: 1\nscenarios:\n  s:\n    target: {kind: redis}\n")
    assert ":3: scenarios.s.workload: required key is missing" in msg


def test_cross_field_rule(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("{kind: redis}", "{kind: redis, variant: check-then-act}"))
    assert ":3: scenarios.s: " in msg and "check-then-act is for the seats workload" in msg


def test_negative_capacity(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("{kind: counter}", "{kind: seats, initial: -5}"))
    assert "scenarios.s.workload: seats.initial is the capacity" in msg


def test_http_contract_needs_key_in_path(tmp_path):
    text = GOOD.replace("{kind: redis}", "{kind: http, contract: {increment: {method: POST, path: /inc}}}")
    assert "scenarios.s.target.contract.increment: path must contain {key}" in error_of(tmp_path, text)


def test_duplicate_keys_are_refused(tmp_path):
    msg = error_of(tmp_path, GOOD + "    workload: {kind: seats}\n")
    assert ":6: scenarios.s.workload: duplicate key" in msg


def test_several_mistakes_are_reported_together(tmp_path):
    msg = error_of(tmp_path, GOOD + "    load: {users: 0, spawn_rate: -1}\n")
    assert "load.users" in msg and "load.spawn_rate" in msg


def test_invalid_yaml(tmp_path):
    msg = error_of(tmp_path, "schema_version: 1\nscenarios: [\n")
    assert "not valid YAML" in msg and str(tmp_path) in msg


def test_unsupported_schema_version(tmp_path):
    text = GOOD.replace("schema_version: 1", "schema_version: 2")
    assert "schema_version 2 is not supported" in error_of(tmp_path, text)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenarios(tmp_path / "nope.yaml")


def test_unknown_scenario_lists_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="no scenario named 'x'; known: s"):
        get_scenario(write(tmp_path, GOOD), "x")


def test_overrides_are_validated_and_name_the_flag(tmp_path):
    s = load_scenarios(write(tmp_path, GOOD))["s"]
    assert with_overrides(s, users=4, duration=2, target_url="redis://127.0.0.1:1/0").load.users == 4
    with pytest.raises(ConfigError, match="--users: Input should be greater than or equal to 1"):
        with_overrides(s, users=0)


def test_anchors_and_x_keys_are_allowed(tmp_path):
    text = "schema_version: 1\nx-l: &l {users: 3}\nscenarios:\n  s:\n    target: {kind: redis}\n" \
           "    workload: {kind: counter}\n    load: *l\n"
    assert load_scenarios(write(tmp_path, text))["s"].load.users == 3


def test_scenarios_are_immutable(tmp_path):
    s = load_scenarios(write(tmp_path, GOOD))["s"]
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        s.load.users = 5  # type: ignore[misc]


def test_steps_set_the_duration_and_do_not_mix_models(tmp_path):
    text = GOOD + "    load: {steps: [{users: 2, duration: 3}, {users: 4, duration: 5}]}\n"
    s = load_scenarios(write(tmp_path, text))["s"]
    assert s.load.duration == 8 and s.load.users_at(4) == 4 and not s.load.open_model
    mixed = GOOD + "    load: {steps: [{users: 2, duration: 3}, {rate: 40, duration: 5}]}\n"
    assert "all users (closed model) or all rate" in error_of(tmp_path, mixed)
    assert "exactly one of users or rate" in error_of(tmp_path, GOOD + "    load: {steps: [{duration: 3}]}\n")


def test_open_model_rate(tmp_path):
    s = load_scenarios(write(tmp_path, GOOD + "    load: {rate: 500, users: 8}\n"))["s"]
    assert s.load.open_model and s.load.rate_at(0) == 500
    assert "wait is for the closed model" in error_of(tmp_path, GOOD + "    load: {rate: 5, wait: 1}\n")


def test_memory_service_cannot_have_workers(tmp_path):
    text = GOOD.replace("{kind: redis}", "{kind: http, service: {store: memory, workers: 2}}")
    assert "workers must be 1" in error_of(tmp_path, text)


def test_suites_name_known_scenarios(tmp_path):
    assert "suites.demo.1: no scenario named 'nope'" in error_of(tmp_path, GOOD + "suites: {demo: [s, nope]}\n")



@pytest.mark.parametrize(("target", "faults", "error"), [
    ("{kind: redis}", "[{at: 1, action: failover}]", "a failover fault needs a replicated target"),
    ("{kind: http, service: {store: postgres}}", "[{at: 1, action: stall-replication, duration: 1, server: store}]",
     "a stall-replication fault needs a replicated store"),
    ("{kind: http, service: {store: redis, replicas: 1}}", "[]", "replicas and synchronous are for the postgres"),
    ("{kind: redis, wait: {replicas: 1, timeout_ms: 5000}, timeout: 2}", "[]", "shorter than target.timeout"),
    ("{kind: redis, replicas: 1}", "[{at: 1, action: lose-responses, duration: 1, fraction: 2}]",
     "less than or equal to 1"),
])
def test_replication_and_retry_settings_are_checked(tmp_path, target, faults, error):
    p = tmp_path / "s.yaml"
    p.write_text(f"schema_version: 1\nscenarios:\n  s:\n    target: {target}\n    workload: {{kind: counter}}\n"
                 f"    faults: {faults}\n")
    with pytest.raises(ConfigError, match=error):
        load_scenarios(p)


# --- a fault planned at or after the load's end: no run could see it happen ----------------------

LATE = """
schema_version: 1
scenarios:
  s:
    target: {kind: redis}
    workload: {kind: counter}
    load: {duration: 3}
    faults:
      - {at: 1, action: pause, duration: 1}
      - {at: 3, action: kill}
"""


def test_a_fault_at_the_load_end_names_file_line_and_key(tmp_path):
    msg = error_of(tmp_path, LATE)
    assert msg == (f"{tmp_path / 'scenarios.yaml'}:9: scenarios.s.faults.1.at: kill planned at 3 s, "
                   "at or after the load's end (3 s)")


def test_a_fault_just_before_the_load_end_is_fine(tmp_path):
    s = load_scenarios(write(tmp_path, LATE.replace("{at: 3, action: kill}", "{at: 2.9, action: kill}")))["s"]
    assert s.late_faults() == ()


def test_steps_set_the_end_that_faults_must_come_before(tmp_path):
    text = LATE.replace("load: {duration: 3}", "load: {steps: [{users: 2, duration: 1}, {users: 4, duration: 1}]}")
    assert "scenarios.s.faults.1.at: kill planned at 3 s, at or after the load's end (2 s)" in error_of(tmp_path, text)


def test_a_shorter_duration_on_the_command_line_names_the_fault_line_and_the_flag(tmp_path):
    path = write(tmp_path, LATE.replace("{at: 3, action: kill}", "{at: 2, action: kill}"))
    s = load_scenarios(path)["s"]
    with pytest.raises(ConfigError) as e:
        with_overrides(s, duration=2, path=path)
    assert str(e.value) == (f"{path}:9: scenarios.s.faults.1.at: kill planned at 2 s, at or after the load's end "
                            "(2 s, set by --duration)")
    assert with_overrides(s, duration=3, path=path).load.duration == 3


def test_every_shipped_scenario_runs_its_faults_within_its_load():
    for name, s in load_scenarios(ROOT / "scenarios.yaml").items():
        assert not s.late_faults(), name
    for name, s in load_scenarios(ROOT / "tests" / "integration" / "scenarios.yaml").items():
        assert not s.late_faults(), name


def test_idempotency_keys_over_the_reference_services_dynamodb_store_are_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("schema_version: 1\nscenarios:\n  x:\n    target:\n      kind: http\n"
                    "      service: {store: dynamodb}\n      contract: {idempotency: {}}\n"
                    "    workload: {kind: counter}\n")
    with pytest.raises(ConfigError, match=r"s.yaml:4: scenarios.x.target: .*no idempotency keys over DynamoDB"):
        load_scenarios(path)


def test_a_contract_without_a_setter_refuses_a_chosen_initial_value_in_a_sentence(tmp_path):
    no_setter = "target: {kind: http, url: 'http://127.0.0.1:9', contract: {set: null}}"
    body = GOOD.replace("target: {kind: redis}", no_setter)
    assert load_scenarios(write(tmp_path, body))["s"].target.contract.set is None
    msg = error_of(tmp_path, body.replace("workload: {kind: counter}", "workload: {kind: counter, initial: 5}"))
    assert "contract.set is null (the service has no setter)" in msg and "remove it" in msg, msg
