"""A synthetic counter run's histories, written straight in history format version 5, with numpy, in chunks.

    synthesize_history(folder, ops)  # <folder>/history/w*.cbhist, <folder>/metrics/w*.hlog; returns the final value

What `bench/check_scaling.py` checks: the history a correct run of ``redis-counter`` leaves, at any size
(1,000M ops in minutes, in bounded memory), made half a million ops at a time instead of op by op with
the writer. The files are what ``HistoryWriter`` writes for the same ops: its header (taken from a real
writer, so no field is missing), then blocks coded by ``format.encode_block_v5``, the footer. The ops are
first laid out as version 4's records (an op's invoke when it is sent, its completion when it is answered),
cut into blocks of 16,384 records (about 8,192 ops: the writer's op rows per block), and each block becomes
what the writer makes of it: an op invoked and answered ok within the block (a value, one attempt) an op row,
taking the ids its block's invokes leave; an op still out at the block's end, and every op that failed or
is indeterminate, its records (the writer writes in-flight ops' invokes as each block is handed over). The
ops:

* ``processes`` load processes (w0, w1, ...) run at once on one hot key, ``cb:bench:counter``, +1 each. The
  run is a sequence of steps, process ``k % processes`` taking step ``k`` (its op ``k // processes``): the
  processes start together and their ops alternate, in time and in value. Steps are ``ns_per_op`` apart on
  average (a seeded exponential gap, at least 2 ns: about 5M ops/s in all by default).
* As the op-by-op synthesizer did, per process: every ``1/reads``-th op is a read; an increment completes
  at the step its process sends its ``in_flight - 1``-th next increment (at most ``in_flight`` out: with 8
  at 5M ops/s an increment takes ~3 us, a read ~0.1 us); the one completing at the process's op ``i``
  fails (not applied; "redis: connection reset before sending") when ``i % 100 == 17``, is indeterminate
  (a timeout after ``1 + i % 3`` attempts; applied) when ``i % 1000 == 500``; the last ``in_flight - 1``
  increments of each process never complete (not applied).
* Linearizable at the nanosecond: a step is sent at ``t``, answered at ``t + d`` (1 <= d <= the gap to the
  next step, so each file's times never go back); the increment completing at it takes effect at ``t + 1``
  and returns the counter after it; a read sees the counter at ``t + 1``: every change of an earlier step,
  none of a later. Every check of a counter passes.

The latency logs hold what the op-by-op synthesizer logged -- increments only: ok 200 + i % 5000 us, failed
90 us, indeterminate 1 s -- in the history's 1 s windows, as LatencyRecorder writes them (each window's
histogram recorded value by value with counts, identical to recording each op); the CPU log says the
process was busy (as the op-by-op synthesizer's own was).

``flaw=True`` makes one read, near the middle, stale by 1,000: the `reads` check must then fail.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import numpy as np
import zstandard

from harness.core.secrets import scrub
from harness.history import HistoryWriter, history_file
from harness.history.format import (
    _ERROR_CHARS,
    _OK_COMPLETION_HEAD,
    _ROWS,
    _ZSTD_LEVEL,
    RECORD_BYTES,
    T_FOOTER,
    T_INVOKE,
    T_NO_VALUE,
    T_STRING,
    T_TEXT,
    T_VALUE,
    _pack,
    encode_block_v5,
)
from harness.metrics.hdr import WINDOW_NS, WINDOW_S, new_histogram

KEY = "cb:bench:counter"
FAIL_ERROR = "redis: connection reset before sending"
TIMEOUT_ERROR = "timeout"
BLOCK_RECORDS = 2 * _ROWS  # version 4's records of a block: about the writer's op rows per block
# the run's ops made at a time: each process's records of a chunk stay under 32 MiB, which glibc then
# serves from its heap, again and again, instead of mapping (and faulting in) fresh pages each time
CHUNK_OPS = 1 << 19
_KIND_READ = 2
_OUT_FAIL, _OUT_INDET = 1, 2
_OK_US, _OK_SPREAD, _FAIL_US, _INDET_US = 200, 5000, 90, 1_000_000  # the op-by-op synthesizer's latencies
_CPU_SHARE = 1.0  # per window in the CPU log


def _header(worker: str, run_id: str, scenario: str) -> dict[str, Any]:
    """The header the real writer writes for ``worker``, read back from a throwaway file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.cbhist"
        HistoryWriter(path, worker=worker, run_id=run_id, scenario=scenario).close()
        with open(path, "rb") as f:
            return dict(json.loads(f.readline()))


