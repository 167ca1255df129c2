"""counterbench's redis-counter against redis-benchmark, side by side on the same redis-server.

    .venv/bin/python bench/redis_load.py [--seconds 10] [--processes 2] [--users 50]

Prints each tool's INCR rate, their ratio, and the load generator's CPU microseconds per op
(counterbench records full history and latency histograms while it runs).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.stack.redis import RedisServer

ROOT = Path(__file__).resolve().parents[1]


def redis_benchmark(port: int, clients: int, requests: int) -> float:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        sys.exit("redis-benchmark is missing: apt-get install redis-tools")
    out = subprocess.run([exe, "-h", "127.0.0.1", "-p", str(port), "-t", "incr", "-c", str(clients), "-n",
                          str(requests), "-q"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"INCR: ([\d.]+) requests per second", out.replace("\r", "\n"))
    if m is None:
        sys.exit(f"cannot read redis-benchmark's output: {out[-300:]}")
    return float(m.group(1))


def counterbench(url: str, *, seconds: int, processes: int, users: int, out: Path) -> tuple[float, float]:
    """(acknowledged ops/s, load-generator CPU us per op)."""
    cmd = [sys.executable, "-m", "harness.cli", "run", "-q", "--no-report", "-f", str(ROOT / "scenarios.yaml"),
           "-s", "redis-counter", "--target-url", url, "--users", str(users), "--spawn-rate", str(users),
           "--duration", str(seconds), "--processes", str(processes), "--out", str(out)]
    subprocess.run(cmd, check=False, cwd=ROOT)
    verdict = json.loads((out / "verdict.json").read_text())
    if verdict["verdict"] != "pass":
        sys.exit(f"counterbench's run did not pass: {verdict['reason']}")
    from harness.report.data import load_run

    data = load_run(out)
    ok = data.histogram().get_total_count()
    rate = ok / max(data.duration(), 1e-9)
    cpu = sum(float(line.split(",")[1]) for p in (out / "metrics").glob("*.cpu.csv")
              for line in p.read_text().splitlines()[1:])
    return rate, cpu / max(verdict["totals"]["ops"], 1) * 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--users", type=int, default=50)
    args = p.parse_args()
    with RedisServer() as server, tempfile.TemporaryDirectory() as d:
        base = redis_benchmark(server.port, 50, 300_000)
        rate, cpu_us = counterbench(server.url, seconds=args.seconds, processes=args.processes, users=args.users,
                                    out=Path(d) / "run")
    print(f"redis-benchmark -t incr -c 50        {base:10.0f} ops/s")
    print(f"counterbench redis-counter           {rate:10.0f} ops/s  ({args.users} users, {args.processes} processes,"
          f" history + histograms on)")
    print(f"ratio                                {rate / base:10.1%}")
    print(f"load generator CPU per op            {cpu_us:10.1f} us")


if __name__ == "__main__":
    main()
