"""The report reads a run's latency logs in one streaming pass, and gets what merging every window in memory got.

The oracle is the report's old path, kept here: every window read into memory (``read_logs``), each figure a
fresh exact merge of the windows it covers (``merge``, ``window_percentiles``). The run has three load
processes whose windows start a quarter and a half second apart (seconds round half to even), open-model
tags, two ops, gaps, load steps, a healed and an unhealed fault, an empty window, a foreign layout and a
count beyond 32 bits.
"""

from __future__ import annotations

import io
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from harness.core.errors import HistoryError
from harness.core.runfolder import RunFolder
from harness.metrics import merge, new_histogram, percentiles, read_logs, window_histogram, window_percentiles
from harness.metrics.hdr import PackedCounts, decode_counts
from harness.metrics.logs import LogInterval, UnorderedLog, line_batches, merged_lines
from harness.metrics.tags import OUTCOMES, Tag
from harness.report import plots
from harness.report.data import (
    RunData,
    distribution,
    fault_rows,
    load_run,
    spans,
    step_rows,
    summary_rows,
)
from harness.report.figures import accumulate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run-v1"
T0 = 1795784678.0


class InMemory(RunData):
    """The report's figures as they were computed before streaming: from every window, held in memory."""

    def _windows_of(self, op: str | None, outcome: str, measure: str, since: float | None,
                    until: float | None) -> list[LogInterval]:
        out = []
        for i in self.intervals:
            o, oc, m = Tag.parse(i.tag)
            t = i.start - self.start
            if (op is None or o == op) and oc == outcome and m == measure and (since is None or t >= since) \
                    and (until is None or t < until):
                out.append(i)
        return out

    def histogram(self, *, op: str | None = None, outcome: str = "ok", measure: str = "service",
                  since: float | None = None, until: float | None = None) -> Any:
        return merge(self._windows_of(op, outcome, measure, since, until))

    def windows(self) -> pd.DataFrame:
        groups: dict[tuple[int, str], list[LogInterval]] = defaultdict(list)
        for i in self.intervals:
            groups[(round(i.start - self.start), i.tag)].append(i)
        rows = []
        for (t, tag), ivs in sorted(groups.items()):
            count, pcts = window_percentiles(ivs)
            op, outcome, measure = Tag.parse(tag)
            rows.append({"t": t, "op": op, "outcome": outcome, "measure": measure, "count": count, **pcts})
        cols = ["t", "op", "outcome", "measure", "count", "p50", "p90", "p99", "p99.9", "max"]
        return pd.DataFrame(rows, columns=cols)

    def ops(self) -> list[str]:
        return sorted({Tag.parse(i.tag).op for i in self.intervals})

    @property
    def open_model(self) -> bool:
        return any(Tag.parse(i.tag).measure == "intended" for i in self.intervals)

    def duration(self) -> float:
        return max(i.start + i.length for i in self.intervals) - self.start if self.intervals else 0.0


def old_fault_rows(data: InMemory) -> list[dict[str, Any]]:
    """fault_rows as it was: an unhealed fault's window ends where the run's last window does."""
    rows = []
    for f in data.faults:
        a = f["start"] - data.start
        b = (f["end"] - data.start) if f["end"] is not None else data.duration()
        counts = {oc: data.histogram(outcome=oc, since=float(int(a)), until=b).get_total_count() for oc in OUTCOMES}
        p99 = percentiles(data.histogram(since=float(int(a)), until=b))["p99"]
        rows.append({"fault": f["action"], "server": f["server"], "from_s": round(a, 2), "to_s": round(b, 2),
                     "healed": f["end"] is not None, **counts, "p99_ok_ms": p99})
    return rows


def in_memory(path: Path) -> InMemory:
    new = load_run(path)
    intervals = read_logs(new.folder.latency_logs())
    return InMemory(folder=new.folder, run=new.run, verdict=new.verdict, scenario=new.scenario,
                    start=min(i.start for i in intervals), intervals=intervals, faults=new.faults)


def _encoded(rng: np.random.Generator, n: int, median_us: float) -> str:
    return window_histogram(np.exp(rng.normal(np.log(median_us), 1.2, n)).astype(np.int64) + 1).encode().decode()


def _foreign() -> str:
    h = HdrHistogram(1, 10**7, 2)  # another layout: re-recorded into ours
    for v in (5, 500, 50_000, 5_000_000):
        h.record_value(v, 3)
    return h.encode().decode()


def _huge() -> str:
    h = new_histogram()
    h.record_value(1700, 2**40)  # a count beyond 32 bits
    h.record_value(90)
    return h.encode().decode()