def _string_records(ref: int, text: str) -> Any:
    """A string's definition ("s", then "x" records), as the writer's ``_define`` packs it: (k, 4) uint64."""
    data = text.encode("utf-8", "surrogatepass")
    rec = bytearray(_pack(T_STRING, 0, 0, ref, len(data), 0, 0))
    data += b"\0" * (-len(data) % (RECORD_BYTES - 1))
    for i in range(0, len(data), RECORD_BYTES - 1):
        rec += bytes([T_TEXT]) + data[i:i + RECORD_BYTES - 1]
    return np.frombuffer(bytes(rec), dtype="<u8").reshape(-1, 4)


class _BlockFile:
    """One process's history file: version 4's records handed over a chunk at a time (by one thread, in
    order), cut into blocks of BLOCK_RECORDS, each written as the writer makes a version-5 block of it."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "xb")  # noqa: SIM115 - closed by add(last=True)
        self._f.write(json.dumps(header).encode() + b"\n")
        self._cctx = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        self._left = np.empty((0, 4), dtype="<u8")  # records short of a whole block, for the next chunk
        self._next_id = 0  # the first op id of the next block

    def add(self, rec: Any, last: bool) -> None:
        """Records (an (n, 4) uint64 array: version 3's records as four words), in order; ``last``: the footer
        is the last of them."""
        if len(self._left):
            rec = np.concatenate([self._left, rec])
        whole = len(rec) // BLOCK_RECORDS
        out = [self._block(rec[b * BLOCK_RECORDS:(b + 1) * BLOCK_RECORDS]) for b in range(whole)]
        rest = rec[whole * BLOCK_RECORDS:]
        if last and len(rest):
            out.append(self._block(rest))
            rest = rest[:0]
        self._left = rest.copy()
        self._f.write(b"".join(out))
        if last:  # durable, as the writer's close makes it
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def _block(self, blk: Any) -> bytes:
        """A block's records as a version-5 block: the ops it both sends and answers ok, whole, as op rows (in
        the order answered, taking the ids its kept invokes leave), the other records as they are."""
        tag = blk[:, 0] & np.uint64(0xFF)
        inv = np.flatnonzero(tag == T_INVOKE)
        comp = np.flatnonzero((tag == T_VALUE) | (tag == T_NO_VALUE))
        first = self._next_id
        self._next_id += len(inv)  # the block's ids: one per invoke, as in version 4
        cid = blk[comp, 1].astype(np.int64) - first
        whole = (cid >= 0) & (cid < len(inv)) & (blk[comp, 0] == _OK_COMPLETION_HEAD)
        c_rows = comp[whole]
        i_rows = inv[cid[whole]]  # version 4's invokes have the block's ids in order
        head = blk[i_rows, 0]
        rows = np.empty((5, len(c_rows)), dtype="<i8")
        rows[0] = (head >> np.uint64(32)) | ((head >> np.uint64(8)) & np.uint64(0xFF)) << np.uint64(32)
        rows[1], rows[2] = blk[i_rows, 3], blk[i_rows, 2]
        rows[3], rows[4] = blk[c_rows, 2], blk[c_rows, 3]
        keep = np.ones(len(blk), dtype=bool)
        keep[c_rows] = False
        keep[i_rows] = False
        return encode_block_v5(np.ascontiguousarray(blk[keep]).tobytes(), rows, self._cctx)


class _LatencyLog:
    """One process's latency log and CPU log, as LatencyRecorder writes them, in 1 s windows of the history's
    clock (from ``anchor_ns``): counted as the ops come, in time order, written once the ops have passed them."""

    def __init__(self, path: Path, *, start_wall_s: float, anchor_ns: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._anchor = anchor_ns
        self._f: IO[str] = open(path, "x", encoding="utf-8")  # noqa: SIM115 - closed by close
        self._f.write("#[counterbench latency histograms, values in microseconds]\n")
        self._f.write(f"#[StartTime: {start_wall_s:.3f} (seconds since epoch)]\n")
        self._f.write('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"\n')
        self._cpu: IO[str] = open(path.with_suffix(".cpu.csv"), "x", encoding="utf-8")  # noqa: SIM115
        self._cpu.write("window_start_s,cpu_s\n")
        # open windows: tag -> its values' counts (ok: by value - _OK_US; the others: one value, a count)
        self._open: dict[int, dict[str, Any]] = {}

    def add(self, completed_ns: Any, ok_value: Any, fail_before: Any, indet_before: Any) -> None:
        """A chunk's ops, in order: their completions' times (nondecreasing), each ok increment's latency less
        _OK_US (_OK_SPREAD: not an ok increment), and the failed and indeterminate increments before each op
        (running counts, from 0). Then writes the windows before the last op's."""
        n = len(completed_ns)
        if not n:
            return
        lo = (int(completed_ns[0]) - self._anchor) // WINDOW_NS
        hi = (int(completed_ns[-1]) - self._anchor) // WINDOW_NS
        cut = [0, *np.searchsorted(completed_ns, self._anchor + WINDOW_NS * np.arange(lo + 1, hi + 1)).tolist(), n]
        for w in range(lo, hi + 1):
            a, z = cut[w - lo], cut[w - lo + 1]
            if a == z:
                continue
            tags = self._open.setdefault(w, {})
            counts = np.bincount(ok_value[a:z], minlength=_OK_SPREAD + 1)[:_OK_SPREAD]
            if counts.any():
                tags["increment.ok"] = tags["increment.ok"] + counts if "increment.ok" in tags else counts
            for tag, running in (("increment.fail", fail_before), ("increment.indeterminate", indet_before)):
                k = int(running[z] - running[a])
                if k:
                    tags[tag] = tags.get(tag, 0) + k
        self._write(hi)

    def _write(self, before: int | None) -> None:
        for w in sorted(w for w in self._open if before is None or w < before):
            for tag, counts in self._open.pop(w).items():
                h = new_histogram()
                if tag == "increment.ok":
                    for v in np.flatnonzero(counts).tolist():
                        h.record_value(_OK_US + v, int(counts[v]))
                else:
                    h.record_value(_FAIL_US if tag == "increment.fail" else _INDET_US, counts)
                self._f.write(f"Tag={tag},{w * WINDOW_S:.3f},{WINDOW_S:.3f},{h.get_max_value() / 1000:.3f},"
                              f"{h.encode().decode()}\n")
            self._cpu.write(f"{w * WINDOW_S:.3f},{_CPU_SHARE * WINDOW_S:.4f}\n")

    def close(self) -> None:
        self._write(None)
        self._f.close()
        self._cpu.close()


