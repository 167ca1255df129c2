"""A soak at full speed: the load processes' memory stays flat, and the run is judged in seconds.

    .venv/bin/python bench/soak.py [--minutes 10] [--processes 2] [--users 50]

One `counterbench run -s redis-counter` on the embedded redis-server for ``--minutes`` (the shipped
scenario at full speed: no think time), its load processes' resident memory sampled every second
from /proc (found by their progress files, ``<host>-<pid>-<n>.json``). Then `counterbench check` of
the run folder, three times in fresh interpreters (its time and peak RSS by os.wait4: median and
range). Prints the ops, the history's bytes per op, each load process's median RSS over the first
and over the last minute, and the targets (issue #23): the last minute within 10% of the first,
check <= 10 s.

A soak is one long run, not interleaved rounds: what it measures is drift over time, which rounds of
it would only repeat.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _rounds import parse, parser, spread
from check_scaling import measure

from harness.core.runfolder import RunFolder, worker_pid

ROOT = Path(__file__).resolve().parents[1]
GROWTH, CHECK_S = 0.10, 10.0


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--users", type=int, default=50)
    args = parse(p)
    duration = int(args.minutes * 60)
    print(f"soak: redis-counter for {duration} s, {args.processes} load processes, {args.users} users; "
          "RSS sampled every second", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(Path(tmp) / "run")
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "run", "-q", "--no-report", "-s", "redis-counter",
             "--duration", str(duration), "--processes", str(args.processes), "--users", str(args.users),
             "--out", str(folder.path)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples: dict[int, list[tuple[float, float]]] = {}  # pid -> (seconds since the first sample, MiB)
        start: float | None = None
        while proc.poll() is None:
            progress = folder.path / "progress"
            pids = {pid for f in progress.glob("*.json") if (pid := worker_pid(f.stem))} if progress.is_dir() else set()
            for pid in pids:
                mib = rss_mib(pid)
                if mib is not None:
                    start = time.monotonic() if start is None else start
                    samples.setdefault(pid, []).append((time.monotonic() - start, mib))
            time.sleep(1.0)
        err = proc.stderr.read() if proc.stderr else ""
        if proc.returncode not in (0, 1):
            sys.exit(f"the run exited {proc.returncode}: {err[-2000:]}")
        verdict = json.loads(folder.verdict_json.read_text())
        ops = int(verdict["totals"]["ops"])
        size = sum(f.stat().st_size for f in folder.history_dir.iterdir())
        print(f"  run: {verdict['verdict']}, {ops:,} ops ({ops / duration:,.0f}/s), history {size / 2**20:,.0f} MiB "
              f"({size / ops:.1f} bytes per op)")
        flat = True
        for pid, rows in sorted(samples.items()):
            load = [(t, m) for t, m in rows if t <= rows[-1][0] - 3]  # the drain's last seconds aside
            first = statistics.median(m for t, m in load if t < 60)
            last = statistics.median(m for t, m in load if t >= load[-1][0] - 60)
            grew = last / first - 1
            flat &= grew <= GROWTH
            minutes = [statistics.median(m for t, m in load if k * 60 <= t < (k + 1) * 60)
                       for k in range(int(load[-1][0] // 60) + 1) if any(k * 60 <= t < (k + 1) * 60 for t, _ in load)]
            print(f"  load process {pid}: RSS first minute {first:.0f} MiB, last minute {last:.0f} MiB "
                  f"({grew:+.1%}); peak {max(m for _, m in rows):.0f} MiB; by minute "
                  + " ".join(f"{m:.0f}" for m in minutes))
        checks = [measure("check", str(folder.path)) for _ in range(3)]
        codes = {code for _, _, code in checks}
        if codes != {proc.returncode}:  # a check that did not judge as the run did measured something else
            sys.exit(f"`counterbench check` exited {sorted(codes)}, the run {proc.returncode}")
        secs = [t for t, _, _ in checks]
        print(f"  check: {spread(secs, '.1f')} s, peak {spread([m for _, m, _ in checks], '.0f')} MiB "
              f"(3 runs, fresh interpreters)")
        print(f"  targets: memory flat (last minute within {GROWTH:.0%} of the first): "
              f"{'holds' if flat else 'MISSED'}; check <= {CHECK_S:g} s: "
              f"{'holds' if statistics.median(secs) <= CHECK_S else 'MISSED'}", flush=True)


if __name__ == "__main__":
    main()
