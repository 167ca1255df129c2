"""`counterbench report RUN_DIR`: summary.csv, plots and report.html of one run."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes

from harness.cost import Cost, Prices, load_prices, run_cost
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
from harness.report.lost import LostIncrements, describe, lost_increments
from harness.report.lost import table as lost_table
from harness.report.summary import (
    detection_sentence,
    fault_line,
    finding,
    planned_fault_rows,
    shown_totals,
    stopped_line,
    unexplained_line,
)
from harness.report.summary import resolution_line as _resolution_line


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
    return [(s.start, s.end, f"step {s.index + 1}") for s in data.scenario.load.timeline()] + fault_spans(data)


@dataclass(frozen=True, kw_only=True)
class Plot:
    """One plot of the report: drawn by a pure ``plots.plot_*`` function on the run's figures."""

    file: str
    heading: str
    draw: Callable[[Facts, Axes], None]
    over_time: bool = True  # shade the load steps and fault windows
    when: Callable[[Facts], bool] = lambda _f: True


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What plots draw from: the run, its per-second windows, its capacity steps, its lost increments."""

    data: RunData
    frame: pd.DataFrame
    steps: list[dict[str, Any]]
    lost: LostIncrements | None = None

    @property
    def name(self) -> str:
        return self.data.scenario.name


def _distributions(f: Facts) -> dict[str, list[tuple[float, float]]]:
    series = {"service time": distribution(f.data)}
    if f.data.open_model:
        series["from intended send time"] = distribution(f.data, "intended")
    return series


# The report's plots, in order: a new plot is a ``plot_*`` function in plots.py and one row here.
PLOTS: tuple[Plot, ...] = (
    Plot(file="latency_over_time.png", heading="Latency percentiles over time",
           draw=lambda f, ax: plots.plot_percentiles_over_time(
               f.frame, ax, title=f"{f.name}: latency of acknowledged ops per second")),
    Plot(file="corrected_latency_over_time.png", heading="Corrected latency over time",
           draw=lambda f, ax: plots.plot_percentiles_over_time(
               f.frame, ax, measure="intended", title=f"{f.name}: latency from the intended send time (corrected)"),
           when=lambda f: f.data.open_model),
    Plot(file="latency_distribution.png", heading="Latency distribution", over_time=False,
           draw=lambda f, ax: plots.plot_percentile_distribution(
               _distributions(f), ax, title=f"{f.name}: latency by percentile (acknowledged ops)")),
    Plot(file="throughput.png", heading="Throughput and outcomes",
           draw=lambda f, ax: plots.plot_throughput(
               f.frame, ax, title=f"{f.name}: completed ops per second by outcome")),
    Plot(file="capacity.png", heading="Latency against throughput", over_time=False,
           draw=lambda f, ax: plots.plot_latency_vs_throughput(
               f.steps, ax, title=f"{f.name}: latency against throughput per step",
               slo_p99=f.data.scenario.slo.p99_ms if f.data.scenario.slo else None),
           when=lambda f: bool(f.steps)),
    Plot(file="lost_increments.png", heading="Lost increments",
         draw=lambda f, ax: plots.plot_lost_increments(f.lost, ax, title=f"{f.name}: acknowledged values over time"),
         when=lambda f: f.lost is not None and len(f.lost.lost_t) > 0),
)


def _lost(data: RunData) -> LostIncrements | None:
    """A counter's lost increments, when the verdict found some and the history can name them: one key,
    unit increments returning the value after."""
    v = data.verdict or {}
    spec = data.scenario.workload.spec
    keys = data.run.get("keys") or []
    if not (v.get("totals") or {}).get("lost") or len(keys) != 1 or data.scenario.returns != "after" \
            or not spec.fixed_amount or spec.op != "incr":
        return None
    final = (data.folder.state().final or {}).get(keys[0])
    if final is None:
        return None
    return lost_increments(data.folder, key=keys[0], final=final, start_wall=data.start)


def build_report(run_dir: Path, *, prices: Prices | None = None) -> Path:
    """Write every report file into the run folder; returns the path of report.html. ``prices``: for the
    cost per million acknowledged increments (default: the shipped table)."""
    data = load_run(run_dir)
    folder = data.folder
    frame = data.windows()
    frame.to_csv(folder.windows_csv, index=False)
    summary = summary_rows(data)
    write_csv(folder.summary_csv, summary)
    steps = step_rows(data) if data.scenario.load.steps else []
    best = knee(steps) if data.scenario.slo else None
    if steps:
        write_csv(folder.steps_csv, steps)
    facts = Facts(data=data, frame=frame, steps=steps, lost=_lost(data))
    spend = run_cost(folder, prices=prices or load_prices(), knee_ok_per_s=best["ok_per_s"] if best else None)
    images: list[tuple[str, Path]] = []
    for plot in PLOTS:
        if not plot.when(facts):
            continue
        fig, ax = plots.new_figure()
        plot.draw(facts, ax)
        if plot.over_time:
            plots.shade(ax, _step_spans(data))
        plots.save(fig, folder.path / plot.file)
        images.append((plot.heading, folder.path / plot.file))
    folder.report_html.write_text(_html(data, summary, steps, best, images, facts.lost, spend), encoding="utf-8")
    return folder.report_html


def _cost(spend: Cost) -> list[str]:
    """What the run's increments would cost at list prices, and the sentence that says how."""
    head = "not priced" if spend.usd_per_million is None else f"${spend.usd_per_million:,.4g}"
    return ["<h2>Cost per million acknowledged increments</h2>",
            f"<p><b>{h.esc(head)}</b>: {h.esc(spend.basis)}</p>",
            h.table([{"price": line.price_id, "unit": line.unit, "units per increment": line.units_per_increment,
                      "$ per million increments": line.usd_per_million} for line in spend.lines])
            if spend.lines else ""]


