"""counterbench's redis-counter against redis-benchmark, side by side on the same redis-server.

    .venv/bin/python bench/redis_load.py [--seconds 10] [--processes 2] [--users 50]
                                         [--rounds 3] [--recording-rounds 8]

Each round runs redis-benchmark (INCR, 50 clients), counterbench's redis-counter (full history and
latency histograms), the same with history and histograms off, and redis-counter-pipelined (16
increments per round trip), odd rounds in reverse order. Prints each one's INCR rate, its ratio to
redis-benchmark's in the same round and the load generator's CPU microseconds per op: the median
of ``--rounds`` rounds with their range. Then what recording costs: the runs with it on and off,
back to back in alternating order, compared pair by pair over ``--recording-rounds`` pairs (the
rounds past ``--rounds`` run only those two): the machine's noise is as large as the cost.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _rounds import DASH, how, interleave, parse, parser, ratios, spread

from harness.stack.redis import RedisServer

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK_REQUESTS = 300_000  # ~5 s of redis-benchmark on a 2-core machine


def redis_benchmark(port: int, clients: int, requests: int) -> float:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        sys.exit("redis-benchmark is missing: apt-get install redis-tools (or `make bench`)")
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
    p = parser(__doc__)
    p.add_argument("--seconds", type=int, default=10, help="length of each counterbench run")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--recording-rounds", type=int, default=8,
                   help="pairs of runs with recording on and off, in all (at least --rounds; default 8)")
    args = parse(p)
    pairs_wanted = max(args.rounds, args.recording_rounds)
    print(f"redis_load: redis-benchmark vs counterbench on one redis-server; {args.processes} load processes, "
          f"{args.users} users, {args.seconds} s runs; {how(args.rounds)}", flush=True)
    with RedisServer() as server, tempfile.TemporaryDirectory() as d:
        def cb(scenario: str, tag: str, record: bool = True) -> Callable[[int], tuple[float, float, float]]:
            return lambda r: counterbench(server.url, scenario=scenario, seconds=args.seconds,
                                          processes=args.processes, users=args.users,
                                          out=Path(d) / f"{tag}-{r}", record=record)

        # each: (ops/s, CPU us/op, Locust's requests/s); the on and off runs stay next to each other
        got = interleave(args.rounds, {
            "base": lambda r: (redis_benchmark(server.port, 50, BENCHMARK_REQUESTS), 0.0, 0.0),
            "on": cb("redis-counter", "on"),
            "off": cb("redis-counter", "off", record=False),
            "pipelined": cb("redis-counter-pipelined", "pipelined"),
        })
        # more pairs for recording's cost alone, the alternation going on where the rounds left it
        interleave(pairs_wanted - args.rounds, {"on": cb("redis-counter", "on"),
                                                "off": cb("redis-counter", "off", record=False)},
                   start=args.rounds, into=got)

    def col(name: str, i: int, n: int = args.rounds) -> list[float]:
        return [run[i] for run in got[name][:n]]

    base = col("base", 0)
    print(f"  {'load':44} {'ops/s':>24} {'of redis-benchmark':>26} {'CPU us/op':>22}")
    print(f"  {'redis-benchmark -t incr -c 50':44} {spread(base, ',.0f'):>24}")
    for name, label, target in (("on", "counterbench redis-counter", ">= 40%"),
                                ("pipelined", "counterbench redis-counter-pipelined (16)", ">= 100%"),
                                ("off", "redis-counter, history + histograms off", "")):
        rate = col(name, 0)
        print(f"  {label:44} {spread(rate, ',.0f'):>24} {spread(ratios(rate, base), '.1%'):>26} "
              f"{spread(col(name, 1), '.1f'):>22}" + (f"   target {target}" if target else ""))
    # recording's cost, pair by pair (on and off ran back to back): Locust's request rates, CPU per op
    on, off = got["on"], got["off"]
    cost = [1 - a[2] / b[2] for a, b in zip(on, off, strict=True) if a[2] and b[2]]
    more_cpu = [a[1] / b[1] - 1 for a, b in zip(on, off, strict=True) if a[1] and b[1]]
    print(f"  recording (history + histograms), {len(on)} pairs of runs with it on and off, back to back "
          f"in alternating order; median (min{DASH}max) of the pairs:")
    print(f"    costs {spread(cost, '.1%')} of one-op-per-round-trip throughput (Locust's request rates; "
          f"target <= 5%)")
    print(f"    and   {spread(more_cpu, '.1%')} more load-generator CPU per op", flush=True)


if __name__ == "__main__":
    main()
