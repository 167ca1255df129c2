"""Time and peak memory of `counterbench check` and `counterbench report` on synthetic runs.

    .venv/bin/python bench/check_scaling.py [--ops 1000000 10000000]

Each run folder holds one worker's history of N acknowledged +1 ops on one key (written with
the real HistoryWriter), its latency log, and the matching initial and final state.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.config import load_scenarios
from harness.history import HistoryWriter
from harness.metrics import LatencyRecorder
from harness.ops import Completion
from harness.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]


def synthesize(folder: RunFolder, ops: int) -> None:
    scenario = load_scenarios(ROOT / "scenarios.yaml")["redis-counter"]
    key = "cb:bench:counter"
    folder.write(folder.run_json, {"run_id": "bench", "scenario": scenario.model_dump(mode="json"),
                                   "target": {"kind": "redis", "url": "redis://127.0.0.1:1/0", "variant": "atomic"},
                                   "keys": [key], "environment": {}, "started_at": time.time(), "processes": 1})
    folder.write(folder.state_json, {"initial": {key: 0}, "final": {key: ops}})
    w = HistoryWriter(folder.history_dir / "w.jsonl", worker="w", run_id="bench", scenario=scenario.name)
    r = LatencyRecorder(folder.path / "metrics" / "w.hlog")
    for i in range(ops):
        w.complete(w.invoke(key, "incr", 1), Completion.ok(i + 1))
        r.record("increment.ok", 200 + i % 5000)
    w.close()
    r.close()


def measure(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before) / 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ops", type=int, nargs="+", default=[1_000_000])
    args = p.parse_args()
    print(f"{'ops':>10} {'check s':>8} {'check MiB':>10} {'report s':>9} {'report MiB':>11}")
    for n in args.ops:
        with tempfile.TemporaryDirectory() as d:
            folder = RunFolder(Path(d) / "run")
            synthesize(folder, n)
            # each command in a fresh interpreter; ru_maxrss of children is a running maximum,
            # so measure check before report and report the larger runs last
            check = measure([sys.executable, "-m", "harness.cli", "check", str(folder.path)])
            report = measure([sys.executable, "-m", "harness.cli", "report", str(folder.path)])
        print(f"{n:>10} {check[0]:8.1f} {check[1]:10.0f} {report[0]:9.1f} {report[1]:11.0f}")


if __name__ == "__main__":
    main()
