"""HdrHistogram recording, exact merging and the interval log."""

from __future__ import annotations

import random

import numpy as np

from harness.metrics import LatencyRecorder, merge, new_histogram, percentile_distribution, percentiles, read_log


def test_merge_equals_recording_everything_in_one_histogram(tmp_path):
    rng = random.Random(7)
    values = [rng.lognormvariate(7, 1.2) for _ in range(20_000)]
    logs = []
    for w in range(3):  # three "workers", each a share of the values
        r = LatencyRecorder(tmp_path / f"w{w}.hlog")
        for v in values[w::3]:
            r.record("increment.ok", v)
        r.close()
        logs.append(tmp_path / f"w{w}.hlog")
    merged = merge(i for p in logs for i in read_log(p))
    single = new_histogram()
    for v in values:
        single.record_value(max(1, int(v)))
    assert merged.get_total_count() == single.get_total_count() == 20_000
    for p in (50, 90, 99, 99.9, 99.99, 100):
        assert merged.get_value_at_percentile(p) == single.get_value_at_percentile(p)


def test_percentiles_of_a_known_set_within_three_digits():
    h = new_histogram()
    for us in range(1, 100_001):  # 1 us .. 100 ms, uniform
        h.record_value(us)
    got = percentiles(h)
    for key, want_ms in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9), ("max", 100.0)):
        assert abs(got[key] - want_ms) / want_ms < 0.001, (key, got[key])


def test_empty_histogram_has_no_percentiles():
    assert percentiles(new_histogram()) == {"p50": None, "p90": None, "p99": None, "p99.9": None, "max": None}
    assert percentile_distribution(new_histogram()) == []


def test_tags_and_windows_survive_the_log(tmp_path):
    r = LatencyRecorder(tmp_path / "a.hlog", start_wall=1000.0)
    r.record("increment.ok", 100)
    r.record("increment.fail", 200)
    r.record("increment.ok.intended", 300)
    r.close()
    got = {(i.tag, i.start, i.histogram.get_total_count()) for i in read_log(tmp_path / "a.hlog")}
    assert got == {("increment.ok", 1000.0, 1), ("increment.fail", 1000.0, 1), ("increment.ok.intended", 1000.0, 1)}


def test_values_beyond_the_range_are_clamped_not_lost(tmp_path):
    r = LatencyRecorder(tmp_path / "a.hlog")
    r.record("x.ok", 0)
    r.record("x.ok", 10**13)
    r.close()
    (i,) = list(read_log(tmp_path / "a.hlog"))
    assert i.histogram.get_total_count() == 2


def test_percentile_distribution_is_monotonic_and_reaches_the_max():
    h = new_histogram()
    for us in range(1, 10_001):
        h.record_value(us)
    pts = percentile_distribution(h)
    values = [v for _, v in pts]
    assert values == sorted(values)
    assert pts[-1][1] == h.get_max_value() / 1000


def test_load_generator_cpu_and_saturation(tmp_path):
    from harness.metrics import load_generator_cpu

    (tmp_path / "busy.cpu.csv").write_text("window_start_s,cpu_s\n0,0.3\n1,0.95\n2,0.97\n3,0.99\n4,0.2\n")
    (tmp_path / "idle.cpu.csv").write_text("window_start_s,cpu_s\n0,0.1\n1,0.2\n2,0.25\n3,0.3\n4,0.1\n")
    got = load_generator_cpu(sorted(tmp_path.glob("*.cpu.csv")))
    assert got["saturated"] is True
    by = {w["worker"]: w for w in got["workers"]}
    assert by["busy"]["saturated"] and not by["idle"]["saturated"]
    assert by["idle"]["cpu_max"] == 0.3 and abs(by["idle"]["cpu_mean"] - 0.25) < 1e-9


def test_recorder_writes_its_cpu_per_window(tmp_path):
    from harness.metrics import LatencyRecorder, load_generator_cpu

    r = LatencyRecorder(tmp_path / "w.hlog")
    r.record("x.ok", 5)
    r.close()
    assert (tmp_path / "w.cpu.csv").read_text().startswith("window_start_s,cpu_s\n0.000,")
    assert load_generator_cpu(sorted(tmp_path.glob("*.cpu.csv")))["saturated"] is False


def test_window_histograms_are_the_same_as_recording_each_value(tmp_path):
    from harness.metrics import read_log, window_histogram

    rng = random.Random(3)
    values = [rng.lognormvariate(8, 2) for _ in range(50_000)] + [0, 0.5, 1, 2047.9, 2048, 2049, 10**12]
    direct = new_histogram()
    for v in values:
        direct.record_value(max(1, min(int(v), 3_600_000_000)))
    built = window_histogram(values)
    assert built.encode() == direct.encode()  # the same counts, bucket for bucket
    # the latencies handed over in bulk are int64 arrays: the same again, across the whole range
    ints = [int(v) for v in values] + [rng.randrange(1, 3_600_000_001) for _ in range(50_000)]
    direct_ints = new_histogram()
    for v in ints:
        direct_ints.record_value(max(1, min(v, 3_600_000_000)))
    assert window_histogram(np.array(ints, dtype=np.int64)).encode() == direct_ints.encode()
    assert (built.get_total_count(), built.get_max_value(), built.get_min_value()) == (
        direct.get_total_count(), direct.get_max_value(), direct.get_min_value())
    # and what the recorder writes for a window decodes to the same histogram
    r = LatencyRecorder(tmp_path / "w.hlog")
    for v in values:
        r.record("x.ok", v)
    r.close()
    [interval] = list(read_log(tmp_path / "w.hlog"))
    assert interval.tag == "x.ok" and int(interval.count.sum()) == len(values)
