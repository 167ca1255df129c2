"""`counterbench compare RUN_DIR...`: runs side by side, repeated runs as groups, differences judged.

Runs of one scenario form a group (``counterbench run --repeat N`` makes them): each group gets
the median of each figure across its runs with a 95% interval, and each pair of groups of one
workload a relative difference with its interval and a plain call (``harness.report.stats``).
Runs are comparable when they ran the same workload under the same load; when they did not,
the report says so first, because the comparison would mislead.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError
from harness.cost import Prices, load_prices, run_cost
from harness.metrics import percentiles
from harness.report import html as h
from harness.report import plots
from harness.report.build import write_csv
from harness.report.data import RunData, distribution, knee, load_run, step_rows
from harness.report.stats import METRICS, NOISE_BAND, Difference, Interval, difference, median_interval
from harness.report.summary import shown_totals

VERDICT_COLUMNS = ["scenario", "target", "variant", "workload", "verdict", "expected", "ok", "fail",
                   "indeterminate", "lost", "duplicated", "oversold"]
COLUMNS = ["scenario", "target", "variant", "users", "rate", "duration_s", "verdict", "ok_per_s", "p50", "p90",
           "p99", "p99.9", "max", "usd_per_M"]


def knee_ok_per_s(data: RunData) -> float | None:
    """The throughput of the highest load step meeting the SLO: what a node can take, for node prices."""
    if not (data.scenario.load.steps and data.scenario.slo):
        return None
    best = knee(step_rows(data))
    return float(best["ok_per_s"]) if best else None


def row(data: RunData, prices: Prices | None = None) -> dict[str, Any]:
    """A run's comparison row; with ``prices``, also its $ per million acknowledged increments and how."""
    v = data.verdict or {}
    t = shown_totals(v)
    load = data.scenario.load
    secs = max(data.duration(), 1e-9)
    ok = data.histogram()
    return {
        "run": data.folder.path.name, "scenario": data.scenario.name, "target": data.run["target"]["kind"],
        "variant": data.run["target"].get("variant"), "workload": data.scenario.workload.kind,
        "users": load.users, "rate": load.rate, "duration_s": load.duration,
        "verdict": v.get("verdict", "unknown"), "expected": data.scenario.expect,
        "ok": t.get("ok"), "fail": t.get("fail"), "indeterminate": t.get("indeterminate"),
        "lost": t.get("lost"), "duplicated": t.get("duplicated"), "oversold": t.get("oversold"),
        "ok_per_s": round(ok.get_total_count() / secs, 1), **percentiles(ok),
        **(run_cost(data.folder, prices=prices, knee_ok_per_s=knee_ok_per_s(data)).row() if prices else {}),
    }


def warnings(runs: list[RunData]) -> list[str]:
    """Differences that make a side-by-side misleading (within one workload: across workloads
    the runs are shown in separate groups)."""
    out = []
    for what, key in (("load (users, rate, duration)",
                       lambda d: (d.scenario.load.users, d.scenario.load.rate, d.scenario.load.duration,
                                  d.scenario.load.steps)),
                      ("host", lambda d: d.run.get("environment", {}).get("host")),
                      ("CPU count", lambda d: d.run.get("environment", {}).get("cpu_count"))):
        for workload, group in _by_workload(runs).items():
            values = {str(key(d)) for d in group}
            if len(values) > 1:
                out.append(f"{workload} runs differ in {what}: {', '.join(sorted(values))} -- "
                           "the comparison may mislead")
    return out


def _by_workload(runs: list[RunData]) -> dict[str, list[RunData]]:
    groups: dict[str, list[RunData]] = {}
    for d in runs:
        groups.setdefault(d.scenario.workload.kind, []).append(d)
    return groups


def groups(runs: list[RunData]) -> dict[str, list[RunData]]:
    """Runs of one scenario, in the order scenarios first appear."""
    out: dict[str, list[RunData]] = {}
    for d in runs:
        out.setdefault(d.scenario.name, []).append(d)
    return out