def log_lines(rng: np.random.Generator, w: int, seconds: int) -> list[str]:
    lines = ["#[counterbench latency histograms, values in microseconds]",
             f"#[StartTime: {T0 + w * 0.25:.3f} (seconds since epoch)]",
             '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"']
    for s in range(seconds):
        if (s + w) % 7 == 3:  # a second this process recorded nothing
            continue
        tags = {"increment.ok": _encoded(rng, 400, 900), "increment.ok.intended": _encoded(rng, 400, 1500),
                "increment.late": _encoded(rng, 30, 200)}
        if s % 3 == w % 3:
            tags["increment.fail"] = _encoded(rng, 5, 50)
        if s % 5 == 1:
            tags["decrement-if-positive.ok"] = _encoded(rng, 60, 2000)
        if s == 17 and w == 1:
            tags["increment.indeterminate"] = _encoded(rng, 3, 5_000_000)
            tags["increment.ok"] = new_histogram().encode().decode()  # an empty window
        if s == 9 and w == 2:
            tags["increment.ok"] = _foreign()
        if s == 12 and w == 0:
            tags["increment.ok"] = _huge()
        for tag, enc in tags.items():
            lines.append(f"Tag={tag},{s:.3f},1.000,1.000,{enc}")
    return lines


def streamed_run(tmp_path: Path, *, processes: int = 3, seconds: int = 31) -> Path:
    """The fixture run with load steps (open model, an SLO), two faults and ``processes`` processes' logs."""
    shutil.copytree(FIXTURE, tmp_path / "run")
    folder = RunFolder(tmp_path / "run")
    run = json.loads(folder.run_json.read_text())
    run["scenario"]["load"] = {"users": 16, "spawn_rate": 16, "duration": 30, "drain": 2,
                               "steps": [{"duration": 10, "rate": 100}, {"duration": 12, "rate": 200},
                                         {"duration": 8, "rate": 400}]}
    run["scenario"]["slo"] = {"p99_ms": 40, "max_error_rate": 0.5}
    run["scenario"]["faults"] = [{"at": 4.6, "action": "pause", "duration": 3.3}, {"at": 20.2, "action": "kill"}]
    folder.run_json.write_text(json.dumps(run))
    events = [{"event": "begin", "fault": 0, "action": "pause", "t": 4.62},
              {"event": "end", "fault": 0, "action": "pause", "t": 7.93},
              {"event": "begin", "fault": 1, "action": "kill", "t": 20.21}]  # never healed
    folder.faults_jsonl.write_text("".join(
        json.dumps({"schema_version": 2, "server": "target", **e, "time": T0 + e["t"]}) + "\n" for e in events))
    metrics = folder.path / "metrics"
    for old in metrics.glob("*.hlog"):
        old.unlink()
    rng = np.random.default_rng(23)
    for w in range(processes):
        (metrics / f"w{w}.hlog").write_text("\n".join(log_lines(rng, w, seconds)) + "\n")
    return folder.path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return streamed_run(tmp_path)


def _same_figures(new: RunData, old: InMemory) -> None:
    assert new.start == old.start and new.duration() == old.duration()
    assert new.ops() == old.ops() == ["decrement-if-positive", "increment"] and new.open_model
    pd.testing.assert_frame_equal(new.windows(), old.windows())
    assert summary_rows(new) == summary_rows(old)
    steps = step_rows(new)
    assert steps == step_rows(old) and len(steps) == 3
    assert fault_rows(new) == old_fault_rows(old)
    assert [r["healed"] for r in fault_rows(new)] == [True, False]
    for measure in ("service", "intended"):
        assert distribution(new, measure) == distribution(old, measure)
    for op in (None, *old.ops()):
        for tag in ({"outcome": oc} for oc in OUTCOMES):
            a, b = new.histogram(op=op, **tag), old.histogram(op=op, **tag)
            assert a.get_total_count() == b.get_total_count()
            assert np.array_equal(a.counts, b.counts)


def test_streamed_figures_are_the_in_memory_merges(run_dir):
    new, old = load_run(run_dir), in_memory(run_dir)
    assert new.intervals == []  # nothing per window kept
    _same_figures(new, old)
    frame = new.windows()
    assert frame["count"].max() > 2**40 and (frame["count"] == 0).any()  # the huge and the empty windows
    assert set(frame["t"]) == set(range(31))  # the last window, 30.5 s in, rounds to 30 (half to even)


def test_seconds_that_straddle_batches(run_dir):
    """Batches end anywhere (here every few windows): a second's windows still merge into one row."""
    old = in_memory(run_dir)
    logs = RunFolder(run_dir).latency_logs()
    small = accumulate(line_batches(merged_lines(logs), capacity=0), start=old.start,
                       spans=spans(old.scenario, old.faults, old.start))
    new = RunData(folder=old.folder, run=old.run, verdict=None, scenario=old.scenario, start=old.start,
                  faults=old.faults, figures=small)
    _same_figures(new, old)