def _faults(data: RunData, v: dict[str, Any]) -> list[str]:
    """Each planned fault, when it opened and healed or why it did not; each window with the ops in it."""
    planned, windows = planned_fault_rows(v), fault_rows(data)
    if not planned and not windows:
        return []
    out = ["<h2>Faults</h2>"]
    if planned:
        out += ["<p>Each planned fault: when it opened and healed (seconds since the load started), or why it "
                "did not. A run whose planned faults did not all happen cannot pass.</p>", h.table(planned),
                *(f'<div class="warn"><b>{h.esc(fault_line(f))}</b></div>' for f in v["faults"] if f.get("why"))]
    elif "faults" not in v:  # a verdict written before faults were judged: what the run noted of them
        out += [f'<div class="warn">fault not applied: {h.esc(e)}</div>' for e in data.run.get("fault_errors") or []]
    if windows:
        out += ["<p>Each window (shaded in the plots) and the ops completed during it.</p>", h.table(windows)]
    return out


def _witnesses(data: RunData, v: dict[str, Any]) -> list[str]:
    """Each violation's witness: its sentence, its ops as a small table and on a timeline."""
    out = []
    for n, c in enumerate(c for c in v.get("checks", []) if c["valid"] is False and c["evidence"].get("witness")):
        ops = c["evidence"]["witness"]
        fig, ax = plots.new_figure(9, 1.2 + 0.55 * len(ops))
        plots.plot_witness(ops, ax, title=f"{c['name']}: the ops that prove it")
        path = data.folder.path / f"witness_{n + 1}.png"
        plots.save(fig, path)
        out += [f"<h3>Witness: {h.esc(c['name'])} ({h.esc(c['key'])})</h3>", f"<p>{h.esc(finding(c))}</p>",
                h.table([{"op": o["op"], "process": o["process"], "kind": o["kind"], "value": o.get("value"),
                          "sent (s)": o["invoked_s"], "answered (s)": o.get("completed_s")} for o in ops]),
                h.image(path, f"witness of {c['name']}")]
    return out


def _result(c: dict[str, Any], v: dict[str, Any]) -> str:
    """A check's result as the table says it: a check that holds over no acknowledged op holds of nothing."""
    if c["valid"] is True and not (v.get("totals") or {}).get("ok"):
        return "holds, of nothing: no op was acknowledged"
    return {True: "holds", False: "VIOLATED", None: "undecided"}[c["valid"]]


