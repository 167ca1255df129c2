"""History format version 5 against versions 4 and 3: bytes per op on disk, and reading speed, side by side.

    .venv/bin/python bench/history_format.py [--ops 5000000] [--rounds 5]

One load process's ops as the load loop records them (sent every ~14 us, answered after 0.1-2 ms,
each value some tens above the one before: other processes' increments in between; 10% reads),
written with the real writer (version 5: op rows), and the same ops as version 4 and 3 files: the
records the version-4 writer wrote for them (each op's invoke and completion, the key's string first;
blocks of 8,192 records coded by ``format.encode_block``), and those records as they are. Then each
read back with the real reader, every op handed over as columns (what `counterbench check` reads), in
interleaved rounds: median (range) of the seconds, ops per second, and version 5's time over the
others' round by round. Target (issue #23): <= 16 bytes per op.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import zstandard
from _rounds import how, interleave, parse, parser, ratios, spread
from _synth import _OK_COMPLETION_HEAD, _string_records

from harness.core.ops import Completion
from harness.history import HistoryWriter, read_worker_history
from harness.history.format import RECORD_BYTES, T_INVOKE, encode_block

BYTES_PER_OP = 16.0
KEY = "cb:bench:counter"
V4_BLOCK = 8192  # records: what the version-4 writer handed over at full speed


def load_loop(ops: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    t0 = 10**12 + np.cumsum(rng.exponential(14_000, ops)).astype(np.int64)
    t1 = t0 + rng.lognormal(np.log(300_000), 0.6, ops).astype(np.int64)
    values = np.cumsum(rng.integers(1, 60, ops))
    reads = rng.random(ops) < 0.1
    return t0, t1, values, reads


def write_v5(path: Path, ops: int) -> None:
    t0, t1, values, reads = load_loop(ops)
    w = HistoryWriter(path, worker="w0", run_id="bench", scenario="bench")
    ok = Completion.ok
    for a, b, v, r in zip(t0.tolist(), t1.tolist(), values.tolist(), reads.tolist(), strict=True):
        w.record(KEY, "read" if r else "incr", 0 if r else 1, a, ok(v), b)
    w.close()


def as_v4_and_v3(v5: Path, v4: Path, v3: Path, ops: int) -> None:
    """The same ops as the version-4 writer recorded them, and those records as a version-3 file."""
    t0, t1, values, reads = load_loop(ops)
    rec = np.zeros((ops, 2, 4), dtype="<u8")
    rec[:, 0, 0] = T_INVOKE | reads.astype("<u8") << np.uint64(9) | np.uint64(1) << np.uint64(32)  # read: kind 2
    rec[:, 0, 1] = rec[:, 1, 1] = np.arange(ops)
    rec[:, 0, 2], rec[:, 0, 3] = t0, ~reads
    rec[:, 1, 0], rec[:, 1, 2], rec[:, 1, 3] = _OK_COMPLETION_HEAD, t1, values
    footer = np.array([[ord("f"), ops, 0, ops]], dtype="<u8")
    records = np.concatenate([_string_records(1, KEY), rec.reshape(-1, 4), footer])
    header = json.loads(v5.read_bytes().split(b"\n", 1)[0])
    header["schema_version"] = 4
    c = zstandard.ZstdCompressor(level=1)
    v4.write_bytes(json.dumps(header).encode() + b"\n" + b"".join(
        encode_block(records[i:i + V4_BLOCK].tobytes(), c) for i in range(0, len(records), V4_BLOCK)))
    header["schema_version"] = 3
    del header["block_codec"]
    line = json.dumps(header).encode()
    v3.write_bytes(line + b" " * (-(len(line) + 1) % RECORD_BYTES) + b"\n" + records.tobytes())


def read(path: Path, ops: int) -> float:
    got = [0]
    t = time.perf_counter()
    h = read_worker_history(path, lambda c: got.__setitem__(0, got[0] + len(c)))
    took = time.perf_counter() - t
    if got[0] != ops or not h.complete:
        raise SystemExit(f"{path.name}: read {got[0]} of {ops} ops ({h.problem})")
    return took


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--ops", type=int, default=5_000_000)
    p.set_defaults(rounds=5)
    args = parse(p)
    print(f"history_format: {args.ops:,} ops, versions 5, 4 and 3 read back; {how(args.rounds)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {f"version {v}": Path(tmp) / f"v{v}.cbhist" for v in (5, 4, 3)}
        write_v5(paths["version 5"], args.ops)
        as_v4_and_v3(paths["version 5"], paths["version 4"], paths["version 3"], args.ops)
        got = interleave(args.rounds, {name: (lambda r, p=path: read(p, args.ops)) for name, path in paths.items()})
        for name, path in paths.items():
            secs = got[name]
            per_op = path.stat().st_size / args.ops
            print(f"  {name}: {per_op:5.1f} bytes per op; read {spread(secs, '.2f')} s, "
                  f"{spread([args.ops / s / 1e6 for s in secs], '.1f')} M ops/s", flush=True)
        for other in ("version 4", "version 3"):
            print(f"  version 5's read time over {other}'s: {spread(ratios(got['version 5'], got[other]), '.2f')}x")
        holds = paths["version 5"].stat().st_size / args.ops <= BYTES_PER_OP
        print(f"  target: <= {BYTES_PER_OP:g} bytes per op: {'holds' if holds else 'MISSED'}")


if __name__ == "__main__":
    main()
