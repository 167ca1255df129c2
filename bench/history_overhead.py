"""What recording costs per op: history invoke + completion, 200 ms block flushes, HdrHistogram.

    .venv/bin/python bench/history_overhead.py [--ops 200000]

Measured side by side in one run; prints microseconds per op and the share of a Redis op's
client-side CPU budget (~60 us for a lean RESP round trip on this kind of machine) it takes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness.history import HistoryWriter
from harness.metrics import LatencyRecorder
from harness.ops import Completion

BUDGET_US = 60.0  # client CPU per Redis op with a lean RESP client (DESIGN.md)


def run(ops: int, *, flush: bool, record: bool, folder: Path, tag: str) -> float:
    w = HistoryWriter(folder / f"{tag}.jsonl", worker=tag, run_id="bench", scenario="bench")
    r = LatencyRecorder(folder / f"{tag}.hlog") if record else None
    done = Completion.ok(1)
    next_flush = time.monotonic() + 0.2
    t0 = time.perf_counter()
    for i in range(ops):
        op = w.invoke("cb:bench:counter", "incr", 1)
        w.complete(op, Completion.ok(i) if i % 2 else done)
        if r is not None:
            r.record("increment.ok", 150 + i % 1000)
        if flush and time.monotonic() >= next_flush:
            w.flush()
            next_flush += 0.2
    w.close()
    if r is not None:
        r.close()
    return (time.perf_counter() - t0) / ops * 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ops", type=int, default=200_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        rows = [("history, no flush", run(args.ops, flush=False, record=False, folder=folder, tag="a")),
                ("history + 200 ms flushes", run(args.ops, flush=True, record=False, folder=folder, tag="b")),
                ("history + flushes + HdrHistogram", run(args.ops, flush=True, record=True, folder=folder, tag="c"))]
    base = rows[0][1]
    print(f"{'recording':36} {'us/op':>8} {'vs no flush':>12} {'of a 60 us op':>14}")
    for name, us in rows:
        print(f"{name:36} {us:8.2f} {us / base:11.2f}x {us / BUDGET_US:13.1%}")


if __name__ == "__main__":
    main()
