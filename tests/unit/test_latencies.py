"""Latencies handed over in bulk by the history writer agree with the history, op for op."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np

from harness.core.ops import Completion, Outcome
from harness.history import HistoryWriter, history_file, read_worker_history
from harness.metrics import WINDOW_NS, LatencyRecorder, read_log
from harness.metrics.latencies import HistoryLatencies


def _run(tmp_path: Path, flush_every: int) -> tuple[list, list]:
    recorder = LatencyRecorder(tmp_path / "metrics" / "w.hlog")
    w = HistoryWriter(history_file(tmp_path / "history", "w"), worker="w", run_id="r", scenario="s",
                      on_latencies=HistoryLatencies(recorder))
    t = time.monotonic_ns()
    open_ops: list[tuple[int, int]] = []
    for i in range(2000):
        t0 = t + i * 1_000_000  # 2 s of ops, one per ms
        if i % 10 == 0:  # sent, and still out across a block or two
            open_ops.append((w.invoke("k", "decr_if_positive", -1, t0), t0))
        else:
            done = Completion.fail("sold out") if i % 7 == 0 else Completion.ok(i)
            w.record("k", "incr", 1, t0, done, t0 + 1000 * (i % 300 + 1))
        if len(open_ops) > 3:
            op, sent = open_ops.pop(0)
            w.complete(op, Completion.indeterminate("timeout"), sent + 5_000_000)
        if i % flush_every == 0:
            w.flush()
    w.close()
    recorder.close()
    history = read_worker_history(w.path)
    return history.ops, list(read_log(recorder.path))


def test_every_completed_op_is_in_the_histograms_under_its_kind_and_outcome(tmp_path):
    ops, windows = _run(tmp_path, flush_every=37)  # ops straddle blocks
    tag = {"incr": "increment", "decr_if_positive": "decrement-if-positive"}
    want = Counter(f"{tag[o.kind]}.{o.outcome.value}" for o in ops if o.completed_us is not None)
    got: Counter[str] = Counter()
    for i in windows:
        got[i.tag] += i.total()
    assert got == want and sum(want.values()) > 1900
    assert {o.outcome for o in ops} == {Outcome.OK, Outcome.FAIL, Outcome.INDETERMINATE}


def test_histogram_values_are_the_history_latencies(tmp_path):
    ops, windows = _run(tmp_path, flush_every=500)
    from harness.metrics import merge, window_histogram

    merged = merge(i for i in windows if i.tag == "increment.ok")
    # the history's ends are whole microseconds, each rounded down: a latency may read 1 us long
    exact = window_histogram([o.latency_us for o in ops if o.kind == "incr" and o.outcome is Outcome.OK])
    assert merged.get_total_count() == exact.get_total_count()
    for p in (50, 90, 99, 100):
        assert abs(merged.get_value_at_percentile(p) - exact.get_value_at_percentile(p)) <= 1


def test_recorder_files_bulk_values_under_the_window_they_completed_in(tmp_path):
    r = LatencyRecorder(tmp_path / "a.hlog", start_wall=1000.0)
    base = r._mono0
    completed = np.array([base + 10, base + WINDOW_NS - 1, base + WINDOW_NS, base + 3 * WINDOW_NS + 5])
    r.add("increment.ok", completed, np.array([100, 200, 300, 400]))
    r.record("increment.ok.intended", 500.0, base + 2 * WINDOW_NS)
    r.close()
    got = sorted((i.start, i.tag, i.total()) for i in read_log(tmp_path / "a.hlog"))
    assert got == [(1000.0, "increment.ok", 2), (1001.0, "increment.ok", 1),
                   (1002.0, "increment.ok.intended", 1), (1003.0, "increment.ok", 1)]


def test_a_value_for_a_window_already_written_goes_into_the_open_one(tmp_path):
    r = LatencyRecorder(tmp_path / "a.hlog", start_wall=1000.0)
    base = r._mono0
    r.tick(base + 2 * WINDOW_NS + 1)  # windows 0 and 1 are written
    r.add("increment.ok", np.array([base + 5]), np.array([100]))  # late: window 0 is gone
    r.close()
    assert [(i.start, i.total()) for i in read_log(tmp_path / "a.hlog")] == [(1002.0, 1)]
