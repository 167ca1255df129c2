"""A run folder's latency logs as exact per-second and per-run figures, read in one streaming pass."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config.scenario import Scenario
from harness.core.runfolder import RunFolder
from harness.metrics import LogInterval, MergedHistogram, percentile_distribution, percentiles
from harness.metrics.logs import UnorderedLog, interval_batches, line_batches, merged_lines, read_logs
from harness.metrics.tags import OUTCOMES, Tag
from harness.report.figures import LatencyFigures, Span, accumulate


@dataclass(eq=False)
class RunData:
    folder: RunFolder
    run: dict[str, Any]
    verdict: dict[str, Any] | None
    scenario: Scenario
    start: float  # wall clock of the earliest log
    # windows already in memory (``harness.export``); ``load_run`` streams the logs into ``figures`` instead
    intervals: list[LogInterval] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)  # wall-clock windows from faults.jsonl
    figures: LatencyFigures | None = None

    @property
    def label(self) -> str:
        t = self.run["target"]
        variant = t.get("variant", "atomic")  # None: a service counterbench did not start (its code, its own)
        return f"{self.scenario.name} ({t['kind']}" + (f", {variant})" if variant else ", its own service)")

    @cached_property
    def _figures(self) -> LatencyFigures:
        if self.figures is not None:
            return self.figures
        return accumulate(interval_batches(sorted(self.intervals, key=lambda i: i.start)), start=self.start,
                          spans=spans(self.scenario, self.faults, self.start))

    def histogram(self, *, op: str | None = None, outcome: str = "ok", measure: str = "service",
                  since: float | None = None, until: float | None = None) -> MergedHistogram:
        """Exact merge of every matching window: over the run, or (times in seconds since ``start``) over a
        load step's or fault window's span (``spans``), the only ones accumulated."""
        span: Any = None if since is None and until is None else (since, until)
        return self._figures.histogram(
            lambda t: (op is None or t.op == op) and t.outcome == outcome and t.measure == measure, span)

    def windows(self) -> pd.DataFrame:
        """One row per (second, tag): count and percentiles in ms, merged across workers."""
        return self._figures.frame()

    def ops(self) -> list[str]:
        return sorted({Tag.parse(t).op for t in self._figures.tags})

    @property
    def open_model(self) -> bool:
        return any(Tag.parse(t).measure == "intended" for t in self._figures.tags)

    def duration(self) -> float:
        end = self._figures.end
        return 0.0 if end == -math.inf else end - self.start


def fault_span(f: dict[str, Any], start: float) -> Span:
    """A fault window's span, in seconds since ``start``: from the whole second it began in to its end (an
    unhealed fault lasts to the end of the run)."""
    return float(int(f["start"] - start)), (f["end"] - start) if f["end"] is not None else math.inf


def spans(scenario: Scenario, faults: list[dict[str, Any]], start: float) -> list[Span]:
    """Every span the report merges windows over: each load step, each fault window."""
    return [(s.start, s.end) for s in scenario.load.timeline()] + [fault_span(f, start) for f in faults]


def load_run(path: Path) -> RunData:
    """The run folder with its latency logs' figures: the logs merged by time and folded as read, so
    memory holds a batch of windows, the per-second rows and a few merged histograms, however long the run."""
    folder = RunFolder(path)
    run = folder.read(folder.run_json)
    verdict = folder.read(folder.verdict_json) if folder.verdict_json.exists() else None
    scenario = folder.scenario()
    faults = fault_windows(folder.fault_events() or [])
    logs = folder.latency_logs()
    try:
        windows = merged_lines(logs)
        first = next(windows, None)  # the earliest window: every log is in time order
        start = first.start if first is not None else float(run.get("started_at", 0.0))
        lines = itertools.chain([first], windows) if first is not None else iter(())
        # decoded by a second thread a batch or two ahead of the fold: 1.5x faster on two idle cores
        figures = accumulate(line_batches(lines, thread=True), start=start, spans=spans(scenario, faults, start))
    except UnorderedLog:  # not written by LatencyRecorder: sorted in memory
        intervals = sorted(read_logs(logs), key=lambda i: i.start)
        start = intervals[0].start if intervals else float(run.get("started_at", 0.0))
        figures = accumulate(interval_batches(intervals), start=start, spans=spans(scenario, faults, start))
    return RunData(folder=folder, run=run, verdict=verdict, scenario=scenario, start=start, faults=faults,
                   figures=figures)


def fault_windows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fault windows from faults.jsonl's events: action, server, start and end (wall clock; end None if
    never healed)."""
    windows: list[dict[str, Any]] = []
    for rec in events:
        if rec["event"] == "begin":
            windows.append({"fault": rec.get("fault"), "action": rec["action"], "server": rec["server"],
                            "start": rec["time"], "end": None})
        elif rec["event"] == "end":
            for w in windows:  # version 1 names no fault: the first open window of its action and server
                same = w["fault"] == rec["fault"] if rec.get("fault") is not None else \
                    (w["action"], w["server"]) == (rec["action"], rec["server"])
                if same and w["end"] is None:
                    w["end"] = rec["time"]
                    break
    return windows


