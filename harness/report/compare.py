"""`counterbench compare RUN_DIR...`: several runs side by side (tables and overlaid plots).

Runs are comparable when they ran the same workload under the same load; when
they did not, the report says so first, because the comparison would mislead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.metrics import percentiles
from harness.report import html as h
from harness.report import plots
from harness.report.build import write_csv
from harness.report.data import RunData, distribution, load_run
from harness.report.summary import shown_totals

VERDICT_COLUMNS = ["scenario", "target", "variant", "workload", "verdict", "expected", "ok", "fail",
                   "indeterminate", "lost", "duplicated", "oversold"]
COLUMNS = ["scenario", "target", "variant", "users", "rate", "duration_s", "verdict", "ok_per_s", "p50", "p90",
           "p99", "p99.9", "max"]


def row(data: RunData) -> dict[str, Any]:
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


def compare(run_dirs: list[Path], out: Path) -> Path:
    if not run_dirs:
        raise ConfigError("compare needs at least one run folder")
    runs = [load_run(p) for p in run_dirs]
    out.mkdir(parents=True, exist_ok=True)
    rows = [row(d) for d in runs]
    write_csv(out / "comparison.csv", rows)
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
        figures += [f"<h2>{h.esc(workload)}</h2>",
                    h.table([r for r in rows if r["workload"] == workload], COLUMNS),
                    h.image(out / f"compare_{workload}_latency_distribution.png", f"{workload} latency"),
                    h.image(out / f"compare_{workload}_throughput.png", f"{workload} throughput")]

    warns = warnings(runs)
    sections = ["<h1>counterbench comparison</h1>",
                f"<p>{len(runs)} runs, compared {time.strftime('%Y-%m-%d %H:%M:%S')}. Latency in ms "
                "(HdrHistogram, merged exactly across workers) of acknowledged ops; ok_per_s over each run's "
                "measured duration. Runs are grouped by workload.</p>",
                *(f'<div class="warn">{h.esc(w)}</div>' for w in warns),
                "<h2>Verdicts</h2>",
                h.table([{**r, "verdict": r["verdict"].upper()} for r in rows], VERDICT_COLUMNS),
                *figures,
                "<h2>Runs</h2>",
                h.table([{"run": d.folder.path.name, "folder": str(d.folder.path.resolve()),
                          "reason": (d.verdict or {}).get("reason", "")} for d in runs])]
    (out / "compare.html").write_text(h.page("counterbench comparison", sections), encoding="utf-8")
    return out / "compare.html"