def _write_step_of(j: Any, read_every: int) -> Any:
    """The process's op at which it sent its ``j``-th increment (reads taking every ``read_every``-th op)."""
    return j + j // (read_every - 1) if read_every >= 2 else j


def _intern(strings: dict[str, int], key: str, fail: Any, indet: Any, texts: dict[str, str]) -> list[tuple[int, int]]:
    """Interns the strings first used by a process's ops of a chunk as its writer would (ids in order of first
    use); returns where each goes: (op in the chunk, 0 for its invoke / 1 for its completion), by id."""
    first: list[tuple[int, int, str]] = []
    if key not in strings and len(fail):
        first.append((0, 0, key))
    for what, mask in (("fail", fail), ("indet", indet)):
        if texts[what] not in strings and mask.any():
            first.append((int(np.argmax(mask)), 1, texts[what]))
    first.sort()
    for _, _, text in first:
        strings[text] = len(strings) + 1
    return [(op, part) for op, part, _ in first]


def _with_strings(rows: Any, strings: dict[str, int], at: list[tuple[int, int]], completes: Any) -> Any:
    """``rows`` with the definitions of the strings ``_intern`` placed (ids from ``len(strings) - len(at) + 1``)
    inserted before the records that first use them. ``completes``: which ops' completions are in ``rows``."""
    if not at:
        return rows
    by_id = {ref: text for text, ref in strings.items()}
    done_before = np.cumsum(completes)
    first_ref = len(strings) - len(at) + 1
    for n, (op, part) in reversed(list(enumerate(at))):  # the last first: the earlier positions hold
        row = op + (int(done_before[op]) if part else int(done_before[op - 1]) if op else 0)
        rows = np.insert(rows, row, _string_records(first_ref + n, by_id[first_ref + n]), axis=0)
    return rows


