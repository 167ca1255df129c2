"""Throughput of the embedded stack's paths, one after another on this machine.

    .venv/bin/python bench/stack_throughput.py [--seconds 8] [--users 32] [--rounds 3]

API Gateway emulator -> dynalite against dynalite directly, and the reference service over
each store (memory, redis, postgres, dynamodb): acknowledged ops/s and p50/p99 of each, all with
full recording and each started by the harness itself. Each round runs every path once (odd
rounds in reverse order); each figure is the median of the rounds with their range.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _rounds import how, interleave, parse, parser, spread

ROOT = Path(__file__).resolve().parents[1]
PATHS = [
    ("dynamodb-counter", "dynalite directly (boto3)"),
    ("apigateway-counter", "API Gateway emulator -> dynalite"),
    ("http-counter", "reference service, memory store"),
    ("service-redis-counter", "reference service, redis store"),
    ("service-postgres-counter", "reference service, postgres store"),
    ("service-dynamodb-counter", "reference service, dynamodb store"),
]


def run(scenario: str, *, seconds: int, users: int, out: Path) -> dict[str, Any]:
    """The run's verdict.json (its stack started and stopped by the harness)."""
    subprocess.run([sys.executable, "-m", "harness.cli", "run", "-q", "--no-report", "-f",
                    str(ROOT / "scenarios.yaml"), "-s", scenario, "--users", str(users),
                    "--spawn-rate", str(users), "--duration", str(seconds), "--out", str(out)],
                   check=False, cwd=ROOT)
    if not (out / "verdict.json").exists():
        return {"verdict": "error", "reason": "no verdict.json (the run failed to start?)", "latency": {}}
    return json.loads((out / "verdict.json").read_text())


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--seconds", type=int, default=8, help="length of each run")
    p.add_argument("--users", type=int, default=32)
    args = parse(p)
    print(f"stack_throughput: the embedded stack's paths, {args.users} users, {args.seconds} s runs, full "
          f"recording; {how(args.rounds)}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        got = interleave(args.rounds, {
            scenario: (lambda r, s=scenario: run(s, seconds=args.seconds, users=args.users,
                                                 out=Path(d) / f"{s}-{r}"))
            for scenario, _ in PATHS})
    print(f"  {'path':36} {'ok ops/s':>20} {'p50 ms':>24} {'p99 ms':>24}")
    for scenario, label in PATHS:
        verdicts = got[scenario]

        def figure(name: str, verdicts: list[dict[str, Any]] = verdicts) -> list[float]:
            return [v["latency"][name] for v in verdicts if v.get("latency", {}).get(name) is not None]

        bad = [f"{v['verdict']}: {v['reason']}" for v in verdicts if v["verdict"] != "pass"]
        print(f"  {label:36} {spread(figure('ok_ops_per_s'), ',.0f'):>20} {spread(figure('p50'), '.2f'):>24} "
              f"{spread(figure('p99'), '.2f'):>24}"
              + (f"  ({len(bad)} of {len(verdicts)} rounds did not pass: {'; '.join(sorted(set(bad)))})"
                 if bad else ""), flush=True)


if __name__ == "__main__":
    main()
