"""`counterbench run -s A -s B --repeat N`: interleaved rounds, then a comparison of groups with intervals and cost."""

from __future__ import annotations

import csv
import html
import json

from harness.cli import main
from tests.integration.conftest import SHIPPED

RUNS = 4  # the fewest a side for a 95% interval of a difference


def test_repeated_runs_are_interleaved_grouped_and_compared(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["run", "-q", "-f", str(SHIPPED), "-s", "redis-counter", "-s", "service-redis-counter",
                 "--repeat", str(RUNS), "--duration", "2", "--users", "16", "--spawn-rate", "16", "--out", str(out)])
    assert code == 0
    folders = [out / f"{name}-{k}" for k in range(1, RUNS + 1) for name in ("redis-counter", "service-redis-counter")]
    started = [json.loads((f / "run.json").read_text())["started_at"] for f in folders]
    assert started == sorted(started)  # a b a b ...: rounds, not one scenario's runs back to back

    rows = list(csv.DictReader((out / "comparison" / "comparison.csv").open()))
    assert [r["row"] for r in rows] == ["run"] * 2 * RUNS + ["group"] * 2
    for g in rows[-2:]:
        assert int(g["runs"]) == RUNS and g["verdict"] == f"{RUNS} pass"
        assert float(g["ok_per_s_lo"]) <= float(g["ok_per_s"]) <= float(g["ok_per_s_hi"])
        assert float(g["usd_per_M"]) > 0  # node-priced: a cache node-hour, an instance-hour
    assert all(r["cost_basis"] for r in rows[:-2])

    diffs = {d["metric"]: d for d in csv.DictReader((out / "comparison" / "differences.csv").open())}
    assert set(diffs) == {"ok_per_s", "p50", "p99", "p99.9", "usd_per_M"}
    # Redis answers directly; the reference service (one process on the same 2 cores) adds a hop and Python
    faster = diffs["ok_per_s"]
    assert (faster["a"], faster["call"]) == ("redis-counter", "better"), faster["sentence"]
    assert faster["sentence"].startswith("redis-counter is ")
    assert "faster than service-redis-counter by " in faster["sentence"] or " as fast as " in faster["sentence"]

    page = (out / "comparison" / "compare.html").read_text()
    # verdicts first (a speed-up of a scenario that loses updates is none), then the calls, then the medians
    assert page.index("Verdicts") < page.index("Which is faster") < page.index("Each scenario across its runs")
    assert html.escape(f"{RUNS} pass / {RUNS} pass") in page  # each call says both sides' verdicts
    assert faster["sentence"] in capsys.readouterr().out  # the terminal ends with the calls, not just a path
    cost = html.escape(diffs["usd_per_M"]["sentence"])  # as the page writes it ("redis-counter&#x27;s $ per M")
    assert html.escape(faster["sentence"]) in page and page.index(cost) < page.index("Each scenario")