def test_windows_held_in_memory_give_the_same_figures(run_dir):
    """harness.export hands RunData its windows (in file order, not time order)."""
    old = in_memory(run_dir)
    held = RunData(folder=old.folder, run=old.run, verdict=None, scenario=old.scenario, start=old.start,
                   intervals=old.intervals, faults=old.faults)
    _same_figures(held, old)


def test_a_log_out_of_time_order_is_sorted_in_memory(run_dir):
    log = Path(run_dir) / "metrics" / "w1.hlog"
    lines = log.read_text().splitlines()
    lines[5], lines[40] = lines[40], lines[5]
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(UnorderedLog, match=r"w1\.hlog:7: a window starts before the one above it"):
        list(merged_lines(RunFolder(run_dir).latency_logs()))
    _same_figures(load_run(run_dir), in_memory(run_dir))


def test_one_process_and_no_logs(tmp_path):
    one = streamed_run(tmp_path / "one", processes=1)
    _same_figures(load_run(one), in_memory(one))
    shutil.copytree(FIXTURE, tmp_path / "none")
    for log in (tmp_path / "none" / "metrics").glob("*.hlog"):
        log.unlink()
    data = load_run(tmp_path / "none")
    assert data.duration() == 0.0 and data.ops() == [] and data.histogram().get_total_count() == 0
    assert data.windows().empty and list(data.windows().columns)[:2] == ["t", "op"]
    assert data.start == json.loads((tmp_path / "none" / "run.json").read_text())["started_at"]


def test_a_broken_window_names_its_line(run_dir):
    log = Path(run_dir) / "metrics" / "w0.hlog"
    lines = log.read_text().splitlines()
    lines[7] = lines[7].rsplit(",", 1)[0] + ",bm90IGEgaGlzdG9ncmFt"
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(HistoryError, match=r"w0\.hlog:8: not an interval-log line"):
        load_run(run_dir)


def test_only_accumulated_spans_can_be_asked_for(run_dir):
    with pytest.raises(ValueError, match="not accumulated"):
        load_run(run_dir).histogram(since=1.0, until=2.0)


def test_packed_counts_are_each_windows_decoded_counts():
    rng = np.random.default_rng(5)
    windows = [_encoded(rng, n, m) for n, m in ((3000, 800), (1, 3_000_000_000), (50, 20))]
    windows += [new_histogram().encode().decode(), _foreign(), _huge()]
    packed = PackedCounts()
    for w in windows:
        packed.add(w)
    first, slot, base, count = packed.take()
    for w, enc in enumerate(windows):
        want_index, want_count = decode_counts(enc)
        assert (slot[first[w]:first[w + 1]] - base[w]).tolist() == want_index.tolist()
        assert count[first[w]:first[w + 1]].tolist() == want_count.tolist()
    with pytest.raises(ValueError):
        packed.add("HISTFAAAAFl4nJNpmSzMwMDuxwABzFCaEURcm7yE")
    assert len(packed) == 0 and not packed.take()[1].size  # a failed window leaves nothing behind
    assert not packed._buf.any()  # and the buffer is empty again


def _png(draw: Any) -> bytes:
    fig, ax = plots.new_figure()
    draw(ax)
    buf = io.BytesIO()
    fig.savefig(buf)
    plots.plt.close(fig)
    return buf.getvalue()


@pytest.mark.parametrize("shape", ["day", "gaps", "negative", "short"])
def test_filled_stairs_draw_as_stairs_do(shape):
    rng = np.random.default_rng(1)
    n = {"day": 3000, "gaps": 500, "negative": 400, "short": 3}[shape]
    layers = [rng.integers(0, 5000, n), rng.integers(0, 30, n) * (rng.random(n) < 0.2)]
    if shape == "gaps":
        layers[0][100:200] = 0
    edges = list(range(7, 7 + n + 1)) if shape != "negative" else list(range(-50, n - 50 + 1))

    def draw(fast: bool) -> Any:
        def on(ax: Any) -> None:
            bottom = None
            for values, color in zip(layers, ("#2a9d8f", "#e9c46a"), strict=True):
                top = values if bottom is None else bottom + values
                base = 0 if bottom is None else bottom
                if fast:
                    plots.filled_stairs(ax, top, edges, baseline=base, color=color, label=color)
                else:
                    ax.stairs(top, edges, baseline=base, fill=True, color=color, label=color)
                bottom = top
            ax.legend()
        return on

    assert _png(draw(True)) == _png(draw(False))