def fault_rows(data: RunData) -> list[dict[str, Any]]:
    """Each fault window, and the ops completed during it by outcome (whole 1 s windows)."""
    rows = []
    end_of_run = data.duration()
    for f in data.faults:
        a = f["start"] - data.start
        b = (f["end"] - data.start) if f["end"] is not None else end_of_run
        since, until = fault_span(f, data.start)
        counts = {oc: data.histogram(outcome=oc, since=since, until=until).get_total_count() for oc in OUTCOMES}
        p99 = percentiles(data.histogram(since=since, until=until))["p99"]
        rows.append({"fault": f["action"], "server": f["server"], "from_s": round(a, 2), "to_s": round(b, 2),
                     "healed": f["end"] is not None, **counts, "p99_ok_ms": p99})
    return rows


def fault_spans(data: RunData) -> list[tuple[float, float, str]]:
    end_of_run = data.duration()
    return [(f["start"] - data.start, (f["end"] - data.start) if f["end"] else end_of_run, f["action"])
            for f in data.faults]


def summary_rows(data: RunData) -> list[dict[str, Any]]:
    """summary.csv: one row per target/op; latency of acknowledged ops (ms)."""
    rows = []
    secs = max(data.duration(), 1e-9)
    for op in data.ops():
        counts = {oc: data.histogram(op=op, outcome=oc).get_total_count() for oc in OUTCOMES}
        total = sum(counts.values())
        row: dict[str, Any] = {"target": data.run["target"]["kind"], "variant": data.run["target"].get("variant"),
                               "op": op, "count": total, **counts, "ops_per_s": round(total / secs, 1),
                               "ok_per_s": round(counts["ok"] / secs, 1)}
        row.update({k: v for k, v in percentiles(data.histogram(op=op)).items()})
        if data.open_model:
            corrected = percentiles(data.histogram(op=op, measure="intended"))
            row.update({f"corrected_{k}": v for k, v in corrected.items()})
            row["late"] = data.histogram(op=op, outcome="late", measure="late").get_total_count()
        rows.append(row)
    return rows


def distribution(data: RunData, measure: str = "service") -> list[tuple[float, float]]:
    return percentile_distribution(data.histogram(measure=measure))


def step_rows(data: RunData) -> list[dict[str, Any]]:
    """Capacity planning: per load step, throughput, latency, error rate and whether it meets the SLO."""
    load, slo = data.scenario.load, data.scenario.slo
    rows = []
    measure = "intended" if data.open_model else "service"
    for span in load.timeline():
        step = span.step
        counts = {oc: data.histogram(outcome=oc, since=span.start, until=span.end).get_total_count()
                  for oc in OUTCOMES}
        total = sum(counts.values())
        lat = percentiles(data.histogram(measure=measure, since=span.start, until=span.end))
        error_rate = (counts["fail"] + counts["indeterminate"]) / total if total else None
        row: dict[str, Any] = {"step": span.index + 1, "users": step.users if step.users is not None else load.users,
                               "target_rate": step.rate, "ok_per_s": round(counts["ok"] / step.duration, 1),
                               "ops": total, "error_rate": error_rate, "p50": lat["p50"], "p99": lat["p99"]}
        row["meets_slo"] = meets(slo, row) if slo is not None else None
        rows.append(row)
    return rows


def meets(slo: Any, row: dict[str, Any]) -> bool:
    if row["ops"] == 0 or row["error_rate"] is None:
        return False
    if slo.p99_ms is not None and (row["p99"] is None or row["p99"] > slo.p99_ms):
        return False
    if slo.p50_ms is not None and (row["p50"] is None or row["p50"] > slo.p50_ms):
        return False
    return bool(row["error_rate"] <= slo.max_error_rate)


def knee(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The highest step that meets the SLO with every step below it meeting it too.

    A step that passes only after a lower one failed is noise, not capacity; None
    when the first step already misses the SLO.
    """
    best = None
    for r in rows:
        if not r.get("meets_slo"):
            break
        best = r
    return best