def group_row(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """comparison.csv's row of a group: each figure's median across runs and its interval."""
    first = rows[0]
    verdicts: dict[str, int] = {}
    for r in rows:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    out: dict[str, Any] = {"row": "group", "run": f"{len(rows)} runs", "scenario": name, "target": first["target"],
                           "variant": first["variant"], "workload": first["workload"], "runs": len(rows),
                           "verdict": ", ".join(f"{n} {v}" for v, n in verdicts.items())}
    for metric in METRICS:
        values = [float(r[metric]) for r in rows if r.get(metric) is not None]
        if not values:
            continue
        iv = median_interval(values)
        out.update({metric: iv.median, f"{metric}_lo": iv.lo, f"{metric}_hi": iv.hi,
                    f"{metric}_coverage": None if iv.coverage is None else round(iv.coverage, 4)})
    return out


def differences(rows: list[dict[str, Any]], *, band: float = NOISE_BAND) -> list[Difference]:
    """Every pair of groups of one workload, on each figure; each said from the better side."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_group.setdefault(r["scenario"], []).append(r)
    out = []
    names = list(by_group)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if by_group[a][0]["workload"] != by_group[b][0]["workload"]:
                continue
            for metric in METRICS:
                xa = [float(r[metric]) for r in by_group[a] if r.get(metric) is not None]
                xb = [float(r[metric]) for r in by_group[b] if r.get(metric) is not None]
                if not xa and not xb:  # a figure neither group has (no prices, say)
                    continue
                d = difference(a, xa, b, xb, metric=metric, band=band)
                out.append(difference(b, xb, a, xa, metric=metric, band=band) if d.call == "worse" else d)
    return out


def _figure(iv_row: dict[str, Any], metric: str) -> str:
    if metric not in iv_row:
        return "-"
    iv = Interval(n=iv_row["runs"], median=iv_row[metric], lo=iv_row[f"{metric}_lo"], hi=iv_row[f"{metric}_hi"],
                  coverage=iv_row[f"{metric}_coverage"])
    return iv.text("{:,.0f}" if metric == "ok_per_s" else "${:,.3g}" if metric == "usd_per_M" else "{:,.3g}")


def headlines(out: Path, metrics: tuple[str, ...] = ("ok_per_s", "p99")) -> list[str]:
    """The sentences of a written comparison's differences on the figures a terminal has room for."""
    path = out / "differences.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [d["sentence"] for d in csv.DictReader(f) if d["metric"] in metrics]


def compare(run_dirs: list[Path], out: Path, *, band: float = NOISE_BAND, prices: Prices | None = None) -> Path:
    """Write compare.html, comparison.csv and differences.csv into ``out``; prices default to the shipped table."""
    if not run_dirs:
        raise ConfigError("compare needs at least one run folder")
    if not 0 <= band < 0.5:
        raise ConfigError("--noise-band: a percentage from 0 to 50")
    runs = [load_run(p) for p in run_dirs]
    out.mkdir(parents=True, exist_ok=True)
    prices = prices or load_prices()
    rows = [row(d, prices) for d in runs]
    grouped = groups(runs)
    summaries = [group_row(name, [r for r in rows if r["scenario"] == name]) for name in grouped]
    diffs = differences(rows, band=band)
    by_name = {g["scenario"]: g for g in summaries}
    write_csv(out / "comparison.csv", [{"row": "run", **r} for r in rows] + summaries)
    write_csv(out / "differences.csv", [asdict(d) for d in diffs])
    figures: list[str] = []
    for workload, group in _by_workload(runs).items():
        labels: dict[str, RunData] = {}
        for d in group:
            labels[d.label if d.label not in labels else f"{d.label} [{d.folder.path.name}]"] = d
        fig, ax = plots.new_figure(10, 5)
        plots.plot_percentile_distribution({k: distribution(d) for k, d in labels.items()}, ax,
                                           title=f"{workload}: latency by percentile, acknowledged ops")
        plots.save(fig, out / f"compare_{workload}_latency_distribution.png")
        fig, ax = plots.new_figure(10, 4.5)
        plots.plot_throughput_lines({k: d.windows() for k, d in labels.items()}, ax,
                                    title=f"{workload}: acknowledged ops per second")
        plots.save(fig, out / f"compare_{workload}_throughput.png")
        figures += [f"<h2>{h.esc(workload)}: every run</h2>",
                    h.table([r for r in rows if r["workload"] == workload], COLUMNS),
                    h.image(out / f"compare_{workload}_latency_distribution.png", f"{workload} latency"),
                    h.image(out / f"compare_{workload}_throughput.png", f"{workload} throughput")]

    warns = warnings(runs)
    repeated = any(len(g) > 1 for g in grouped.values())
    sections = ["<h1>counterbench comparison</h1>",
                f"<p>{len(runs)} runs of {len(grouped)} scenarios, compared {time.strftime('%Y-%m-%d %H:%M:%S')}. "
                "Latency in ms (HdrHistogram, merged exactly across workers) of acknowledged ops; ok ops/s over "
                "each run's measured duration.</p>",
                *(f'<div class="warn">{h.esc(w)}</div>' for w in warns),
                # correctness first: a speed-up of a scenario that loses updates is no speed-up
                "<h2>Verdicts</h2>",
                h.table([{**r, "verdict": r["verdict"].upper()} for r in rows], VERDICT_COLUMNS),
                "<h2>Which is faster, and by how much</h2>",
                f"<p>Each pair of scenarios of one workload, on each figure across their runs: the relative "
                f"difference (Hodges-Lehmann) with its 95% interval (exact Mann-Whitney); a difference is called "
                f"only when the whole interval lies beyond the &plusmn;{band:.0%} noise band.</p>",
                h.table([{"workload": by_name[d.a]["workload"], "figure": METRICS[d.metric][0],
                          "finding": d.sentence, "A (median)": f"{d.a}: {_figure(by_name[d.a], d.metric)}",
                          "B (median)": f"{d.b}: {_figure(by_name[d.b], d.metric)}",
                          "verdicts": f"{by_name[d.a]['verdict']} / {by_name[d.b]['verdict']}"} for d in diffs])
                if diffs else "<p>(one scenario per workload: nothing to compare)</p>",
                "<h2>Each scenario across its runs</h2>",
                "<p>Median across runs and its 95% interval (order statistics; with fewer than 6 runs the "
                "widest interval, min to max, followed by the coverage it has)"
                + ("" if repeated else "; one run each: repeat them (<code>counterbench run --repeat 5</code>) "
                   "for intervals") + ".</p>",
                h.table([{"scenario": g["scenario"], "target": g["target"], "runs": g["runs"], "verdicts": g["verdict"],
                          **{METRICS[m][0]: _figure(g, m) for m in METRICS}} for g in summaries]),
                *figures,
                "<h2>Runs</h2>",
                h.table([{"run": d.folder.path.name, "folder": str(d.folder.path.resolve()),
                          "reason": (d.verdict or {}).get("reason", ""), "cost": r.get("cost_basis", "")}
                         for d, r in zip(runs, rows, strict=True)]),
                f"<p>Prices: {h.esc(prices.path)} (each row with its region, source and the date it was checked; "
                "<code>--prices FILE</code> for your own).</p>"]
    (out / "compare.html").write_text(h.page("counterbench comparison", sections), encoding="utf-8")
    return out / "compare.html"
