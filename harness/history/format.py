"""The history file format: one file per worker, versioned; where the files go.

One file per worker under ``<run>/history/``, named by ``history_file(directory, worker)``.
The writer writes version 5; the reader reads versions 1 to 5 (it tells them by the header).

Version 5 (``<worker>.cbhist``): version 4's blocks, in which the ops recorded whole -- answered ok with a
value at the first attempt, the load loop's usual op -- are stored as *op rows* of five columns instead of
an invoke and a completion record each (4-9 bytes per op on disk; the reader need not join them):

    {"schema_version": 5, "type": "header", "record_bytes": 32, "block_codec": "zstd", ...}
    block: a 20-byte frame, struct "<IIIII": magic 0x3542_4243 ("CBB5") | records u32 | op rows u32 |
           payload bytes u32 | CRC-32 of the two counts, payload length and payload;
           then the payload, compressed with zstd: the block's records coded as version 4 codes them
           (four columns, each minus the value two records earlier), then its op rows as five
           little-endian 64-bit columns, one after the other:
               key | kind << 32   the key's string id and op kind (as an invoke record's ref and code)
               amount
               t1                 the answer's t_ns, minus the op row before's (wrapping; the first: as is)
               t1 - t0            the latency: t0 is when the op was sent
               value              the value answered, minus the op row before's (wrapping)

Every op row's op id is implicit. A block's ops take the ids from the first not taken before it, one
each: its invoke records carry theirs, and its op rows take those left over, in order. An op row comes
after every record of its block (the strings it names are defined before it), and holds an op answered
``ok`` with its value, one attempt, no error. The reader hands a block's ops over in the order they were
answered (op rows and records merged by ``t1``). The rest is version 4's: torn or damaged blocks end the
readable part, the record rules hold, the footer counts every op (op rows too) and is its block's last
record. A block whose records or op rows are malformed keeps what came before the first bad one.

Version 4 (``<worker>.cbhist``): version 3's records, stored in compressed blocks (7-9 bytes per op
instead of 64). One JSON header line (not padded), then blocks, each what one hand-over to the OS
wrote (every 200 ms, or 256 KiB of records):

    {"schema_version": 4, "type": "header", "record_bytes": 32, "block_codec": "zstd", ...}
    block: a 16-byte frame, struct "<IIII": magic 0x3442_4243 ("CBB4") | records u32 |
           payload bytes u32 | CRC-32 of the records count, payload length and payload;
           then the payload: the block's records (whole, as version 3 defines them) as four
           little-endian 64-bit columns (the record's first word, id, t, num), each column's
           values minus the value two records earlier (wrapping; an op's invoke and completion
           alternate, so the differences are the gaps between ops), one column after the other,
           compressed with zstd.

A block is written whole or, when the process dies in its write, torn: a torn or damaged block and
everything after it is lost, every block before it is read (the history is then incomplete). The
rules of version 3 below hold for the records of all blocks read in order: a block holds whole
records, an op's invoke record comes before its completion, and every op still out when a block is
handed over has its invoke in that block or an earlier one.

Version 3 (``<worker>.cbhist``): one JSON header line, then fixed-size binary records. (Version 2,
still read, is the same without reads.)

    {"schema_version": 3, "type": "header", "record_bytes": 32, ...}   padded with spaces so
                                                                       that the line (with its
                                                                       newline) is a whole number
                                                                       of records long
    record, 32 bytes little-endian, struct "<BBHIqqq":
        tag u8 | code u8 | small u16 | ref u32 | id i64 | t i64 | num i64

    tag  meaning                 code               small     ref             id         t     num
    "i"  invoke                  kind: 0 incr,      0         key string      op id      t_ns  amount
                                 1 decr_if_positive,                                         (read: 0)
                                 2 read
    "c"  completion, with value  outcome: 0 ok,     attempts  error string,   op id      t_ns  value
                                 1 fail, 2 indet.             0: none
    "n"  completion, no value    as "c"             attempts  as "c"          op id      t_ns  0
    "s"  string definition       0                  0         its string id   byte len   0     0
    "x"  string continuation     bytes 1..31 of the record: the next 31 bytes of UTF-8 text (zero padded)
    "f"  footer (close)          0                  0         0               invoked    0     completed

``t_ns`` is the worker's ``time.monotonic_ns()``; the reader turns it into microseconds since
``anchor_monotonic_ns`` of the header, as version 1 wrote them. An invoke's ``t_ns`` is when the
op was sent, a completion's when its answer came. The load loop writes an op's two records
together once it has completed (``HistoryWriter.record``), except that every op still out when a
block is handed to the OS gets its invoke record in that block: a file never lacks the invoke of
an op sent before its last write. Op ids count 0, 1, 2, ... in the order of the invoke records.
Keys and error texts are interned: a string (ids 1, 2, ...) is defined by an "s" record and
``ceil(bytes / 31)`` "x" records, in the same write as and before the first record that refers
to it. Records are fixed-size so numpy reads them in blocks, vectorised.

Version 1 (``<worker>.jsonl``), still read:

    {"schema_version": 1, "type": "header", "worker": ..., "run_id": ..., ...}
    ["i", op_id, t_us, key, kind, amount]          invoke, written before the op is sent
    ["c", op_id, t_us, outcome, value, error]      completion, exactly one per invoke
    ["c", op_id, t_us, outcome, value, error, n]   ... sent as n requests (SDK retries), when n > 1
    {"type": "footer", "invoked": n, "completed": m}

``t_us`` is microseconds on the worker's monotonic clock since ``anchor`` in the header.

Both versions: a file without a footer, or whose last record is torn, is incomplete (the worker
died or was cut off), not an error: ops invoked but never completed are indeterminate and the
history is marked incomplete. Damaged data -- a completion of an op never invoked, an op
invoked or completed twice, a record after the footer, a footer that disagrees -- ends the
readable part: every record before it is kept, and the file is incomplete, its problem naming
the file and the line (version 1) or byte offset and record number (version 2).
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path
from typing import Any

from harness.core.ops import OpKind, Outcome

# Version history of the history file format:
#   1: JSON lines, one record per line (read only since version 2)
#   2: a JSON header line, then 32-byte binary records; keys and errors interned as string records
#   3: as 2, with op kind 2: a read of the key (amount 0; its completion's value is the value read)
#   4: as 3, the records in blocks: delta-coded columns, zstd; a CRC per block
#   5: as 4, with op rows: ops recorded whole as five columns, their ids implicit
SCHEMA_VERSION = 5
READ_VERSIONS = (1, 2, 3, 4, 5)
SUFFIX = ".cbhist"  # version 2
SUFFIXES = (".jsonl", SUFFIX)  # every version the reader finds in a history folder

RECORD_BYTES = 32
_RECORD = struct.Struct("<BBHIqqq")
_pack = _RECORD.pack
_TEXT_BYTES = RECORD_BYTES - 1  # text carried by one "x" record
_MAX_TEXT = 1 << 20  # a longer string definition is malformed
_MAX_INTERNED = 100_000  # distinct strings the writer remembers; past that each use defines its text again
_ERROR_CHARS = 200

T_INVOKE, T_VALUE, T_NO_VALUE, T_STRING, T_TEXT, T_FOOTER = (ord(c) for c in "icnsxf")
KINDS: tuple[OpKind, ...] = ("incr", "decr_if_positive", "read")
KINDS_OF_VERSION = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}  # how many of KINDS each version may hold
OUTCOMES = (Outcome.OK, Outcome.FAIL, Outcome.INDETERMINATE)
_KIND_CODE: dict[str, int] = {k: i for i, k in enumerate(KINDS)}
_OUTCOME_CODE: dict[Outcome, int] = {o: i for i, o in enumerate(OUTCOMES)}
NEVER_COMPLETED = "never completed"

_BUFFER = 1 << 18
_ROWS = 8192  # ops held whole before their block is handed over (320 KiB as op rows)
_OK_COMPLETION_HEAD = T_VALUE | 1 << 16  # the head word of an ok completion with a value, one attempt
_CHUNK_RECORDS = 1 << 19  # records the reader decodes at a time (16 MiB)
_monotonic_ns = time.monotonic_ns
_OK = Outcome.OK

BLOCK_CODEC = "zstd"
BLOCK_MAGIC = 0x34424243  # b"CBB4" little-endian
FRAME = struct.Struct("<IIII")  # magic, records, payload bytes, CRC-32
_MAX_BLOCK_RECORDS = 1 << 24  # a frame claiming more is damaged (the writer's blocks hold ~8,192)
BLOCK_MAGIC_V5 = 0x35424243  # b"CBB5" little-endian
FRAME_V5 = struct.Struct("<IIIII")  # magic, records, op rows, payload bytes, CRC-32
OP_WORDS = 5  # an op row's columns: key | kind << 32, amount, t1, t1 - t0, value
_ZSTD_LEVEL = 1  # the load processes pay for it: level 1 keeps it a few percent of a Redis op


def _frame_crc(records: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<II", records, len(payload))))


def encode_block(records: bytes | bytearray, compressor: Any) -> bytes:
    """Whole 32-byte records as one version-4 block: frame, then the coded, compressed payload."""
    import numpy as np

    n = len(records) // RECORD_BYTES
    cols = np.frombuffer(records, dtype="<u8", count=n * 4).reshape(n, 4)
    delta = cols.copy()
    delta[2:] -= cols[:-2]  # wraps: exact for any values
    payload = compressor.compress(np.ascontiguousarray(delta.T).tobytes())  # column after column
    return FRAME.pack(BLOCK_MAGIC, n, len(payload), _frame_crc(n, payload)) + payload


def decode_block(records: int, payload: bytes, decompressor: Any) -> bytes:
    """The records of a block's payload (``encode_block`` backwards); ValueError when it does not decode."""
    import numpy as np

    out = np.empty((4, records), dtype="<u8")
    decode_block_columns(records, payload, decompressor, out)
    return np.ascontiguousarray(out.T).tobytes()


