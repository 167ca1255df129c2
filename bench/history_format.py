"""History format version 4 against version 3: bytes per op on disk, and reading speed, side by side.

    .venv/bin/python bench/history_format.py [--ops 5000000] [--rounds 5]

One load process's ops as the load loop records them (sent every ~14 us, answered after 0.1-2 ms,
each value some tens above the one before: other processes' increments in between; 10% reads),
written with the real writer (version 4), and the same records as a version-3 file (the blocks
decoded, the version-3 header). Then both read back with the real reader, every op handed over
as columns (what `counterbench check` reads), in interleaved rounds: median (range) of the
seconds, ops per second, and version 4's time over version 3's round by round. Target (issue #23):
<= 16 bytes per op.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import zstandard
from _rounds import how, interleave, parse, parser, ratios, spread

from harness.core.ops import Completion
from harness.history import HistoryWriter, read_worker_history
from harness.history.format import FRAME, RECORD_BYTES, decode_block

BYTES_PER_OP = 16.0


def write_v4(path: Path, ops: int) -> None:
    rng = np.random.default_rng(7)
    t0 = 10**12 + np.cumsum(rng.exponential(14_000, ops)).astype(np.int64)
    t1 = t0 + rng.lognormal(np.log(300_000), 0.6, ops).astype(np.int64)
    values = np.cumsum(rng.integers(1, 60, ops))
    reads = rng.random(ops) < 0.1
    w = HistoryWriter(path, worker="w0", run_id="bench", scenario="bench")
    ok = Completion.ok
    for a, b, v, r in zip(t0.tolist(), t1.tolist(), values.tolist(), reads.tolist(), strict=True):
        w.record("cb:bench:counter", "read" if r else "incr", 0 if r else 1, a, ok(v), b)
    w.close()


def as_v3(v4: Path, v3: Path) -> None:
    """The same records as a version-3 file: its header, then every block's records as they are."""
    data = v4.read_bytes()
    at = data.index(b"\n") + 1
    header = json.loads(data[:at])
    header["schema_version"] = 3
    del header["block_codec"]
    line = json.dumps(header).encode()
    out = [line + b" " * (-(len(line) + 1) % RECORD_BYTES) + b"\n"]
    dz = zstandard.ZstdDecompressor()
    while at < len(data):
        _, n, length, _ = FRAME.unpack_from(data, at)
        at += FRAME.size
        out.append(decode_block(n, data[at:at + length], dz))
        at += length
    v3.write_bytes(b"".join(out))


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
    print(f"history_format: {args.ops:,} ops, versions 4 and 3 read back; {how(args.rounds)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        v4, v3 = Path(tmp) / "v4.cbhist", Path(tmp) / "v3.cbhist"
        write_v4(v4, args.ops)
        as_v3(v4, v3)
        got = interleave(args.rounds, {"version 4": lambda r: read(v4, args.ops),
                                       "version 3": lambda r: read(v3, args.ops)})
        for name, path in (("version 4", v4), ("version 3", v3)):
            secs = got[name]
            per_op = path.stat().st_size / args.ops
            print(f"  {name}: {per_op:5.1f} bytes per op; read {spread(secs, '.2f')} s, "
                  f"{spread([args.ops / s / 1e6 for s in secs], '.1f')} M ops/s", flush=True)
        print(f"  version 4's read time over version 3's: {spread(ratios(got['version 4'], got['version 3']), '.2f')}x")
        holds = v4.stat().st_size / args.ops <= BYTES_PER_OP
        print(f"  target: <= {BYTES_PER_OP:g} bytes per op: {'holds' if holds else 'MISSED'}")


if __name__ == "__main__":
    main()