def _online(v: dict[str, Any]) -> list[str]:
    """What the online checks proved while the load ran (the checks after it are the verdict)."""
    online = v.get("online") or {}
    found = online.get("violations") or []
    if not found:
        return []
    counts = ", ".join(f"{check} {n:,}" for check, n in (online.get("counts") or {}).items())
    return ["<h2>Violations found while the load ran</h2>",
            f"<p>The online checks ({h.esc(', '.join(online.get('checks') or []))}) counted {h.esc(counts)}; "
            "the first of each check and key:</p>",
            h.table([{"at s": f["after_s"], "check": f["check"], "key": f["key"], "finding": f["sentence"]}
                     for f in found])]


def _reasons(v: dict[str, Any]) -> list[str]:
    """Why ops failed or stayed indeterminate, first: a contract that cannot read its answers shows here."""
    rows = [{"outcome": outcome, "ops": r["ops"], "reason": r["reason"],
             "sample answer": r["sample"] if r.get("sample") and r["sample"] != r["reason"] else ""}
            for outcome in ("indeterminate", "fail") for r in (v.get("reasons") or {}).get(outcome, [])]
    if not rows:
        return []
    return ["<h2>Why ops failed or stayed indeterminate</h2>", h.table(rows)]


def _html(data: RunData, summary: list[dict[str, Any]], steps: list[dict[str, Any]], best: dict[str, Any] | None,
          images: list[tuple[str, Path]], lost: LostIncrements | None = None, spend: Cost | None = None) -> str:
    v = data.verdict or {"verdict": "unknown", "reason": "verdict.json is missing: run `counterbench check`",
                         "totals": {}, "checks": []}
    sections = [
        f"<h1>{h.esc(data.scenario.name)} {h.badge(v['verdict'])}</h1>",
        f"<p><b>{h.esc(v['reason'])}</b> (expected: {h.esc(v.get('expected', 'pass'))})</p>",
        f"<p>{h.esc(data.scenario.description)}</p>",
        *([f'<div class="warn"><b>{h.esc(stopped_line(v["stopped"]))}</b></div>'] if v.get("stopped") else []),
        *_online(v),
        *_reasons(v),
        *(f'<div class="warn"><b>{h.esc(d["finding"])}</b>'
          + (f'; its log ends:<pre>{h.esc(d["log_tail"])}</pre>' if d["log_tail"] else "") + "</div>"
          for d in data.run.get("servers_died") or []),
        "<h2>Totals</h2>", h.table([shown_totals(v)]),
        *([f"<p>{h.esc(extra)}</p>"] if (extra := unexplained_line(v)) else []),
        *([f"<p>{h.esc(power)}</p>"] if (power := detection_sentence(v.get("detection"))) else []),
        "<h2>Checks</h2>",
        h.table([{"check": c["name"], "key": c["key"],
                  "result": _result(c, v),
                  "what it found": finding(c)} for c in v.get("checks", [])]),
        *_witnesses(data, v),
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
    sections += _faults(data, v)
    if lost is not None and len(lost.lost_t):
        windows = fault_spans(data)
        sections += ["<h2>Lost increments</h2>", *(f"<p>{h.esc(line)}</p>" for line in describe(lost, windows)),
                     "<p>The first and last of them, with when each was acknowledged"
                     + (" against each fault:</p>" if windows else ":</p>"),
                     h.table(lost_table(lost, windows))]
    if spend is not None:
        sections += _cost(spend)
    resolution = _resolution_line(v)
    if resolution:
        sections += ["<h2>Uncertain ops resolved</h2>", f"<p>{h.esc(resolution)}</p>"]
    sections += [f"<h3>{h.esc(title)}</h3>{h.image(p, title)}" for title, p in images]
    env = data.run.get("environment", {})
    sections += ["<h2>Scenario</h2>", h.pre_json(data.run["scenario"]),
                 "<h2>Environment</h2>", h.table([env]) if env else "<p>(not recorded)</p>",
                 f"<p>Run {h.esc(data.run['run_id'])}, target {h.esc(data.run['target'])}.</p>"]
    return h.page(f"counterbench: {data.scenario.name}", sections)