def synthesize_history(folder: Path, ops: int, *, processes: int = 2, in_flight: int = 8, reads: float = 0.1,
                       ns_per_op: float = 200.0, seed: int = 0, key: str = KEY, run_id: str = "bench",
                       scenario: str = "redis-counter", flaw: bool = False) -> int:
    """``<folder>/history/w*.cbhist`` and ``<folder>/metrics/w*.hlog`` (and ``.cpu.csv``) of a run of ``ops``
    ops in all (see the module); returns the counter's final value (it starts at 0)."""
    if in_flight < 1 or processes < 1 or ops < 0 or not 0 <= reads <= 1:
        raise ValueError("in_flight and processes must be at least 1, ops at least 0, reads within [0, 1]")
    P, F = processes, in_flight
    R = round(1 / reads) if reads else 0  # every R-th op of a process is a read (R == 1: reads only)
    names = [f"w{w}" for w in range(P)]
    headers = [_header(name, run_id, scenario) for name in names]
    anchor = int(headers[0]["anchor_monotonic_ns"])  # the processes start together: one anchor, one clock
    for h in headers:
        h["anchor_monotonic_ns"], h["anchor_wall_ns"] = anchor, headers[0]["anchor_wall_ns"]
    files = [_BlockFile(history_file(folder / "history", name), h) for name, h in zip(names, headers, strict=True)]
    logs = [_LatencyLog(folder / "metrics" / f"{name}.hlog", start_wall_s=int(headers[0]["anchor_wall_ns"]) / 1e9,
                        anchor_ns=anchor) for name in names]
    steps = [ops // P + (w < ops % P) for w in range(P)]  # each process's ops
    strings: list[dict[str, int]] = [{} for _ in names]  # each process's, as its writer interns them
    texts = {"fail": scrub(FAIL_ERROR)[:_ERROR_CHARS], "indet": scrub(TIMEOUT_ERROR)[:_ERROR_CHARS]}  # as complete()
    completed = [0] * P
    flaw_op = (steps[0] // 2 // R * R + R - 1) if flaw and R else -1  # a read of w0's near the middle
    rng = np.random.default_rng(seed)
    t_next = anchor + 1000  # the first step's send, on the processes' clock
    value = 0  # the counter
    per_chunk = max(CHUNK_OPS // P, 1)  # each process's ops in a chunk
    pools = [ThreadPoolExecutor(1, thread_name_prefix=f"synth-{name}") for name in names]
    pending: list[Future[None] | None] = [None] * P
    try:
        for s0 in range(0, max(steps[0], 1), per_chunk):
            s1 = min(s0 + per_chunk, steps[0])
            m = s1 - s0
            i = np.arange(s0, s1, dtype=np.int64)
            # what each op does (alike in every process): a read, or an increment sent as the one sent
            # in_flight - 1 increments before completes, with the outcome the op-by-op synthesizer gave it
            if R == 1:
                is_read = np.ones(m, dtype=bool)
                j = np.zeros(m, dtype=np.int64)
            elif R:
                is_read = i % R == R - 1
                j = i - i // R  # the increments sent before this op
            else:
                is_read = np.zeros(m, dtype=bool)
                j = i
            done_write = j >= F - 1
            done_write &= ~is_read
            fail = i % 100 == 17
            fail &= done_write
            indet = i % 1000 == 500
            indet &= done_write
            applied = done_write & ~fail
            completes = done_write | is_read
            answered_op = np.where(is_read, i, _write_step_of(j - (F - 1), R))
            del j
            # the counter before the step: every process's changes of the steps before; process w's change at
            # the step lands after those of the processes before it
            before = np.cumsum(applied)
            before -= applied
            before *= P
            before += value
            at_last = [min(s1, steps[w]) - s0 - 1 for w in range(P)]  # each process's last op in the chunk
            value = int(before[-1]) + sum(int(applied[-1]) for w in range(P) if at_last[w] == m - 1) if m else value
            # the latency log's view: ok increments' values, running counts of the others
            ok_value = np.where(applied & ~indet, i % _OK_SPREAD, _OK_SPREAD)
            fail_before = np.r_[0, np.cumsum(fail)]
            indet_before = np.r_[0, np.cumsum(indet)]
            # times, a row per step and a column per process: sent at b, answered at b + d
            gap = rng.exponential(max(ns_per_op - 1.5, 0.0), (m, P)).astype(np.int64)  # floored: - 0.5
            gap += 2
            b = np.cumsum(gap.ravel()).reshape(m, P)  # each step's gap is the one after it: b is the sum before
            b -= gap
            b += t_next
            t_next = int(b[-1, -1] + gap[-1, -1]) if m else t_next
            c = (rng.random((m, P)) * gap).astype(np.int64)
            c += 1
            np.minimum(c, gap, out=c)
            c += b
            del gap
            # the records, alike in every process but for times, values and string ids
            shared = np.empty((m, 2, 4), dtype=np.int64)
            np.copyto(shared[:, 0, 0], np.where(is_read, T_INVOKE | _KIND_READ << 8, T_INVOKE))
            shared[:, 0, 1] = i
            np.logical_not(is_read, out=shared[:, 0, 3], casting="unsafe")  # amount 1 (a read: 0)
            head = np.full(m, _OK_COMPLETION_HEAD, dtype=np.int64)
            if fail.any():
                head[fail] = T_NO_VALUE | _OUT_FAIL << 8 | 1 << 16
            if indet.any():
                head[indet] = T_NO_VALUE | _OUT_INDET << 8 | (1 + i[indet] % 3) << 16
            shared[:, 1, 0] = head
            shared[:, 1, 1] = answered_op
            no_value = fail | indet
            last = s1 >= steps[0]
            for w in range(P):
                n = at_last[w] + 1  # this process's ops in the chunk
                rec = shared[:n].copy()
                at = _intern(strings[w], key, fail[:n], indet[:n], texts)
                rec[:, 0, 0] |= strings[w].get(key, 0) << 32
                for what, mask in (("fail", fail[:n]), ("indet", indet[:n])):
                    if mask.any():
                        rec[mask, 1, 0] |= strings[w][texts[what]] << 32
                rec[:, 0, 2] = b[:n, w]
                rec[:, 1, 2] = c[:n, w]
                val = rec[:, 1, 3]
                np.multiply(applied[:n], w + 1, out=val)
                val += before[:n]
                if w == 0 and s0 <= flaw_op < s1:
                    val[flaw_op - s0] = max(int(val[flaw_op - s0]) - 1000, 0)
                val[no_value[:n]] = 0
                rows = rec.reshape(-1, 4)
                done = completes[:n]
                if not done.all():  # the first ops: increments sent while fewer than in_flight were out
                    rows = rows[np.stack([np.ones(n, dtype=bool), done], axis=1).ravel()]
                completed[w] += int(np.count_nonzero(done))
                rows = _with_strings(rows.view("<u8"), strings[w], at, done)
                if last:
                    rows = np.concatenate([rows, np.array([[T_FOOTER, steps[w], 0, completed[w]]], dtype="<u8")])
                logs[w].add(c[:n, w], ok_value[:n], fail_before[:n + 1], indet_before[:n + 1])
                if pending[w] is not None:
                    pending[w].result()  # type: ignore[union-attr]
                pending[w] = pools[w].submit(files[w].add, rows, last)
        for p in pending:
            if p is not None:
                p.result()
    finally:
        for pool in pools:
            pool.shutdown()
        for log in logs:
            log.close()
    return value
