"""`counterbench report RUN_DIR`: summary.csv, plots and report.html of one run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from harness.report import html as h
from harness.report import plots
from harness.report.data import (
    RunData,
    distribution,
    fault_rows,
    fault_spans,
    knee,
    load_run,
    step_rows,
    summary_rows,
)
from harness.summary import shown_totals, unexplained_line


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def _step_spans(data: RunData) -> list[tuple[float, float, str]]:
    """Load steps and fault windows, to shade in the plots over time."""
    spans, t = [], 0.0
    for i, s in enumerate(data.scenario.load.steps):
        spans.append((t, t + s.duration, f"step {i + 1}"))
        t += s.duration
    return spans + fault_spans(data)


def build_report(run_dir: Path) -> Path:
    """Write every report file into the run folder; returns the path of report.html."""
    data = load_run(run_dir)
    out = data.folder.path
    frame = data.windows()
    frame.to_csv(out / "metrics" / "windows.csv" if (out / "metrics").is_dir() else out / "windows.csv",
                 index=False)
    summary = summary_rows(data)
    write_csv(out / "summary.csv", summary)
    name = data.scenario.name
    images: list[tuple[str, Path]] = []

    fig, ax = plots.new_figure()
    plots.plot_percentiles_over_time(frame, ax, title=f"{name}: latency of acknowledged ops per second")
    plots.shade(ax, _step_spans(data))
    plots.save(fig, out / "latency_over_time.png")
    images.append(("Latency percentiles over time", out / "latency_over_time.png"))

    if data.open_model:
        fig, ax = plots.new_figure()
        plots.plot_percentiles_over_time(frame, ax, measure="intended",
                                         title=f"{name}: latency from the intended send time (corrected)")
        plots.shade(ax, _step_spans(data))
        plots.save(fig, out / "corrected_latency_over_time.png")
        images.append(("Corrected latency over time", out / "corrected_latency_over_time.png"))

    fig, ax = plots.new_figure()
    series = {"service time": distribution(data)}
    if data.open_model:
        series["from intended send time"] = distribution(data, "intended")
    plots.plot_percentile_distribution(series, ax, title=f"{name}: latency by percentile (acknowledged ops)")
    plots.save(fig, out / "latency_distribution.png")
    images.append(("Latency distribution", out / "latency_distribution.png"))

    fig, ax = plots.new_figure()
    plots.plot_throughput(frame, ax, title=f"{name}: completed ops per second by outcome")
    plots.shade(ax, _step_spans(data))
    plots.save(fig, out / "throughput.png")
    images.append(("Throughput and outcomes", out / "throughput.png"))

    steps = step_rows(data) if data.scenario.load.steps else []
    best = knee(steps) if data.scenario.slo else None
    if steps:
        write_csv(out / "steps.csv", steps)
        fig, ax = plots.new_figure()
        slo = data.scenario.slo
        plots.plot_latency_vs_throughput(steps, ax, title=f"{name}: latency against throughput per step",
                                         slo_p99=slo.p99_ms if slo else None)
        plots.save(fig, out / "capacity.png")
        images.append(("Latency against throughput", out / "capacity.png"))

    (out / "report.html").write_text(_html(data, summary, steps, best, images), encoding="utf-8")
    return out / "report.html"


def _html(data: RunData, summary: list[dict[str, Any]], steps: list[dict[str, Any]], best: dict[str, Any] | None,
          images: list[tuple[str, Path]]) -> str:
    v = data.verdict or {"verdict": "unknown", "reason": "verdict.json is missing: run `counterbench check`",
                         "totals": {}, "checks": []}
    sections = [
        f"<h1>{h.esc(data.scenario.name)} {h.badge(v['verdict'])}</h1>",
        f"<p><b>{h.esc(v['reason'])}</b> (expected: {h.esc(v.get('expected', 'pass'))})</p>",
        f"<p>{h.esc(data.scenario.description)}</p>",
        "<h2>Totals</h2>", h.table([shown_totals(v)]),
        *([f"<p>{h.esc(extra)}</p>"] if (extra := unexplained_line(v)) else []),
        "<h2>Checks</h2>",
        h.table([{"check": c["name"], "key": c["key"],
                  "valid": {True: "valid", False: "INVALID", None: "unknown"}[c["valid"]],
                  "evidence": ", ".join(f"{k}={c['evidence'][k]}" for k in list(c["evidence"])[:12])}
                 for c in v.get("checks", [])]),
        *(['<div class="warn">The load generator was CPU-saturated: its latencies include its own '
           "queueing. Run with more --processes.</div>"] if (v.get("load_generator") or {}).get("saturated") else []),
        "<h2>Latency and throughput</h2>",
        "<p>Latency in milliseconds, recorded per op in HdrHistograms (3 significant digits) and merged "
        "exactly across workers; percentiles are of acknowledged ops.</p>",
        h.table(summary),
        "<h3>Load generator CPU (share of one core per 1 s window)</h3>",
        h.table((v.get("load_generator") or {}).get("workers", [])),
    ]
    if steps:
        slo = data.scenario.slo
        sections += ["<h2>Capacity</h2>", h.table(steps)]
        if slo is not None:
            sections.append(f"<p>SLO: {h.esc(slo.model_dump(exclude_none=True))}. "
                            + (f"<b>Highest step meeting it: step {best['step']}</b> ({best['ok_per_s']} ok ops/s)."
                               if best else "<b>No step meets it.</b>") + "</p>")
    faults = fault_rows(data)
    if faults:
        sections += ["<h2>Faults</h2>", "<p>Each scheduled fault's window (seconds since the load started, "
                     "shaded in the plots) and the ops completed during it.</p>", h.table(faults)]
        errors = data.run.get("fault_errors") or []
        sections += [f'<div class="warn">fault not applied: {h.esc(e)}</div>' for e in errors]
    sections += [f"<h3>{h.esc(title)}</h3>{h.image(p, title)}" for title, p in images]
    env = data.run.get("environment", {})
    sections += ["<h2>Scenario</h2>", h.pre_json(data.run["scenario"]),
                 "<h2>Environment</h2>", h.table([env]) if env else "<p>(not recorded)</p>",
                 f"<p>Run {h.esc(data.run['run_id'])}, target {h.esc(data.run['target'])}.</p>"]
    return h.page(f"counterbench: {data.scenario.name}", sections)