def decode_block_columns(records: int, payload: bytes, decompressor: Any, out: Any) -> None:
    """``decode_block`` into ``out``, a ``(4, records)`` uint64 array: each word of the records as a column
    (the reader checks and joins fields from it without going through 32-byte rows)."""
    import numpy as np

    try:
        raw = decompressor.decompress(payload, max_output_size=records * RECORD_BYTES)
    except Exception as e:  # zstandard.ZstdError, whose module the reader need not import
        raise ValueError(f"the payload does not decompress: {e}") from e
    if len(raw) != records * RECORD_BYTES:
        raise ValueError(f"the payload holds {len(raw)} bytes, not {records} records")
    _running_sums(np.frombuffer(raw, dtype="<u8").reshape(4, records), records, out)


def _frame_crc_v5(records: int, ops: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<III", records, ops, len(payload))))


def encode_block_v5(records: bytes | bytearray, rows: Any, compressor: Any) -> bytes:
    """Whole 32-byte records and op rows (an ``(OP_WORDS, n)`` int64 array: key | kind << 32, amount, t0,
    t1, value -- t0 where the file stores t1 - t0) as one version-5 block: frame, then the payload."""
    import numpy as np

    r = len(records) // RECORD_BYTES
    cols = np.frombuffer(records, dtype="<u8", count=r * 4).reshape(r, 4)
    delta = cols.copy()
    delta[2:] -= cols[:-2]  # wraps: exact for any values
    n = rows.shape[1]
    u = np.ascontiguousarray(rows).view("<u8")  # wrapping differences: exact for any values
    ops = np.empty((OP_WORDS, n), dtype="<u8")
    if n:
        ops[0:2] = u[0:2]
        ops[2, 0], ops[4, 0] = u[3, 0], u[4, 0]
        np.subtract(u[3, 1:], u[3, :-1], out=ops[2, 1:])
        np.subtract(u[3], u[2], out=ops[3])
        np.subtract(u[4, 1:], u[4, :-1], out=ops[4, 1:])
    payload = compressor.compress(np.ascontiguousarray(delta.T).tobytes() + ops.tobytes())
    return FRAME_V5.pack(BLOCK_MAGIC_V5, r, n, len(payload), _frame_crc_v5(r, n, payload)) + payload


def decode_block_v5(records: int, ops: int, payload: bytes, decompressor: Any, rec_out: Any, ops_out: Any) -> None:
    """A version-5 block's payload into ``rec_out``, a ``(4, records)`` uint64 array (as
    ``decode_block_columns``), and ``ops_out``, an ``(OP_WORDS, ops)`` int64 array in ``encode_block_v5``'s
    order (t0, not t1 - t0); ValueError when it does not decode."""
    import numpy as np

    size = (records * 4 + ops * OP_WORDS) * 8
    try:
        raw = decompressor.decompress(payload, max_output_size=size)
    except Exception as e:  # zstandard.ZstdError, whose module the reader need not import
        raise ValueError(f"the payload does not decompress: {e}") from e
    if len(raw) != size:
        raise ValueError(f"the payload holds {len(raw)} bytes, not {records} records and {ops} op rows")
    if records:
        _running_sums(np.frombuffer(raw, dtype="<u8", count=records * 4).reshape(4, records), records, rec_out)
    if ops:
        got = np.frombuffer(raw, dtype="<i8", offset=records * 32).reshape(OP_WORDS, ops)
        ops_out[0:2] = got[0:2]
        np.cumsum(got[2], dtype=np.int64, out=ops_out[3])  # t1 (int64 sums wrap as the coding does)
        np.subtract(ops_out[3], got[3], out=ops_out[2])  # t0
        np.cumsum(got[4], dtype=np.int64, out=ops_out[4])


def _running_sums(cols: Any, records: int, out: Any) -> None:
    """Version 4's records coding undone: each word's two interleaved running sums (invokes, completions)."""
    import numpy as np

    even = records - records % 2
    for word in range(4):  # pairs of rows; as arrays: words wrap (deltas are exact modulo 2**64)
        if even:
            np.cumsum(cols[word, :even].reshape(even // 2, 2), axis=0, dtype=np.uint64,
                      out=out[word, :even].reshape(even // 2, 2))
        if records % 2:
            out[word, even:] = cols[word, even:] + (out[word, even - 2:even - 1] if even else np.uint64(0))


def history_file(directory: Path, worker: str) -> Path:
    """Where a worker's history goes: ``<directory>/<worker>.cbhist``."""
    return directory / f"{worker}{SUFFIX}"


def history_files(directory: Path) -> list[Path]:
    """Every worker history in a folder, of any version, sorted by name."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())
