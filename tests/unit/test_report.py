"""Report and comparison built offline from fixture run folders; the capacity knee finder."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from harness.compare import compare, warnings
from harness.judge import judge
from harness.report.build import build_report
from harness.report.data import knee, load_run, meets
from harness.runfolder import RunFolder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run-v1"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "run")
    judge(RunFolder(tmp_path / "run"))
    return tmp_path / "run"


def test_report_files_and_exact_summary(run_dir):
    page = build_report(run_dir)
    for name in ("summary.csv", "latency_over_time.png", "latency_distribution.png", "throughput.png"):
        assert (run_dir / name).stat().st_size > 0, name
    (row,) = list(csv.DictReader((run_dir / "summary.csv").read_text().splitlines()))
    assert (row["op"], row["count"], row["ok"], row["fail"]) == ("increment", "3001", "3000", "1")
    # the fixture's three windows hold k * 100 us for k = 1..1000, times 1, 2 and 3
    values = sorted(k * 100 * w for w in (1, 2, 3) for k in range(1, 1001))
    for key, p in (("p50", 50), ("p99", 99), ("max", 100)):
        want_ms = values[min(len(values) - 1, int(p / 100 * len(values)) - 1)] / 1000
        assert abs(float(row[key]) - want_ms) / want_ms < 0.002, key
    text = page.read_text()
    assert text.index("PASS") < text.index("Totals") < text.index("<img")  # verdict first, then tables, plots
    assert "data:image/png;base64," in text and "src=\"latency" not in text  # self-contained


def test_report_without_a_verdict_says_unknown(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "run")
    assert "UNKNOWN" in build_report(tmp_path / "run").read_text()


def test_compare_two_runs_and_warn_when_loads_differ(run_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    page = compare([run_dir, other], tmp_path / "cmp")
    assert (tmp_path / "cmp" / "comparison.csv").exists()
    assert page.read_text().count("<tr>") >= 3
    assert warnings([load_run(run_dir), load_run(other)]) == []


def _step(i, ok_per_s, p99, error_rate=0.0, ops=100):
    return {"step": i, "ok_per_s": ok_per_s, "p99": p99, "p50": p99 / 4, "error_rate": error_rate, "ops": ops}


class Slo:
    p99_ms = 50.0
    p50_ms = None
    max_error_rate = 0.001


@pytest.mark.parametrize(("p99s", "want"), [
    ([5, 10, 20, 80, 200], 3),      # the knee: step 3 is the last within 50 ms
    ([5, 10, 20, 40], 4),           # every step meets it
    ([60, 10, 20], None),           # the first step already misses
    ([5, 80, 20], 1),               # a pass after a miss is noise, not capacity
])
def test_knee_finder(p99s, want):
    rows = [_step(i + 1, 100 * (i + 1), p) for i, p in enumerate(p99s)]
    for r in rows:
        r["meets_slo"] = meets(Slo, r)
    best = knee(rows)
    assert (best["step"] if best else None) == want


def test_errors_break_the_slo_too():
    assert not meets(Slo, _step(1, 100, 5, error_rate=0.01))
    assert not meets(Slo, _step(1, 100, 5, ops=0))
