"""What recording costs per op: history records, 200 ms block flushes, latency histograms.

    .venv/bin/python bench/history_overhead.py [--ops 1000000] [--rounds 3]

Measured side by side in one run, each variant once per round, the rounds interleaved (odd rounds
in reverse order): the load loop's path (each completed op recorded whole, held as columns and
encoded in bulk), the same with 200 ms flushes and with the latency histograms taken from the
flushed blocks, the eager path (an invoke record, then a completion record, each packed on the
spot: what ops still out at a flush take), and the version-1 JSON-lines writer (its hot path, kept
here for the comparison), and the blocks not compressed. Every variant gets the two clock
readings the load loop takes anyway; its net cost is its time less the loop alone's in the same
round. Prints microseconds per op and the share of a Redis op's client-side CPU budget (~60 us for
a lean RESP round trip on this kind of machine): the median of the rounds with their range; then
the bytes per op written, compressed (version 5) and not.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from _rounds import how, interleave, parse, parser, spread

from harness.core.ops import Completion, OpKind, Outcome
from harness.history import HistoryWriter, history_file
from harness.history.format import _ROWS
from harness.metrics import LatencyRecorder
from harness.metrics.latencies import HistoryLatencies

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


class UncompressedWriter(HistoryWriter):
    """The hand-over without compression, for comparison: the block's records and op rows as they are (not
    a file the reader reads: what compressing costs the load loop)."""

    def _write_block(self) -> None:
        if self._buf or self._rows:
            self._out += self._buf + b"".join(r.tobytes() for r in self._rows)
            self._rows, self._room = [], _ROWS
            del self._buf[:]
        if self._out:
            self._write_all(self._out)


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
    p = parser(__doc__)
    p.add_argument("--ops", type=int, default=1_000_000,
                   help="ops per variant and round (runs of a second or more: shorter ones are all noise)")
    args = parse(p)
    print(f"history_overhead: recording cost per op in isolation, {args.ops:,} ops per variant; "
          f"{how(args.rounds)}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)

        def writer(tag: str, r: int, recorder: LatencyRecorder | None = None) -> HistoryWriter:
            return HistoryWriter(history_file(folder, f"{tag}{r}"), worker=tag, run_id="bench", scenario="bench",
                                 on_latencies=None if recorder is None else HistoryLatencies(recorder))

        def with_histograms(r: int) -> float:
            recorder = LatencyRecorder(folder / f"c{r}.hlog")
            return run(writer("c", r, recorder), args.ops, whole=True, flush=True, recorder=recorder)

        got = interleave(args.rounds, {
            "the loop alone (nothing recorded)": lambda r: run(None, args.ops, whole=True, flush=True),
            "recorded whole, no flush": lambda r: run(writer("a", r), args.ops, whole=True, flush=False),
            "recorded whole + 200 ms flushes": lambda r: run(writer("b", r), args.ops, whole=True, flush=True),
            "... + latency histograms": with_histograms,
            "... not compressed": lambda r: run(
                UncompressedWriter(history_file(folder, f"v3-{r}"), worker="v3", run_id="bench", scenario="bench"),
                args.ops, whole=True, flush=True),
            "invoke + complete + flushes": lambda r: run(writer("d", r), args.ops, whole=False, flush=True),
            "version 1 (JSON lines) + flushes": lambda r: run(JsonLinesWriter(folder / f"v1-{r}.jsonl"), args.ops,
                                                              whole=False, flush=True),
        })
        on_disk = {tag: sum(p.stat().st_size for p in folder.glob(f"{tag}[0-9]*.cbhist")) / (args.ops * args.rounds)
                   for tag in ("b", "v3-")}
    loop_name, loop = next(iter(got.items()))
    print(f"  {'variant':36} {'us/op':>20} {'net us/op':>22} {'of a 60 us op':>24}")
    print(f"  {loop_name:36} {spread(loop, '.2f'):>20}")
    for name, us in list(got.items())[1:]:
        net = [u - base for u, base in zip(us, loop, strict=True)]  # less the loop alone, round by round
        print(f"  {name:36} {spread(us, '.2f'):>20} {spread(net, '.2f'):>22} "
              f"{spread([n / BUDGET_US for n in net], '.1%'):>24}", flush=True)
    print(f"  on disk: {on_disk['b']:.1f} bytes per op (version 5), {on_disk['v3-']:.1f} not compressed; these ops "
          "are alike, so they compress more than a real run's (bench/check_scaling.py)")


if __name__ == "__main__":
    main()
