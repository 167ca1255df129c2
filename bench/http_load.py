"""counterbench's http-counter against wrk, side by side on the same reference service.

    .venv/bin/python bench/http_load.py [--seconds 10] [--processes 2] [--repeat 3]

wrk (Debian's package) POSTs the same increment with 2 threads and 50 connections; counterbench
runs http-counter with 50 users and full recording. Medians of interleaved rounds are printed.
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

from harness.stack.service import ReferenceService

ROOT = Path(__file__).resolve().parents[1]

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"amount": 1}'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk(url: str, seconds: int, folder: Path) -> float:
    exe = shutil.which("wrk")
    if exe is None:
        sys.exit("wrk is missing: apt-get install wrk")
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run([exe, "-t2", "-c50", f"-d{seconds}s", "-s", str(script),
                          f"{url}/counters/wrk-bench/increment"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None:
        sys.exit(f"cannot read wrk's output: {out[-300:]}")
    return float(m.group(1))


def counterbench(url: str, *, seconds: int, processes: int, out: Path) -> float:
    subprocess.run([sys.executable, "-m", "harness.cli", "run", "-q", "--no-report", "-f", str(ROOT / "scenarios.yaml"),
                    "-s", "http-counter", "--target-url", url, "--users", "50", "--spawn-rate", "50", "--duration",
                    str(seconds), "--processes", str(processes), "--out", str(out)], check=False, cwd=ROOT)
    verdict = json.loads((out / "verdict.json").read_text())
    if verdict["verdict"] != "pass":
        sys.exit(f"counterbench's run did not pass: {verdict['reason']}")
    return float(verdict["latency"]["ok_ops_per_s"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    wrk_rates, cb_rates = [], []
    with ReferenceService() as svc, tempfile.TemporaryDirectory() as d:
        for i in range(args.repeat):
            wrk_rates.append(wrk(svc.url, args.seconds, Path(d)))
            cb_rates.append(counterbench(svc.url, seconds=args.seconds, processes=args.processes,
                                         out=Path(d) / f"run-{i}"))
    w, c = sorted(wrk_rates)[len(wrk_rates) // 2], sorted(cb_rates)[len(cb_rates) // 2]
    print(f"medians of {args.repeat} interleaved rounds against one reference service (memory store)")
    print(f"wrk -t2 -c50                                     {w:9.0f} req/s")
    print(f"counterbench http-counter ({args.processes} proc, 50 users)       {c:9.0f} ops/s  {c / w:.1%} of wrk")


if __name__ == "__main__":
    main()
