"""Time and peak memory of `counterbench check` and `counterbench report`, against the targets.

    .venv/bin/python bench/check_scaling.py [--ops 1000000 10000000 100000000] [--once 1000000000]
        [--hours 24] [--rounds 3] [--keep DIR]

For each op count, a run folder like a real one: two load processes' histories written straight in
history format version 5 by ``_synth`` (what the real writer writes: the two processes at once, +1
increments on one hot key, 8 in flight per process, ~1% failed, ~0.1% indeterminate of which some
retried, a few never completed, 10% reads of the key), their latency logs, and the matching initial
and final state. `check` runs every default check of a counter, the ones that read time
(realtime-order, reads, gaps) included, as a user runs it (``--read auto``: streamed from 64 MiB of
history; the row says how it read). Then a run of ``--hours`` hours' latency logs (two processes, one
window per second per tag, a few thousand values a window), which is what `report` reads.

Each command runs in a fresh interpreter; its peak RSS is its own (os.wait4). Each folder is
synthesised once and measured ``--rounds`` times, the commands interleaved (odd rounds in reverse
order): figures are medians with their range; a target holds when the median meets it. The ``--once``
op counts (a billion takes minutes to make and to check) are measured one round, after the others,
and say so. Targets: check of 10M ops (10% reads) <= 10 s and <= 1 GiB, report of a 1-hour run <= 15 s
(issues #7, #15); (issue #23) check of 100M ops <= 20 s and <= 512 MiB, of 1,000M <= 200 s and <= 1 GiB;
report of a run of up to 24 hours <= 30 s and <= 512 MiB.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _rounds import how, interleave, parse, parser, spread
from _synth import synthesize_history

from harness.config import load_scenarios
from harness.core.runfolder import RunFolder
from harness.metrics import window_histogram

ROOT = Path(__file__).resolve().parents[1]
KEY = "cb:bench:counter"
CHECK_S, CHECK_MIB, REPORT_S = 10.0, 1024.0, 15.0
# issue #23: (ops at least, seconds, MiB) -- the largest that applies is a run's target
CHECK_TARGETS = ((0, CHECK_S, CHECK_MIB), (100_000_000, 20.0, 512.0), (1_000_000_000, 200.0, 1024.0))
REPORT_DAY_S, REPORT_DAY_MIB = 30.0, 512.0  # issue #23: a report of up to 24 hours' logs


def run_json(folder: RunFolder, processes: int) -> None:
    scenario = load_scenarios(ROOT / "scenarios.yaml")["redis-counter"]
    folder.write(folder.run_json, {"run_id": "bench", "scenario": scenario.model_dump(mode="json"),
                                   "target": {"kind": "redis", "url": "redis://127.0.0.1:1/0", "variant": "atomic"},
                                   "keys": [KEY], "environment": {}, "started_at": time.time(),
                                   "processes": processes})


def synthesize_ops(folder: RunFolder, ops: int, *, in_flight: int = 8, reads: float = 0.1) -> None:
    """Two workers' histories of ``ops`` ops in all (``reads`` of them reads), run at once on one key, written
    straight in history format version 5 half a million ops at a time (``_synth``: 1,000M ops in minutes), with
    their latency logs and the initial and final state."""
    run_json(folder, processes=2)
    value = synthesize_history(folder.path, ops, processes=2, in_flight=in_flight, reads=reads, key=KEY)
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


# Runs the command and prints its peak RSS. A child's peak RSS starts from its parent's at the fork
# (Linux carries the high-water mark across exec): spawned from this process, with gigabytes of
# synthesised history behind it, every command would seem as large. The launcher is small.
_LAUNCH = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL); "
           "_, st, ru = os.wait4(p.pid, 0); print(ru.ru_maxrss, os.waitstatus_to_exitcode(st))")


def measure(*args: str) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit code) of `counterbench ARGS` in a fresh interpreter."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _LAUNCH, sys.executable, "-m", "harness.cli", *args], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return time.perf_counter() - t0, int(out[0]) / 1024, int(out[1])


def read_of(folder: RunFolder) -> str:
    import json

    return str(json.loads(folder.verdict_json.read_text())["history"].get("read")) \
        if folder.verdict_json.exists() else "-"


def verdict_of(folder: RunFolder) -> str:
    import json

    return str(json.loads(folder.verdict_json.read_text())["verdict"]) if folder.verdict_json.exists() else "-"


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--ops", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000])
    p.add_argument("--once", type=int, nargs="*", default=[1_000_000_000],
                   help="op counts checked one round only, after the rest (none: --once with no value)")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--keep", help="synthesise into this folder and keep the runs")
    args = parse(p)
    print(f"check_scaling: `counterbench check` and `counterbench report` of synthetic runs, each in a fresh "
          f"interpreter (seconds, peak RSS); {how(args.rounds)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        runs: list[tuple[str, RunFolder, bool]] = []  # (name, folder, has a history to check)
        for n in args.ops:
            folder = RunFolder(root / f"ops-{n}")
            synthesize_ops(folder, n)
            size = sum(f.stat().st_size for f in folder.history_dir.iterdir()) / 2**20
            runs.append((f"{n:,} ops ({size:,.0f} MiB)", folder, True))
        folder = RunFolder(root / f"hours-{args.hours:g}")
        synthesize_hours(folder, args.hours)
        size = sum(f.stat().st_size for f in (folder.path / "metrics").iterdir()) / 2**20
        runs.append((f"{args.hours:g} h logs ({size:,.0f} MiB)", folder, False))
        things: dict[str, Callable[[int], tuple[float, float, int]]] = {}
        for name, folder, ops in runs:  # interleaved: each round measures every command once
            if ops:
                things[f"check {name}"] = lambda r, f=folder: measure("check", str(f.path))
            things[f"report {name}"] = lambda r, f=folder: measure("report", str(f.path))
        got = interleave(args.rounds, things)
        for n in args.once:  # made and checked one at a time: a billion ops' history is gigabytes
            folder = RunFolder(root / f"ops-{n}")
            synthesize_ops(folder, n)
            size = sum(f.stat().st_size for f in folder.history_dir.iterdir()) / 2**20
            name = f"{n:,} ops ({size:,.0f} MiB) 1 round"
            runs.append((name, folder, True))
            got[f"check {name}"] = [measure("check", str(folder.path))]
            got[f"report {name}"] = [measure("report", str(folder.path))]
            if not args.keep:
                shutil.rmtree(folder.history_dir)
        print(f"  {'run (history or logs)':26} {'check s':>16} {'check MiB':>16} {'verdict':>8} "
              f"{'report s':>16} {'report MiB':>16}  target")
        for name, folder, ops in runs:
            rep = got[f"report {name}"]
            rs = [t for t, _, _ in rep]
            if ops:
                chk = got[f"check {name}"]
                cs, cm = [t for t, _, _ in chk], [m for _, m, _ in chk]
                n = int(folder.path.name.removeprefix("ops-"))
                _, limit_s, limit_mib = max(t for t in CHECK_TARGETS if t[0] <= n)
                holds = statistics.median(cs) <= limit_s and statistics.median(cm) <= limit_mib
                target = (f"check <= {limit_s:g} s and <= {limit_mib:g} MiB: {'holds' if holds else 'MISSED'} "
                          f"(read {read_of(folder)})")
                check = f"{spread(cs, '.1f'):>16} {spread(cm, '.0f'):>16} {verdict_of(folder):>8}"
            elif args.hours <= 1:
                target = f"report <= {REPORT_S:g} s: {'holds' if statistics.median(rs) <= REPORT_S else 'MISSED'}"
                check = f"{'':>16} {'':>16} {'':>8}"
            else:
                holds = statistics.median(rs) <= REPORT_DAY_S and \
                    statistics.median([m for _, m, _ in rep]) <= REPORT_DAY_MIB
                target = "" if args.hours > 24 else \
                    f"report <= {REPORT_DAY_S:g} s and <= {REPORT_DAY_MIB:g} MiB: {'holds' if holds else 'MISSED'}"
                check = f"{'':>16} {'':>16} {'':>8}"
            print(f"  {name:26} {check} {spread(rs, '.1f'):>16} {spread([m for _, m, _ in rep], '.0f'):>16}  {target}",
                  flush=True)


if __name__ == "__main__":
    main()
