"""counterbench's http-counter against wrk, side by side on the same reference service.

    .venv/bin/python bench/http_load.py [--seconds 10] [--processes 2] [--rounds 3]

wrk (Debian's package) POSTs the same increment with 2 threads and 50 connections; counterbench
runs http-counter with 50 users and full recording. Rounds alternate between the two (wrk,
counterbench, counterbench, wrk, ...); each figure is the median of the rounds with their range,
the ratio taken round by round.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _rounds import how, interleave, parse, parser, ratios, spread

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
        sys.exit("wrk is missing: apt-get install wrk (or `make bench`)")
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
    p = parser(__doc__)
    p.add_argument("--seconds", type=int, default=10, help="length of each run")
    p.add_argument("--processes", type=int, default=2, help="counterbench's load processes")
    args = parse(p)
    print(f"http_load: wrk vs counterbench http-counter on one reference service (memory store), "
          f"{args.seconds} s runs; {how(args.rounds)}", flush=True)
    with ReferenceService() as svc, tempfile.TemporaryDirectory() as d:
        got = interleave(args.rounds, {
            "wrk": lambda r: wrk(svc.url, args.seconds, Path(d)),
            "counterbench": lambda r: counterbench(svc.url, seconds=args.seconds, processes=args.processes,
                                                   out=Path(d) / f"run-{r}"),
        })
    w, c = got["wrk"], got["counterbench"]
    print(f"  {'wrk -t2 -c50':48} {spread(w, ',.0f'):>24} req/s")
    print(f"  {f'counterbench http-counter ({args.processes} proc, 50 users)':48} {spread(c, ',.0f'):>24} ops/s"
          f"   {spread(ratios(c, w), '.1%')} of wrk (target >= 75%)", flush=True)


if __name__ == "__main__":
    main()
