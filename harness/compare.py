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


def row(data: RunData) -> dict[str, Any]:
    v = data.verdict or {}
    t = v.get("totals", {})
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
    out = []
    for what, key in (("workload", lambda d: d.scenario.workload.kind),
                      ("load (users, rate, duration)",
                       lambda d: (d.scenario.load.users, d.scenario.load.rate, d.scenario.load.duration,
                                  d.scenario.load.steps)),
                      ("host", lambda d: d.run.get("environment", {}).get("host")),
                      ("CPU count", lambda d: d.run.get("environment", {}).get("cpu_count"))):
        values = {str(key(d)) for d in runs}
        if len(values) > 1:
            out.append(f"runs differ in {what}: {', '.join(sorted(values))} -- the comparison may mislead")
    return out


def compare(run_dirs: list[Path], out: Path) -> Path:
    if not run_dirs:
        raise ConfigError("compare needs at least one run folder")
    runs = [load_run(p) for p in run_dirs]
    out.mkdir(parents=True, exist_ok=True)
    rows = [row(d) for d in runs]
    write_csv(out / "comparison.csv", rows)
    labels = {}
    for d in runs:
        label = d.label
        labels[label if label not in labels else f"{label} [{d.folder.path.name}]"] = d

    fig, ax = plots.new_figure(10, 5)
    plots.plot_percentile_distribution({k: distribution(d) for k, d in labels.items()}, ax,
                                       title="latency by percentile, acknowledged ops (service time)")
    plots.save(fig, out / "compare_latency_distribution.png")
    fig, ax = plots.new_figure(10, 4.5)
    plots.plot_throughput_lines({k: d.windows() for k, d in labels.items()}, ax,
                                title="acknowledged ops per second")
    plots.save(fig, out / "compare_throughput.png")

    warns = warnings(runs)
    sections = ["<h1>counterbench comparison</h1>",
                f"<p>{len(runs)} runs, compared {time.strftime('%Y-%m-%d %H:%M:%S')}.</p>",
                *(f'<div class="warn">{h.esc(w)}</div>' for w in warns),
                "<h2>Verdicts and latency</h2>",
                h.table([{**r, "verdict": r["verdict"].upper()} for r in rows]),
                "<p>Latency in ms (HdrHistogram, exact merge across workers) of acknowledged ops; ok_per_s over "
                "the run's measured duration.</p>",
                "<h3>Latency by percentile</h3>", h.image(out / "compare_latency_distribution.png", "latency"),
                "<h3>Throughput</h3>", h.image(out / "compare_throughput.png", "throughput"),
                "<h2>Runs</h2>",
                h.table([{"run": d.folder.path.name, "folder": str(d.folder.path.resolve()),
                          "reason": (d.verdict or {}).get("reason", "")} for d in runs])]
    (out / "compare.html").write_text(h.page("counterbench comparison", sections), encoding="utf-8")
    return out / "compare.html"
