"""The real A/A test of `compare`: one scenario as two groups, many times; how often is a difference called?

    .venv/bin/python bench/aa_compare.py [--comparisons 20] [--runs 4] [--duration 2] [--scenario redis-counter]

Runs the scenario ``comparisons * runs * 2`` times back to back on this machine (one
`counterbench run --repeat`), then splits consecutive runs alternately into groups A and B:
comparison c takes runs [2*runs*c, 2*runs*(c+1)), A the even ones, B the odd ones. Every pair of
groups is the same scenario on the same machine, so any difference `compare` calls is a false
one: it must call one in at most 5% of comparisons, on each figure (ok ops/s, p50, p99, p99.9),
with the default ±2% noise band. Also printed: how often the noise band alone saved the call
(the same comparisons with no band), and how many runs the undecided ones asked for.

Load goes to the embedded local redis-server only; a run of the defaults takes about 10 minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from harness.report.compare import row
from harness.report.data import load_run
from harness.report.stats import METRICS, difference

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--comparisons", type=int, default=20)
    p.add_argument("--runs", type=int, default=4, help="runs per group (4 is the least that gives a 95%% interval)")
    p.add_argument("--duration", type=int, default=2, help="seconds of load per run")
    p.add_argument("--scenario", default="redis-counter")
    p.add_argument("--no-machine", action="store_true", help="(make bench prints the machine once, first)")
    args = p.parse_args()
    total = args.comparisons * args.runs * 2
    with tempfile.TemporaryDirectory(prefix="counterbench-aa-") as tmp:
        out = Path(tmp)
        print(f"{total} runs of {args.scenario}, {args.duration} s each ...", flush=True)
        proc = subprocess.run([str(ROOT / ".venv/bin/counterbench"), "run", "-s", args.scenario, "-q", "--no-report",
                               "--repeat", str(total), "--duration", str(args.duration), "--out", str(out)],
                              cwd=ROOT, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
            return 2
        rows = [row(load_run(out / f"{args.scenario}-{k + 1}")) for k in range(total)]
    print(f"\nA/A: {args.comparisons} comparisons of {args.runs} vs {args.runs} runs of one scenario")
    worst = 0.0
    for metric in (m for m in METRICS if m != "usd_per_M"):  # no prices: the figures measured
        calls, no_band, more = Counter[str](), Counter[str](), []
        for c in range(args.comparisons):
            chunk = rows[2 * args.runs * c: 2 * args.runs * (c + 1)]
            a, b = [float(r[metric]) for r in chunk[0::2]], [float(r[metric]) for r in chunk[1::2]]
            d = difference("A", a, "B", b, metric=metric)
            calls[d.call] += 1
            no_band[difference("A", a, "B", b, metric=metric, band=0.0).call] += 1
            if d.call == "undecided" and d.more_runs:
                more.append(d.more_runs)
        called = calls["better"] + calls["worse"]
        worst = max(worst, called / args.comparisons)
        print(f"  {METRICS[metric][0]:9} called significant {called:2} of {args.comparisons} "
              f"({called / args.comparisons:.0%}); same {calls['same']}, undecided {calls['undecided']}"
              f"{f' (asking for {min(more)} to {max(more)} more runs)' if more else ''}; "
              f"with no noise band: called {no_band['better'] + no_band['worse']}")
    print(f"\nworst figure: a difference called in {worst:.0%} of A/A comparisons (must be <= 5%)")
    return 0 if worst <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
