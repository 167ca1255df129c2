"""Throughput of the embedded stack's paths, one after another on this machine.

    .venv/bin/python bench/stack_throughput.py [--seconds 8] [--users 32]

API Gateway emulator -> dynalite against dynalite directly, and the reference service over
each store (memory, redis, postgres, dynamodb): acknowledged ops/s and p50/p99 of each, all with
full recording and each started by the harness itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = [
    ("dynamodb-counter", "dynalite directly (boto3)"),
    ("apigateway-counter", "API Gateway emulator -> dynalite"),
    ("http-counter", "reference service, memory store"),
    ("service-redis-counter", "reference service, redis store"),
    ("service-postgres-counter", "reference service, postgres store"),
    ("service-dynamodb-counter", "reference service, dynamodb store"),
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--users", type=int, default=32)
    args = p.parse_args()
    print(f"{'path':40} {'ok ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    with tempfile.TemporaryDirectory() as d:
        for scenario, label in PATHS:
            out = Path(d) / scenario
            subprocess.run([sys.executable, "-m", "harness.cli", "run", "-q", "--no-report", "-f",
                            str(ROOT / "scenarios.yaml"), "-s", scenario, "--users", str(args.users),
                            "--spawn-rate", str(args.users), "--duration", str(args.seconds), "--out", str(out)],
                           check=False, cwd=ROOT)
            v = json.loads((out / "verdict.json").read_text())
            lat = v["latency"]
            print(f"{label:40} {lat['ok_ops_per_s'] or 0:9.0f} {lat['p50'] or 0:8.2f} {lat['p99'] or 0:8.2f}"
                  + ("" if v["verdict"] == "pass" else f"  ({v['verdict']}: {v['reason']})"))


if __name__ == "__main__":
    main()
