"""/metrics (harness.metrics.exporter) from a run folder's progress files, and the Grafana dashboard in
deploy/grafana, which must only ask for what the exporter serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from harness.core.runfolder import RunFolder
from harness.metrics.exporter import Watched, _Collector

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "counterbench.json"


def folder_with_two_processes(tmp_path: Path) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    for name, ok, p99, cpu in (("host-101-1", 700, 3.0, 0.4), ("host-102-1", 300, 9.5, 0.7)):
        path = folder.progress_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "counts": {"increment.ok": ok, "increment.fail": 5, "increment.ok.intended": 999},
            "last_window_ms": {"increment.ok": {"p50": 1.0, "p99": p99, "p99.9": p99 + 1, "max": p99 + 2}},
            "cpu": cpu, "cpu_seconds": 2.5}))
    folder.progress_dir.joinpath("master.json").write_text(json.dumps({"connected": ["a", "b"], "expected": 3}))
    return folder


Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(tmp_path: Path, violations: dict[str, int]) -> tuple[Samples, set[str]]:
    """Each metric family's samples (labels, value), and the names of every sample served (``_total`` and all)."""
    collector = _Collector()
    collector.watched = Watched(folder=folder_with_two_processes(tmp_path), scenario="s",
                                violations=lambda: violations)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in families}, \
        {s.name for f in families for s in f.samples}


def test_ops_sum_over_processes_latency_is_the_worst_process_and_violations_count(tmp_path):
    got, _ = scrape(tmp_path, {"unique-values": 4})
    ops = {(labels["op"], labels["outcome"]): v for labels, v in got["counterbench_ops"]}
    assert ops == {("increment", "ok"): 1000, ("increment", "fail"): 10}  # open-model tags are not ops
    p99 = [v for labels, v in got["counterbench_latency_ms"] if labels["quantile"] == "0.99"]
    assert p99 == [9.5]
    assert [(labels["check"], v) for labels, v in got["counterbench_violations"]] == [("unique-values", 4)]
    assert sorted(v for _, v in got["counterbench_load_cpu_ratio"]) == [0.4, 0.7]
    assert {labels["state"]: v for labels, v in got["counterbench_workers"]} == {"connected": 2, "expected": 3}


def test_nothing_is_served_between_runs():
    collector = _Collector()
    assert list(collector.collect()) == []


def test_every_dashboard_query_asks_for_a_metric_the_exporter_serves(tmp_path):
    _, served = scrape(tmp_path, {"reads": 1})
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    asked = {m for e in exprs for m in re.findall(r"counterbench_[a-z_]+", e)}
    assert asked and asked <= served, asked - served
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in dash["panels"])
    titles = " ".join(p["title"] for p in dash["panels"])
    for needed in ("Throughput", "Latency", "Violations", "CPU"):  # what a capacity run needs
        assert needed in titles
