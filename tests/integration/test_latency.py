"""Latency done right on real servers: the open model's correction, stepped load, reports."""

from __future__ import annotations

import csv

import pytest

from harness.cli import main
from harness.metrics import percentiles
from harness.report.data import load_run
from tests.integration.conftest import TEST_SCENARIOS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", ["pause"], indirect=True)
def test_a_one_second_stall_shows_in_corrected_latency_not_in_service_time(tmp_path, service):
    out = tmp_path / "run"
    code = main(["run", "-q", "-f", str(TEST_SCENARIOS), "-s", "open-model-counter", "--target-url", service,
                 "--out", str(out)])
    assert code == 0
    data = load_run(out)
    service_time = percentiles(data.histogram(op="increment"))
    corrected = percentiles(data.histogram(op="increment", measure="intended"))
    # 8 users at 600 ops/s: during the 1 s stall only the 8 ops in flight wait (service time),
    # while ~600 scheduled ops fall behind (latency from their intended send time)
    assert corrected["p99"] is not None and corrected["p99"] > 500, corrected
    assert service_time["p99"] is not None and service_time["p99"] < 300, service_time
    assert data.histogram(outcome="late", measure="late").get_total_count() > 100
    row = next(csv.DictReader((out / "summary.csv").read_text().splitlines()))
    assert float(row["corrected_p99"]) > 500 and int(row["late"]) > 100
    assert (out / "corrected_latency_over_time.png").exists()


def test_stepped_load_reports_each_step_and_the_highest_meeting_the_slo(tmp_path, redis_url):
    out = tmp_path / "run"
    code = main(["run", "-q", "-f", str(TEST_SCENARIOS), "-s", "stepped-redis-counter", "--target-url", redis_url,
                 "--out", str(out)])
    assert code == 0
    steps = list(csv.DictReader((out / "steps.csv").read_text().splitlines()))
    assert [s["users"] for s in steps] == ["2", "8"]
    assert all(float(s["ok_per_s"]) > 0 for s in steps)
    page = (out / "report.html").read_text()
    assert "Highest step meeting it: step" in page
    assert (out / "capacity.png").exists()


def test_report_command_rebuilds_offline(tmp_path, redis_url, capsys):
    out = tmp_path / "run"
    assert main(["run", "-q", "--no-report", "-f", str(TEST_SCENARIOS), "-s", "stepped-redis-counter",
                 "--target-url", redis_url, "--out", str(out)]) == 0
    assert not (out / "report.html").exists()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").exists() and str(out / "report.html") in capsys.readouterr().out
