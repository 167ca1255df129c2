"""The online checks on real load: a service that hands out a value twice early on is caught while the load
runs; with --stop-on-violation the run ends there, judged, instead of running out its duration."""

from __future__ import annotations

import json
import re
import time

from harness.cli import main
from tests.integration.conftest import TEST_SCENARIOS, start_service


def test_stop_on_violation_ends_a_60_s_run_within_seconds_with_fail_and_its_witness(tmp_path):
    proc, url = start_service("dup-values", every=200)  # the 200th op gets the value the 199th got
    try:
        began = time.monotonic()
        code = main(["run", "-q", "--no-report", "--out", str(tmp_path / "run"), "-f", str(TEST_SCENARIOS),
                     "-s", "faulty-counter", "--target-url", url, "--users", "8", "--spawn-rate", "8",
                     "--duration", "60", "--processes", "2", "--stop-on-violation"])
        took = time.monotonic() - began
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    v = json.loads((tmp_path / "run" / "verdict.json").read_text())
    assert (code, v["verdict"]) == (1, "fail"), v["reason"]
    assert took < 30, f"a 60 s run stopped at its first violation took {took:.0f} s"
    stopped = run["stopped"]
    assert stopped["signal"] is None and stopped["violation"]["check"] == "unique-values"
    assert stopped["after_s"] < 15 and "handed out" in stopped["violation"]["sentence"]
    assert v["stopped"] == stopped and v["online"]["counts"]["unique-values"] >= 1
    unique = next(c for c in v["checks"] if c["name"] == "unique-values")
    assert unique["valid"] is False and unique["evidence"]["repeated"], unique  # the verdict's own witness


def test_without_the_flag_the_violation_gets_its_line_while_the_load_runs(tmp_path, capsys):
    proc, url = start_service("dup-values", every=200)
    try:
        code = main(["run", "--no-report", "--out", str(tmp_path / "run"), "-f", str(TEST_SCENARIOS),
                     "-s", "faulty-counter", "--target-url", url, "--users", "8", "--spawn-rate", "8",
                     "--duration", "6"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    out = capsys.readouterr().out
    found = re.search(r"VIOLATION at ([0-9.]+) s: unique-values on \S+: (.*)", out)
    assert code == 1 and found, out
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["stopped"] is None  # ran its duration
    assert run["online"]["violations"][0]["after_s"] == float(found.group(1)) < 5
    assert "VIOLATIONS unique-values" in out  # counted on the progress line


def test_a_fault_planned_after_the_first_violation_never_opens_and_says_why(tmp_path):
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text("""schema_version: 1
scenarios:
  dup-with-a-late-fault:
    target: {kind: http, timeout: 0.5}
    workload: {kind: counter}
    load: {users: 8, spawn_rate: 8, duration: 60, drain: 3}
    faults: [{at: 20, action: latency, duration: 2}]
""")
    proc, url = start_service("dup-values", every=200)
    try:
        code = main(["run", "-q", "--no-report", "--out", str(tmp_path / "run"), "-f", str(scenarios),
                     "-s", "dup-with-a-late-fault", "--target-url", url, "--stop-on-violation"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    v = json.loads((tmp_path / "run" / "verdict.json").read_text())
    assert code == 1 and v["stopped"]["violation"]["check"] == "unique-values"
    [fault] = v["faults"]
    assert fault["status"] == "load-ended", fault
    assert "(stopped by the first violation (stop_on_violation))" in fault["why"], fault
