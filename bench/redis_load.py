"""counterbench's redis-counter against redis-benchmark, side by side on the same redis-server.

    .venv/bin/python bench/redis_load.py [--seconds 10] [--processes 2] [--users 50]
                                         [--repeat 3] [--recording-rounds 8]

Prints each tool's INCR rate, their ratio, and the load generator's CPU microseconds per op
(counterbench records full history and latency histograms while it runs); then what recording
costs: the same run with history and histograms off, run back to back with one that has them on
(in alternating order), compared pair by pair, with the median and every pair's figure printed.
"""

from __future__ import annotations

import argparse
import json
import os
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


def locust_stats(out: Path) -> tuple[int, float]:
    """(requests, per second) from Locust's own final stats (what a run without recording still has)."""
    stats = json.loads((out / "locust.json").read_text())
    n = sum(e["num_requests"] for e in stats)
    span = max(e["last_request_timestamp"] for e in stats) - min(e["start_time"] for e in stats)
    return n, n / max(span, 1e-9)


def counterbench(url: str, *, scenario: str, seconds: int, processes: int, users: int,
                 out: Path, record: bool = True) -> tuple[float, float, float]:
    """(acknowledged ops/s, load-generator CPU us per op, Locust's requests/s).

    The load processes log their CPU per window in both runs; with recording off there is no
    history, so its ops are Locust's request count (one op per request without pipelining)."""
    env = {**os.environ} if record else {**os.environ, "COUNTERBENCH_BENCH_NO_RECORD": "1"}
    cmd = [sys.executable, "-m", "harness.cli", "run", "-q", "--no-report", "-f", str(ROOT / "scenarios.yaml"),
           "-s", scenario, "--target-url", url, "--users", str(users), "--spawn-rate", str(users),
           "--duration", str(seconds), "--processes", str(processes), "--out", str(out)]
    subprocess.run(cmd, check=False, cwd=ROOT, env=env)
    requests, request_rate = locust_stats(out)
    cpu = sum(float(line.split(",")[1]) for p in (out / "metrics").glob("*.cpu.csv")
              for line in p.read_text().splitlines()[1:])
    if not record:
        return request_rate, cpu / max(requests, 1) * 1e6, request_rate
    verdict = json.loads((out / "verdict.json").read_text())
    if verdict["verdict"] != "pass":
        sys.exit(f"counterbench's run did not pass: {verdict['reason']}")
    from harness.report.data import load_run

    data = load_run(out)
    rate = data.histogram().get_total_count() / max(data.duration(), 1e-9)
    return rate, cpu / max(verdict["totals"]["ops"], 1) * 1e6, request_rate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians are printed")
    p.add_argument("--recording-rounds", type=int, default=8,
                   help="pairs of runs with recording on and off (the machine's noise is as large as the cost)")
    args = p.parse_args()
    runs: dict[str, list[tuple[float, float | None, float | None]]] = {}  # (ops/s, CPU us/op, requests/s)
    with RedisServer() as server, tempfile.TemporaryDirectory() as d:
        # interleaved rounds, medians: the machine is shared and noisy. Recording on and off run
        # back to back, in alternating order, and are compared round by round.
        for i in range(max(args.repeat, args.recording_rounds)):
            if i < args.repeat:
                runs.setdefault("base", []).append((redis_benchmark(server.port, 50, 300_000), None, None))
            for s in ("redis-counter", "off") if i % 2 == 0 else ("off", "redis-counter"):
                if s == "off" and i >= args.recording_rounds:
                    continue
                runs.setdefault(s, []).append(counterbench(
                    server.url, scenario="redis-counter", seconds=args.seconds, processes=args.processes,
                    users=args.users, out=Path(d) / f"{s}-{i}", record=s != "off"))
            if i < args.repeat:
                runs.setdefault("redis-counter-pipelined", []).append(counterbench(
                    server.url, scenario="redis-counter-pipelined", seconds=args.seconds,
                    processes=args.processes, users=args.users, out=Path(d) / f"pipelined-{i}"))

    def median(values: list[float | None]) -> float | None:
        present = sorted(v for v in values if v is not None)
        return present[len(present) // 2] if present else None

    def med(name: str) -> tuple[float, float | None, float | None]:
        rate = median([r for r, _, _ in runs[name]])
        assert rate is not None
        return rate, median([c for _, c, _ in runs[name]]), median([t for _, _, t in runs[name]])

    def num(v: float | None, width: int) -> str:
        return f"{v:{width}.1f}" if v is not None else " " * width

    base = med("base")[0]
    print(f"medians of interleaved rounds ({args.repeat} of redis-benchmark and pipelined, "
          f"{args.recording_rounds} of recording on/off); {args.processes} load processes, {args.users} users")
    print(f"{'load':44} {'ops/s':>9} {'vs redis-benchmark':>19} {'CPU us/op':>10}")
    print(f"{'redis-benchmark -t incr -c 50':44} {base:9.0f} {1:19.1%}")
    for name, label in (("redis-counter", "counterbench redis-counter"),
                        ("redis-counter-pipelined", "counterbench redis-counter-pipelined (16)"),
                        ("off", "redis-counter, history + histograms off")):
        rate, cpu, _ = med(name)
        print(f"{label:44} {rate:9.0f} {rate / base:19.1%} {num(cpu, 10)}")
    # recording's cost, round by round (on and off ran back to back): Locust's request rates, CPU per op.
    # Rounds past --recording-rounds have no off run: the first len(off) on runs are the pairs.
    pairs = list(zip(runs["redis-counter"][:len(runs["off"])], runs["off"], strict=True))
    costs = [1 - on[2] / off[2] for on, off in pairs if on[2] and off[2]]
    cpu = [on[1] / off[1] - 1 for on, off in pairs if on[1] and off[1]]
    cost, more = median(costs), median(cpu)
    assert cost is not None and more is not None
    print(f"recording (history + histograms) costs {cost:.1%} of one-op-per-round-trip throughput "
          f"(Locust's request rates; median of the rounds: {', '.join(f'{c:.1%}' for c in costs)}) "
          f"and {more:.1%} more load-generator CPU per op (median of the rounds)")


if __name__ == "__main__":
    main()
