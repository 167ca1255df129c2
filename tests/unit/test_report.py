"""Report and comparison built offline from fixture run folders; the capacity knee finder."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from harness.core.runfolder import RunFolder
from harness.judge import judge
from harness.report.build import build_report
from harness.report.compare import compare, warnings
from harness.report.data import knee, load_run, meets

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
    assert "Cost per million acknowledged increments" in text and "node-priced" in text


def test_report_without_a_verdict_says_unknown(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "run")
    assert "UNKNOWN" in build_report(tmp_path / "run").read_text()


def test_compare_two_runs_and_warn_when_loads_differ(run_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    page = compare([run_dir, other], tmp_path / "cmp")
    rows = list(csv.DictReader((tmp_path / "cmp" / "comparison.csv").read_text().splitlines()))
    assert [r["row"] for r in rows] == ["run", "run", "group"]  # two runs of one scenario: one group
    assert rows[0]["usd_per_M"] == rows[1]["usd_per_M"] != "" and rows[0]["cost_basis"].startswith("node-priced")
    assert (rows[2]["runs"], rows[2]["ok_per_s"]) == ("2", rows[0]["ok_per_s"])
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


# --- reading latency logs fast: the same figures as HdrHistogram's own --------------------------

def _random_histogram(seed: int, n: int = 3000, scale: float = 7.0):
    import random

    from harness.metrics import new_histogram

    rng = random.Random(seed)
    h = new_histogram()
    for _ in range(n):
        h.record_value(max(1, min(int(rng.lognormvariate(scale, 2.0)), 3_600_000_000)))
    return h


def test_bucket_layout_matches_hdrhistogram():
    from harness.metrics.hdr import _layout, new_histogram

    h, layout = new_histogram(), _layout()
    assert layout.size == h.counts_len
    for i in range(h.counts_len):
        v = h.get_value_from_index(i)
        assert (layout.lowest[i], layout.highest[i]) == (h.get_lowest_equivalent_value(v),
                                                          h.get_highest_equivalent_value(v)), i


@pytest.mark.parametrize("seed", range(4))
def test_decoded_counts_match_hdrhistogram(seed):
    from hdrh.histogram import HdrHistogram

    from harness.metrics import decode_counts

    h = _random_histogram(seed, scale=4.0 + 3 * seed)
    h.record_value(17, 2**40)  # a count beyond 32 bits
    encoded = h.encode()
    index, count = decode_counts(encoded.decode())
    back = HdrHistogram.decode(encoded)
    want = [(i, back.get_count_at_index(i)) for i in range(back.counts_len) if back.get_count_at_index(i)]
    assert list(zip(index.tolist(), count.tolist(), strict=True)) == want


def test_empty_foreign_and_broken_histograms():
    from hdrh.histogram import HdrHistogram

    from harness.metrics import decode_counts, merge, new_histogram

    index, count = decode_counts(new_histogram().encode())
    assert len(index) == len(count) == 0
    foreign = HdrHistogram(1, 10**7, 2)  # another layout: re-recorded into ours, as merge did
    for v in (5, 500, 50_000, 5_000_000):
        foreign.record_value(v, 3)
    ours = new_histogram()
    ours.add(foreign)
    index, count = decode_counts(foreign.encode())
    assert int(count.sum()) == 12
    assert merge([]).get_total_count() == 0
    for bad in ("", "bm90IGEgaGlzdG9ncmFt", "HISTFAAAAFl4nJNpmSzMwMDuxwABzFCaEURcm7yE"):
        with pytest.raises(ValueError):
            decode_counts(bad)


def test_merged_percentiles_match_hdrhistogram(tmp_path):
    from harness.metrics import LogInterval, decode_counts, merge, new_histogram, percentiles, window_percentiles

    parts = [_random_histogram(s, n=2000 + 500 * s) for s in range(5)]
    want = new_histogram()
    for h in parts:
        want.add(h)
    intervals = [LogInterval(tag="x.ok", start=0.0, length=1.0, index=i, count=c)
                 for i, c in (decode_counts(h.encode()) for h in parts)]
    got = merge(intervals)
    assert got.get_total_count() == want.get_total_count()
    for p in (0, 0.001, 1, 25, 50, 90, 99, 99.9, 99.99, 99.9999, 100):
        assert got.get_value_at_percentile(p) == want.get_value_at_percentile(p), p
    assert got.get_max_value() == want.get_max_value()
    assert percentiles(got) == percentiles(want)
    assert window_percentiles(intervals) == (want.get_total_count(), percentiles(want))
    assert window_percentiles(intervals[:1]) == (parts[0].get_total_count(), percentiles(parts[0]))
    assert intervals[0].histogram.get_total_count() == parts[0].get_total_count()
    assert intervals[0].histogram.get_value_at_percentile(99) == parts[0].get_value_at_percentile(99)


def test_long_run_windows_are_exact_per_second(tmp_path):
    """Two workers' logs over many seconds: every per-second row equals HdrHistogram's merge."""
    from harness.metrics import new_histogram, percentiles

    shutil.copytree(FIXTURE, tmp_path / "run")
    metrics = tmp_path / "run" / "metrics"
    (metrics / "fixture-1.hlog").unlink()
    hist = {}
    for w in range(2):
        lines = ["#[StartTime: 1000.000 (seconds since epoch)]"]
        for s in range(40):
            h = _random_histogram(100 * w + s, n=200)
            hist[(w, s)] = h
            lines.append(f"Tag=increment.ok,{s}.{w}00,1.000,{h.get_max_value() / 1000:.3f},{h.encode().decode()}")
        (metrics / f"w{w}.hlog").write_text("\n".join(lines) + "\n")
    frame = load_run(tmp_path / "run").windows()
    assert len(frame) == 40
    for row in frame.itertuples():
        want = new_histogram()
        want.add(hist[(0, row.t)])
        want.add(hist[(1, row.t)])
        assert row.count == want.get_total_count()
        assert (row.p50, row.p99, row.max) == tuple(percentiles(want)[k] for k in ("p50", "p99", "max"))


# --- planned faults: which happened (opened at, healed at) and which did not, and why ------------

def faulted_run(tmp_path: Path) -> Path:
    """The fixture run with two planned faults: a pause that opened and healed, a kill the load ended before."""
    import json

    shutil.copytree(FIXTURE, tmp_path / "run")
    folder = RunFolder(tmp_path / "run")
    run = json.loads(folder.run_json.read_text())
    run["scenario"]["faults"] = [{"at": 1, "action": "pause", "duration": 2}, {"at": 6, "action": "kill"}]
    folder.run_json.write_text(json.dumps(run))
    start = run["started_at"]
    events = [{"event": "begin", "fault": 0, "t": 1.004},
              {"event": "end", "fault": 0, "t": 3.012, "action": "pause", "server": "target"},
              {"event": "not-opened", "fault": 1, "t": 4.2, "why": "load-ended", "load_ended_s": 4.2,
               "stopped_by": "SIGTERM"}]
    folder.faults_jsonl.write_text("".join(
        json.dumps({"schema_version": 2, "action": "pause", "server": "target", **e,
                    "time": start + e["t"]}) + "\n" for e in events))
    judge(folder)
    return folder.path


def test_the_summary_shows_which_faults_happened_and_why_one_did_not(tmp_path, capsys):
    from harness.report.summary import print_summary

    folder = RunFolder(faulted_run(tmp_path))
    v = folder.read(folder.verdict_json)
    assert v["verdict"] == "unknown"
    print_summary(v)
    out = capsys.readouterr().out
    assert "UNKNOWN  (expected pass) - kill planned at 6 s did not happen: the load ended at 4.2 s (stopped by " \
           "SIGTERM)" in out
    assert "  faults: 1 of 2 as planned; a run whose planned faults did not all happen cannot pass" in out
    assert "    pause planned at 1 s opened at 1 s, healed at 3 s\n" in out
    assert "    kill planned at 6 s did not happen: the load ended at 4.2 s (stopped by SIGTERM)\n" in out


def test_the_report_shows_each_planned_fault_and_its_window(tmp_path):
    page = build_report(faulted_run(tmp_path)).read_text()
    faults = page[page.index("<h2>Faults</h2>"):]
    assert "<th>opened at (s)</th><th>healed at (s)</th>" in faults
    assert "<td>pause</td><td>target</td><td class=\"num\">1</td><td class=\"num\">2</td>" \
           "<td class=\"num\">1</td><td class=\"num\">3.01</td><td>yes</td>" in faults
    assert "<td>NO</td><td>kill planned at 6 s did not happen: the load ended at 4.2 s (stopped by SIGTERM)</td>" \
           in faults
    assert '<div class="warn"><b>kill planned at 6 s did not happen' in faults
    assert "ops completed during it" in faults  # the pause's window, with its ops


def test_report_says_why_ops_failed_first_and_a_check_over_no_acknowledged_op_holds_of_nothing(run_dir):
    from harness.report.build import _result

    text = build_report(run_dir).read_text()
    assert text.index("PASS") < text.index("Why ops failed or stayed indeterminate") < text.index("Totals")
    held = {"name": "bounds", "key": "k", "valid": True}
    assert _result(held, {"totals": {"ok": 3}}) == "holds"
    assert _result(held, {"totals": {"ok": 0}}) == "holds, of nothing: no op was acknowledged"
    assert _result({**held, "valid": False}, {"totals": {"ok": 0}}) == "VIOLATED"


def test_a_load_stopped_at_its_first_violation_says_so_and_lists_what_was_found_online(run_dir):
    folder = RunFolder(run_dir)
    found = {"check": "unique-values", "key": "k", "after_s": 1.3, "sentence": "3 values handed out twice or more"}
    v = folder.read(folder.verdict_json)
    folder.write(folder.verdict_json, {**v, "stopped": {"signal": None, "violation": found, "after_s": 1.3},
                                       "online": {"checks": ["unique-values", "reads"], "off": None, "ops": 40,
                                                  "counts": {"unique-values": 3}, "violations": [found]}})
    text = build_report(run_dir).read_text()
    assert "stopped at the first violation, 1.3 s in (stop_on_violation): unique-values on k" in text
    assert text.index("Violations found while the load ran") < text.index("Totals")
    assert "unique-values 3" in text and "<td>3 values handed out twice or more</td>" in text
