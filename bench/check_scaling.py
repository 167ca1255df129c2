"""Time and peak memory of `counterbench check` and `counterbench report`, against the targets.

    .venv/bin/python bench/check_scaling.py [--ops 1000000 10000000] [--hours 1] [--keep DIR]

For each op count, a run folder like a real one: two load processes' histories written with the
real HistoryWriter (+1 increments on one hot key, a few ops in flight at a time, ~1% failed,
~0.1% indeterminate of which some retried, a few never completed), their latency logs, and the
matching initial and final state. Then a run of ``--hours`` hours' latency logs (two processes,
one window per second per tag, a few thousand values a window), which is what `report` reads.

Each command runs in a fresh interpreter; its peak RSS is its own (os.wait4). Targets (issue #7):
check of 10M ops <= 10 s and <= 1 GiB; report of a 1-hour run <= 15 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.config import load_scenarios
from harness.history import HistoryWriter, history_file
from harness.metrics import LatencyRecorder, window_histogram
from harness.ops import Completion, Outcome
from harness.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
KEY = "cb:bench:counter"
CHECK_S, CHECK_MIB, REPORT_S = 10.0, 1024.0, 15.0


def run_json(folder: RunFolder, processes: int) -> None:
    scenario = load_scenarios(ROOT / "scenarios.yaml")["redis-counter"]
    folder.write(folder.run_json, {"run_id": "bench", "scenario": scenario.model_dump(mode="json"),
                                   "target": {"kind": "redis", "url": "redis://127.0.0.1:1/0", "variant": "atomic"},
                                   "keys": [KEY], "environment": {}, "started_at": time.time(),
                                   "processes": processes})


def synthesize_ops(folder: RunFolder, ops: int, *, in_flight: int = 8) -> None:
    """Two workers' histories of ``ops`` ops in all, written op by op with the real writer."""
    run_json(folder, processes=2)
    value = 0
    fail = Completion.fail("redis: connection reset before sending")
    for w in range(2):
        writer = HistoryWriter(history_file(folder.history_dir, f"w{w}"), worker=f"w{w}", run_id="bench",
                               scenario="redis-counter")
        rec = LatencyRecorder(folder.path / "metrics" / f"w{w}.hlog")
        open_ops: list[int] = []
        next_flush = time.monotonic() + 0.2
        for i in range(ops // 2 + (w < ops % 2)):
            open_ops.append(writer.invoke(KEY, "incr", 1))
            if len(open_ops) < in_flight:
                continue
            op = open_ops.pop(0)
            if i % 100 == 17:
                writer.complete(op, fail)
                rec.record("increment.fail", 90)
            elif i % 1000 == 500:  # timed out, applied (indeterminate ops may or may not be)
                value += 1
                writer.complete(op, Completion(Outcome.INDETERMINATE, None, "timeout", 1 + i % 3))
                rec.record("increment.indeterminate", 1_000_000)
            else:
                value += 1
                writer.complete(op, Completion.ok(value))
                rec.record("increment.ok", 200 + i % 5000)
            if i % 4096 == 0 and time.monotonic() >= next_flush:
                writer.flush()
                next_flush += 0.2
        writer.close()  # the last few stay open: never completed, indeterminate
        rec.close()
    folder.write(folder.state_json, {"initial": {KEY: 0}, "final": {KEY: value}})


def synthesize_hours(folder: RunFolder, hours: float, *, processes: int = 2, per_window: int = 3000) -> None:
    """Latency logs of a long run: one window per second per tag per process, as LatencyRecorder writes."""
    run_json(folder, processes=processes)
    folder.write(folder.state_json, {"initial": {KEY: 0}, "final": {KEY: 0}})
    rng = np.random.default_rng(7)
    encoded: dict[str, list[tuple[float, str]]] = {}
    for tag, n in (("increment.ok", per_window), ("increment.fail", 20)):
        encoded[tag] = []
        for _ in range(30):  # distinct windows, cycled (decoding cost does not depend on repeats)
            h = window_histogram(np.exp(rng.normal(np.log(800), 1.0, n)).astype(np.int64) + 1)
            encoded[tag].append((h.get_max_value() / 1000, h.encode().decode()))
    metrics = folder.path / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    start = time.time() - hours * 3600
    for w in range(processes):
        with open(metrics / f"w{w}.hlog", "w", encoding="utf-8") as f:
            f.write("#[counterbench latency histograms, values in microseconds]\n")
            f.write(f"#[StartTime: {start + w * 0.05:.3f} (seconds since epoch)]\n")
            f.write('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"\n')
            for s in range(int(hours * 3600)):
                for tag, windows in encoded.items():
                    top, enc = windows[(s * 7 + w) % len(windows)]
                    f.write(f"Tag={tag},{s:.3f},1.000,{top:.3f},{enc}\n")


def measure(*args: str) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit code) of `counterbench ARGS` in a fresh interpreter."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, proc.returncode


def verdict_of(folder: RunFolder) -> str:
    import json

    return str(json.loads(folder.verdict_json.read_text())["verdict"]) if folder.verdict_json.exists() else "-"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ops", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--keep", help="synthesise into this folder and keep the runs")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        print(f"{'run':>14} {'synth s':>8} {'file MiB':>9} {'check s':>8} {'check MiB':>10} {'verdict':>8} "
              f"{'report s':>9} {'report MiB':>11}  target")
        for n in args.ops:
            folder = RunFolder(root / f"ops-{n}")
            t0 = time.perf_counter()
            synthesize_ops(folder, n)
            synth = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in folder.history_dir.iterdir()) / 2**20
            cs, cm, _ = measure("check", str(folder.path))
            rs, rm, _ = measure("report", str(folder.path))
            holds = cs <= CHECK_S and cm <= CHECK_MIB
            target = f"check <= {CHECK_S:g} s and <= {CHECK_MIB:g} MiB: {'holds' if holds else 'MISSED'}"
            print(f"{f'{n:,} ops':>14} {synth:8.1f} {size:9.0f} {cs:8.1f} {cm:10.0f} {verdict_of(folder):>8} "
                  f"{rs:9.1f} {rm:11.0f}  {target}", flush=True)
        folder = RunFolder(root / f"hours-{args.hours:g}")
        t0 = time.perf_counter()
        synthesize_hours(folder, args.hours)
        synth = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in (folder.path / "metrics").iterdir()) / 2**20
        rs, rm, _ = measure("report", str(folder.path))
        target = f"report <= {REPORT_S:g} s: {'holds' if rs <= REPORT_S else 'MISSED'}" if args.hours <= 1 else ""
        print(f"{f'{args.hours:g} h logs':>14} {synth:8.1f} {size:9.0f} {'':>8} {'':>10} {'':>8} "
              f"{rs:9.1f} {rm:11.0f}  {target}", flush=True)


if __name__ == "__main__":
    main()
