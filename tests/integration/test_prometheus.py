"""/metrics while the load runs (--metrics-port): scraped mid-run and parsed with prometheus-client's own
parser, as Prometheus reads it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from harness.stack.process import free_port
from tests.integration.conftest import ROOT, SHIPPED


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=2) as r:
        text = r.read().decode()
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def test_metrics_mid_run_count_ops_latency_violations_and_cpu(tmp_path, redis_url):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "-q", "--no-report", "--out", str(tmp_path / "run"), "-f",
         str(SHIPPED), "-s", "redis-counter-unsafe", "--target-url", redis_url, "--users", "8", "--spawn-rate", "8",
         "--duration", "8", "--metrics-port", str(port)],
        cwd=ROOT, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: dict[str, list[tuple[dict[str, str], float]]] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                got = scrape(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                continue  # not listening yet
            ok = sum(v for labels, v in got.get("counterbench_ops", []) if labels.get("outcome") == "ok")
            found = sum(v for _, v in got.get("counterbench_violations", []))
            if ok > 0 and found > 0 and got.get("counterbench_latency_ms") and got.get("counterbench_load_cpu_ratio"):
                seen = got
                break
    finally:
        out = proc.communicate(timeout=120)[0].decode()
    assert seen, f"/metrics never showed ops, a violation, latency and CPU mid-run:\n{out}"
    assert proc.returncode == 1, out  # read-modify-write: fail
    ops = {(labels["op"], labels["outcome"]) for labels, v in seen["counterbench_ops"] if v > 0}
    assert ("increment", "ok") in ops
    violations = {labels["check"] for labels, v in seen["counterbench_violations"] if v > 0}
    assert "unique-values" in violations
    quantiles = {labels["quantile"] for labels, _ in seen["counterbench_latency_ms"]}
    assert {"0.5", "0.99", "0.999", "1"} <= quantiles
    assert all(0 <= v < 2 for _, v in seen["counterbench_load_cpu_ratio"])
    assert [v for _, v in seen["counterbench_run_info"]] == [1.0]
