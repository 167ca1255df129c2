"""What recording costs per op: history records, 200 ms block flushes, latency histograms.

    .venv/bin/python bench/history_overhead.py [--ops 200000] [--rounds 3]

Measured side by side in one run (best of the rounds, interleaved): the load loop's path (each
completed op recorded whole, held as columns and encoded in bulk), the same with 200 ms flushes
and with the latency histograms taken from the flushed blocks, the eager path (an invoke record,
then a completion record, each packed on the spot: what ops still out at a flush take), and the
version-1 JSON-lines writer (its hot path, kept here for the comparison). Every variant gets the
two clock readings the load loop takes anyway. Prints microseconds per op and the share of a
Redis op's client-side CPU budget (~60 us for a lean RESP round trip on this kind of machine).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness.history import HistoryWriter, history_file
from harness.metrics import LatencyRecorder
from harness.metrics.latencies import HistoryLatencies
from harness.ops import Completion, OpKind, Outcome

BUDGET_US = 60.0  # client CPU per Redis op with a lean RESP client (DESIGN.md)
_monotonic_ns = time.monotonic_ns


class JsonLinesWriter:
    """The version-1 writer's hot path (JSON lines through a 256 KiB text buffer), for comparison."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "x", encoding="utf-8", buffering=1 << 18)  # noqa: SIM115
        self._next_id = 0
        self._completed = 0
        self._anchor_ns = _monotonic_ns()
        self._quoted: dict[str, str] = {}

    def invoke(self, key: str, kind: OpKind, amount: int, t_ns: int | None = None) -> int:
        op_id = self._next_id
        self._next_id = op_id + 1
        qkey = self._quoted.get(key)
        if qkey is None:
            qkey = self._quoted[key] = json.dumps(key)
        t = (_monotonic_ns() - self._anchor_ns) // 1000
        self._f.write(f'["i",{op_id},{t},{qkey},"{kind}",{amount}]\n')
        return op_id

    def complete(self, op_id: int, done: Completion, t_ns: int | None = None) -> None:
        self._completed += 1
        t = (_monotonic_ns() - self._anchor_ns) // 1000
        if done.outcome is Outcome.OK and done.error is None and done.attempts == 1:
            value = "null" if done.value is None else int(done.value)
            self._f.write(f'["c",{op_id},{t},"ok",{value},null]\n')
            return
        value = "null" if done.value is None else str(int(done.value))
        error = "null" if done.error is None else json.dumps(done.error[:200])
        more = f",{done.attempts}" if done.attempts > 1 else ""
        self._f.write(f'["c",{op_id},{t},"{done.outcome.value}",{value},{error}{more}]\n')

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.write(json.dumps({"type": "footer", "invoked": self._next_id, "completed": self._completed}) + "\n")
        self._f.close()


def run(w: HistoryWriter | JsonLinesWriter | None, ops: int, *, whole: bool, flush: bool,
        recorder: LatencyRecorder | None = None) -> float:
    done = Completion.ok(1)
    next_flush = time.monotonic() + 0.2
    key = "cb:bench:counter"
    t0 = time.perf_counter()
    for i in range(ops):
        sent = _monotonic_ns()
        result = Completion.ok(i) if i % 2 else done
        now = _monotonic_ns()
        if w is None:  # the loop alone: its clock readings and completions, nothing recorded
            pass
        elif whole:
            w.record(key, "incr", 1, sent, result, now)  # type: ignore[union-attr]
        else:
            w.complete(w.invoke(key, "incr", 1, sent), result, now)
        if flush and time.monotonic() >= next_flush:
            if w is not None:
                w.flush()
            next_flush += 0.2
    if w is not None:
        w.close()
    if recorder is not None:
        recorder.close()
    return (time.perf_counter() - t0) / ops * 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ops", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    names = ["the loop alone (nothing recorded)", "recorded whole, no flush", "recorded whole + 200 ms flushes",
             "... + latency histograms", "invoke + complete + flushes", "version 1 (JSON lines) + flushes"]
    best = dict.fromkeys(names, float("inf"))
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        for r in range(args.rounds):
            def writer(tag: str, r: int = r, recorder: LatencyRecorder | None = None) -> HistoryWriter:
                return HistoryWriter(history_file(folder, f"{tag}{r}"), worker=tag, run_id="bench", scenario="bench",
                                     on_latencies=None if recorder is None else HistoryLatencies(recorder))

            recorder = LatencyRecorder(folder / f"c{r}.hlog")
            got = [run(None, args.ops, whole=True, flush=True),
                   run(writer("a"), args.ops, whole=True, flush=False),
                   run(writer("b"), args.ops, whole=True, flush=True),
                   run(writer("c", recorder=recorder), args.ops, whole=True, flush=True, recorder=recorder),
                   run(writer("d"), args.ops, whole=False, flush=True),
                   run(JsonLinesWriter(folder / f"v1-{r}.jsonl"), args.ops, whole=False, flush=True)]
            for name, us in zip(names, got, strict=True):
                best[name] = min(best[name], us)
    loop = best[names[0]]
    print(f"{'recording (best of ' + str(args.rounds) + ')':36} {'us/op':>7} {'net us/op':>10} {'of a 60 us op':>14}")
    for name in names:
        us = best[name]
        net = us - loop
        print(f"{name:36} {us:7.2f} {net:10.2f} {net / BUDGET_US:13.1%}")


if __name__ == "__main__":
    main()
