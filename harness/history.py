"""Durable per-worker history: writer, reader, merge.

One file per worker under ``<run>/history/``, named by ``history_file(directory, worker)``.
The writer writes version 2; the reader reads versions 1 and 2 (it tells them by the header).

Version 2 (``<worker>.cbhist``): one JSON header line, then fixed-size binary records.

    {"schema_version": 2, "type": "header", "record_bytes": 32, ...}   padded with spaces so
                                                                       that the line (with its
                                                                       newline) is a whole number
                                                                       of records long
    record, 32 bytes little-endian, struct "<BBHIqqq":
        tag u8 | code u8 | small u16 | ref u32 | id i64 | t i64 | num i64

    tag  meaning                 code               small     ref             id         t     num
    "i"  invoke                  kind: 0 incr,      0         key string      op id      t_ns  amount
                                 1 decr_if_positive
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
history is marked incomplete. Malformed data -- a completion of an op never invoked, an op
invoked or completed twice, a record after the footer -- is a HistoryError naming the file and
the line (version 1) or byte offset and record number (version 2).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HistoryError, HistorySchemaError
from harness.ops import Completion, Op, OpKind, Outcome
from harness.secrets import scrub

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Version history of the history file format:
#   1: JSON lines, one record per line (read only since version 2)
#   2: a JSON header line, then 32-byte binary records; keys and errors interned as string records
SCHEMA_VERSION = 2
READ_VERSIONS = (1, 2)
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
KINDS: tuple[OpKind, ...] = ("incr", "decr_if_positive")
OUTCOMES = (Outcome.OK, Outcome.FAIL, Outcome.INDETERMINATE)
_KIND_CODE: dict[str, int] = {k: i for i, k in enumerate(KINDS)}
_OUTCOME_CODE: dict[Outcome, int] = {o: i for i, o in enumerate(OUTCOMES)}
NEVER_COMPLETED = "never completed"

_BUFFER = 1 << 18
_ROWS = _BUFFER // (2 * RECORD_BYTES)  # completed ops held as columns before they are encoded
_OK_COMPLETION_HEAD = T_VALUE | 1 << 16  # the head word of an ok completion with a value, one attempt
_CHUNK_RECORDS = 1 << 19  # records the reader decodes at a time (16 MiB)
_monotonic_ns = time.monotonic_ns
_OK = Outcome.OK


def _same_or_all(column: list[int]) -> int | list[int]:
    """A column's one value when every row has it (one key, one amount: the usual case), which
    numpy fills without converting each Python int; else the column."""
    first = column[0]
    return first if column.count(first) == len(column) else column


def history_file(directory: Path, worker: str) -> Path:
    """Where a worker's history goes: ``<directory>/<worker>.cbhist``."""
    return directory / f"{worker}{SUFFIX}"


def history_files(directory: Path) -> list[Path]:
    """Every worker history in a folder, of any version, sorted by name."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())


class HistoryWriter:
    """Appends one worker's op records (version 2); any I/O failure raises HistoryError.

    Records are packed into an in-memory block; ``flush`` (every 200 ms) hands the block to the
    OS, and a block that outgrows 256 KiB is handed over at once.

    ``on_latencies``, when given, gets every completed op's latency as the block holding it is
    handed over, in bulk: ``(codes, completed_ns, latency_ns)``, numpy int64 arrays, a code being
    ``kind * len(OUTCOMES) + outcome`` (indices into KINDS and OUTCOMES). The latency is the
    completion's t_ns minus the invoke's: the histograms and the history share the clock readings.
    """

    def __init__(self, path: Path, *, worker: str, run_id: str, scenario: str,
                 on_latencies: Callable[[Any, Any, Any], None] | None = None) -> None:
        self.path = path
        self._on_latencies = on_latencies
        # ops invoked one record at a time and not completed yet: id -> (invoke t_ns, kind code);
        # and those completed since the last hand-over: code, completion t_ns, latency ns
        self._open: dict[int, tuple[int, int]] = {}
        self._latencies: tuple[list[int], list[int], list[int]] = ([], [], [])
        self.worker = worker
        self._next_id = 0
        self._completed = 0
        self._anchor_ns = time.monotonic_ns()
        self._closed = False
        self._strings: dict[str, int] = {}
        self._next_string = 1
        self._buf: bytearray | None = bytearray()
        # ops recorded whole (``record``), as columns until they are encoded in bulk: the head word
        # of the invoke record (tag, kind, key), amount, invoke t_ns, completion t_ns, value
        self._heads: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self._cols: tuple[list[int], list[int], list[int], list[int], list[int]] = ([], [], [], [], [])
        header = {
            "schema_version": SCHEMA_VERSION,
            "type": "header",
            "worker": worker,
            "run_id": run_id,
            "scenario": scenario,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "anchor_wall_ns": time.time_ns(),
            "anchor_monotonic_ns": self._anchor_ns,
            "record_bytes": RECORD_BYTES,
        }
        line = json.dumps(header).encode()
        line += b" " * (-(len(line) + 1) % RECORD_BYTES) + b"\n"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "xb", buffering=0)  # noqa: SIM115 - lives with the writer
            self._write_all(line)
        except OSError as e:
            raise HistoryError(f"cannot write history {path}: {e}") from e

    # invoke and complete pack one record each into the block at once: for an op still out when a
    # block is handed over, and for the ops record() does not hold. record is the load loop's path.

    def invoke(self, key: str, kind: OpKind, amount: int, t_ns: int | None = None) -> int:
        """Record an op about to be sent; returns its id. ``t_ns``: ``time.monotonic_ns()`` now, when
        the caller has read it (it measures the op's latency from it)."""
        if self._cols[0]:
            self._encode()  # ops recorded whole before this one get the lower ids
        op_id = self._next_id
        self._next_id = op_id + 1
        ref = self._strings.get(key)
        if ref is None:
            ref = self._define(key)
        if t_ns is None:
            t_ns = _monotonic_ns()
        try:
            self._buf += _pack(T_INVOKE, _KIND_CODE[kind], 0, ref, op_id, t_ns, amount)  # type: ignore[operator]
        except (struct.error, KeyError, TypeError) as e:
            raise self._refused(e, f"invoke of op {op_id} ({kind} {amount!r})") from e
        if self._on_latencies is not None:
            self._open[op_id] = (t_ns, _KIND_CODE[kind])
        if len(self._buf) >= _BUFFER:  # type: ignore[arg-type]
            self._spill()
        return op_id

    def complete(self, op_id: int, done: Completion, t_ns: int | None = None) -> None:
        """Record an op's completion (``t_ns`` as for ``invoke``)."""
        value = done.value
        if t_ns is None:
            t_ns = _monotonic_ns()
        if value is not None and done.outcome is _OK and done.error is None:
            try:
                self._buf += _pack(T_VALUE, 0, done.attempts, 0, op_id, t_ns, value)  # type: ignore[operator]
                self._completed += 1
                if self._on_latencies is not None:
                    self._latency(op_id, done.outcome, t_ns)
                return
            except (struct.error, TypeError):
                pass  # closed, or a value that is not a plain int: the general path says which
        error = done.error
        ref = 0
        if error is not None:
            error = scrub(error)[:_ERROR_CHARS]  # an exception's text may quote a URL with its credentials
            ref = self._strings.get(error) or self._define(error)
        try:
            if value is not None:
                value = int(value)
            rec = _pack(T_NO_VALUE if value is None else T_VALUE, _OUTCOME_CODE[done.outcome],
                        min(max(int(done.attempts), 1), 0xFFFF), ref, op_id, t_ns,
                        0 if value is None else value)
            self._buf += rec  # type: ignore[operator]
        except (struct.error, KeyError, TypeError, ValueError) as e:
            raise self._refused(e, f"completion of op {op_id} (value {done.value!r})") from e
        self._completed += 1  # only what is in the block: the footer's count must match the file
        if self._on_latencies is not None:
            self._latency(op_id, done.outcome, t_ns)

    def _latency(self, op_id: int, outcome: Outcome, t_ns: int) -> None:
        opened = self._open.pop(op_id, None)
        if opened is not None and outcome in _OUTCOME_CODE:
            codes, completed, latency = self._latencies
            codes.append(opened[1] * len(OUTCOMES) + _OUTCOME_CODE[outcome])
            completed.append(t_ns)
            latency.append(t_ns - opened[0])

    def record(self, key: str, kind: OpKind, amount: int, t0_ns: int, done: Completion, t1_ns: int) -> None:
        """Record an op that has completed, invoked at ``t0_ns`` (both records at once).

        The load loop's path: an ok op with a value is kept as columns and encoded in bulk, so it
        costs a few list appends. The caller must write the invoke of an op still out when the
        block is handed over (``invoke``, then ``complete``): records only go to disk whole.
        """
        outcome, value, error, attempts = done
        if outcome is _OK and error is None and attempts == 1 and type(value) is int:
            head = self._heads[kind].get(key)
            if head is not None:
                heads, amounts, t0s, t1s, values = self._cols
                heads.append(head)
                amounts.append(amount)
                t0s.append(t0_ns)
                t1s.append(t1_ns)
                values.append(value)
                if len(heads) >= _ROWS:
                    self._spill()
                return
            if kind in self._heads and type(amount) is int:
                ref = self._strings.get(key) or self._define(key)
                if self._strings.get(key) == ref:  # interned: the next op on this key takes the fast path
                    self._heads[kind][key] = T_INVOKE | _KIND_CODE[kind] << 8 | ref << 32
        self.complete(self.invoke(key, kind, amount, t0_ns), done, t1_ns)

    def _encode(self) -> None:
        """The ops held as columns, as records in the block: each invoke followed by its completion."""
        import numpy as np

        heads, amounts, t0s, t1s, values = self._cols
        n = len(heads)
        if not n or self._buf is None:
            return
        out = np.empty((n, 8), dtype="<i8")
        try:
            out[:, 2], out[:, 3], out[:, 6], out[:, 7] = t0s, _same_or_all(amounts), t1s, values
        except (OverflowError, TypeError, ValueError):
            # a number beyond 64 bits: record them one by one, so the refusal names the op; every op
            # was sent, so each still gets its invoke (a refused completion leaves it indeterminate)
            self._cols = ([], [], [], [], [])
            refused: HistoryError | None = None
            for head, amount, t0, t1, value in zip(heads, amounts, t0s, t1s, values, strict=True):
                try:
                    op_id = self.invoke(self._string_of(head >> 32), KINDS[head >> 8 & 0xFF], amount, t0)
                    self.complete(op_id, Completion(_OK, value), t1)
                except HistoryError as e:
                    refused = refused or e
            if refused is not None:
                raise refused from None
            return
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        out[:, 0], out[:, 1], out[:, 4], out[:, 5] = _same_or_all(heads), ids, _OK_COMPLETION_HEAD, ids
        self._next_id += n
        self._completed += n
        self._buf += out.tobytes()
        self._cols = ([], [], [], [], [])
        if self._on_latencies is not None:  # all ok: the code is the kind's
            self._on_latencies((out[:, 0] >> 8 & 0xFF) * len(OUTCOMES), out[:, 6], out[:, 6] - out[:, 2])

    def _string_of(self, ref: int) -> str:
        return next(text for text, r in self._strings.items() if r == ref)

    def _define(self, text: str) -> int:
        """Intern a key or error text: its string records go into the block before its first use."""
        ref = self._next_string
        self._next_string = ref + 1
        data = text.encode("utf-8", "surrogatepass")
        rec = bytearray(_pack(T_STRING, 0, 0, ref, len(data), 0, 0))
        data += b"\0" * (-len(data) % _TEXT_BYTES)
        for i in range(0, len(data), _TEXT_BYTES):
            rec += b"x" + data[i:i + _TEXT_BYTES]
        try:
            self._buf += rec  # type: ignore[operator]
        except TypeError as e:
            raise self._refused(e, "a string record") from e
        if len(self._strings) < _MAX_INTERNED:
            self._strings[text] = ref
        return ref

    def _refused(self, e: Exception, what: str) -> HistoryError:
        if self._closed:
            return HistoryError(f"cannot write history {self.path}: I/O operation on closed file")
        return HistoryError(f"cannot write history {self.path}: {what}: {e}")

    def _write_all(self, data: bytes | bytearray) -> None:
        """Write every byte; what was written leaves a bytearray block, even when a write fails."""
        done = 0
        try:
            with memoryview(data) as view:
                while done < len(view):
                    with view[done:] as rest:
                        n = self._f.write(rest)
                    if not n:
                        raise OSError(f"wrote nothing at byte {done} of a {len(view)}-byte block")
                    done += n
        finally:
            if done and isinstance(data, bytearray):
                del data[:done]

    def _hand_over_latencies(self) -> None:
        """The latencies of ops completed one record at a time, to on_latencies."""
        codes, completed, latency = self._latencies
        if codes and self._on_latencies is not None:
            import numpy as np

            self._latencies = ([], [], [])
            self._on_latencies(np.array(codes, dtype=np.int64), np.array(completed, dtype=np.int64),
                               np.array(latency, dtype=np.int64))

    def _spill(self) -> None:
        self._encode()
        self._hand_over_latencies()
        if not self._buf:
            return
        try:
            self._write_all(self._buf)
        except (OSError, ValueError) as e:
            raise HistoryError(f"cannot write history {self.path}: {e}") from e

    def flush(self) -> None:
        """Hand the buffered block to the OS: a killed process then loses at most what came after.

        Called every 200 ms while the load runs; writing in blocks keeps the per-op cost
        to one packed record (fsync is left to close: the OS keeps what a killed process wrote).
        """
        if self._closed:
            return
        self._spill()

    def close(self) -> None:
        """Write the footer and make the file durable."""
        if self._closed:
            return
        try:
            self._encode()
            self._hand_over_latencies()
            self._buf += _pack(T_FOOTER, 0, 0, 0, self._next_id, 0, self._completed)  # type: ignore[operator]
            self._write_all(self._buf)  # type: ignore[arg-type]
            os.fsync(self._f.fileno())
            self._f.close()
        except (OSError, ValueError) as e:
            raise HistoryError(f"cannot finish history {self.path}: {e}") from e
        finally:
            self._closed = True
            self._buf = None
            self._heads = {kind: {} for kind in KINDS}  # so record() takes the path that refuses


@dataclass(frozen=True, eq=False)
class OpColumns:
    """A batch of one worker's ops, invoke and completion joined: one array per field, row per op.

    Keys and errors are ids into ``strings`` (id ``i`` is ``strings[i - 1]``; error 0: none).
    """

    worker: str
    strings: Sequence[str]
    id: npt.NDArray[np.int64]
    key: npt.NDArray[np.uint32]
    kind: npt.NDArray[np.uint8]  # index into KINDS
    amount: npt.NDArray[np.int64]
    outcome: npt.NDArray[np.uint8]  # index into OUTCOMES
    has_value: npt.NDArray[np.bool_]
    value: npt.NDArray[np.int64]  # meaningless where has_value is False (0 as written)
    error: npt.NDArray[np.uint32]
    attempts: npt.NDArray[np.uint16]
    invoked_us: npt.NDArray[np.int64]
    completed_us: npt.NDArray[np.int64]  # -1: never completed

    def __len__(self) -> int:
        return len(self.id)

    def ops(self) -> Iterator[Op]:
        """The rows as Op objects (slow: for tests and small histories)."""
        s = self.strings
        for i, k, kind, a, o, hv, v, e, n, t0, t1 in zip(
                self.id.tolist(), self.key.tolist(), self.kind.tolist(), self.amount.tolist(),
                self.outcome.tolist(), self.has_value.tolist(), self.value.tolist(), self.error.tolist(),
                self.attempts.tolist(), self.invoked_us.tolist(), self.completed_us.tolist(), strict=True):
            yield Op(self.worker, i, s[k - 1], KINDS[kind], a, OUTCOMES[o], v if hv else None,
                     s[e - 1] if e else None, t0, None if t1 < 0 else t1, n)

    @staticmethod
    def from_ops(worker: str, ops: Sequence[Op]) -> OpColumns:
        """Columns of hand-built or version-1 ops (ints beyond 64 bits kept exact, as objects)."""
        import numpy as np

        strings: list[str] = []
        ids: dict[str, int] = {}

        def sid(s: str | None) -> int:
            if s is None:
                return 0
            i = ids.get(s)
            if i is None:
                strings.append(s)
                i = ids[s] = len(strings)
            return i

        def ints(values: list[int]) -> Any:
            try:
                return np.array(values, dtype=np.int64)
            except OverflowError:
                return np.array(values, dtype=object)

        return OpColumns(
            worker=worker, strings=strings,
            id=np.array([o.id for o in ops], dtype=np.int64),
            key=np.array([sid(o.key) for o in ops], dtype=np.uint32),
            kind=np.array([_KIND_CODE[o.kind] for o in ops], dtype=np.uint8),
            amount=ints([o.amount for o in ops]),
            outcome=np.array([_OUTCOME_CODE[o.outcome] for o in ops], dtype=np.uint8),
            has_value=np.array([o.value is not None for o in ops], dtype=bool),
            value=ints([0 if o.value is None else o.value for o in ops]),
            error=np.array([sid(o.error) for o in ops], dtype=np.uint32),
            attempts=np.array([min(o.attempts, 0xFFFF) for o in ops], dtype=np.uint16),
            invoked_us=np.array([o.invoked_us for o in ops], dtype=np.int64),
            completed_us=np.array([-1 if o.completed_us is None else o.completed_us for o in ops], dtype=np.int64),
        )


OnColumns = Callable[[OpColumns], None]


@dataclass(eq=False)
class WorkerHistory:
    worker: str
    path: Path
    header: dict[str, Any]
    complete: bool  # a footer was written and no record is torn
    problem: str | None = None  # why it is incomplete
    op_count: int = 0
    _ops: list[Op] | None = field(default=None, repr=False)
    _columns: list[OpColumns] | None = field(default=None, repr=False)

    @property
    def ops(self) -> list[Op]:
        """Every op as an object (version 2: built on demand, re-reading the file if needed; slow)."""
        if self._ops is None:
            columns = self._columns
            if columns is None:
                columns = read_worker_history(self.path)._columns or []
            self._ops = [op for c in columns for op in c.ops()]
        return self._ops


@dataclass
class History:
    workers: list[WorkerHistory] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.workers) and all(w.complete for w in self.workers)

    @property
    def incomplete_workers(self) -> list[WorkerHistory]:
        return [w for w in self.workers if not w.complete]

    def ops(self) -> Iterator[Op]:
        for w in self.workers:
            yield from w.ops


def read_worker_history(path: Path, on_columns: OnColumns | None = None) -> WorkerHistory:
    """Read one worker's file; a torn or missing tail makes it incomplete, not an error.

    With ``on_columns``, the ops are handed over in batches as they are read (version 2 keeps
    nothing per op in memory); without it they are kept for ``WorkerHistory.ops``.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise HistoryError(f"cannot read history {path}: {e}") from e
    with f:
        first = f.readline(1 << 16)
        try:
            header = json.loads(first)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HistoryError(f"{path}:1: not a counterbench history (no header)") from e
        if not isinstance(header, dict) or header.get("type") != "header" or not first.endswith(b"\n"):
            raise HistoryError(f"{path}:1: not a counterbench history (no header)")
        version = header.get("schema_version")
        if version not in READ_VERSIONS:
            raise HistorySchemaError(
                f"{path}: history schema_version {version!r} is not supported "
                f"(this counterbench reads {', '.join(map(str, READ_VERSIONS))})"
            )
        if version == 2:
            return _V2Reader(path, header, len(first)).read(f, on_columns)
    h = _read_v1(path, header)
    if on_columns is not None and h.ops:
        on_columns(OpColumns.from_ops(h.worker, h.ops))
    return h


def read_history(directory: Path, on_columns: OnColumns | None = None) -> History:
    """Every worker history in a run's ``history/`` folder (any version). A file that cannot be read at
    all (no header, an unknown version) is a worker whose history is missing, named by the file."""
    files = history_files(directory)
    if not files:
        raise HistoryError(f"no history in {directory}")
    workers = []
    for p in files:
        try:
            workers.append(read_worker_history(p, on_columns))
        except HistoryError as e:
            workers.append(WorkerHistory(p.stem, p, {}, complete=False, problem=f"unreadable: {e}", _ops=[]))
    return History(workers)


def _read_v1(path: Path, header: dict[str, Any]) -> WorkerHistory:
    """A version-1 file: every line up to the end, or up to the first damaged one (kept, as in version 2)."""
    try:
        f = open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    except OSError as e:
        raise HistoryError(f"cannot read history {path}: {e}") from e
    with f:
        f.readline()
        worker = str(header.get("worker"))
        invokes: dict[int, tuple[int, str, OpKind, int]] = {}
        ops: list[Op] = []
        footer: dict[str, Any] | None = None
        problem: str | None = None
        for lineno, line in enumerate(f, start=2):
            if not line.endswith("\n"):
                problem = f"line {lineno} is torn (the writer stopped mid-record)"
                break
            damage = _v1_record(line, footer is not None, invokes, ops, worker)
            if isinstance(damage, dict):
                footer = damage
            elif damage is not None:
                problem = f"damaged: {path}:{lineno}: {damage}; the lines before it were read"
                break
    # ops still open never completed: the target may or may not have applied them
    for op_id, (t, key, kind, amount) in invokes.items():
        ops.append(Op(worker, op_id, key, kind, amount, Outcome.INDETERMINATE, None, NEVER_COMPLETED, t, None))
    if footer is None and problem is None:
        problem = "no footer (the worker did not finish writing)"
    return WorkerHistory(worker, path, header, complete=problem is None, problem=problem, op_count=len(ops),
                         _ops=ops)


def _v1_record(line: str, after_footer: bool, invokes: dict[int, tuple[int, str, OpKind, int]], ops: list[Op],
               worker: str) -> dict[str, Any] | str | None:
    """Apply one version-1 line: the footer (a dict), None, or what is wrong with the line."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return "not a history record"
    if isinstance(rec, dict):
        if rec.get("type") != "footer":
            return f"unexpected record {rec.get('type')!r}"
        return "a second footer" if after_footer else rec
    if after_footer:
        return "record after the footer"
    try:
        tag = rec[0]
        if tag == "i":
            _, op_id, t, key, kind, amount = rec
            if op_id in invokes or kind not in KINDS:
                return f"op {op_id} invoked twice" if op_id in invokes else f"unknown op kind {kind!r}"
            invokes[op_id] = (int(t), str(key), kind, int(amount))
        elif tag == "c":
            _, op_id, t, outcome, value, error, *more = rec
            inv = invokes.pop(op_id, None)
            if inv is None:
                return f"completion of op {op_id} that was not invoked"
            attempts = int(more[0]) if more else 1
            if not (value is None or type(value) is int) or attempts < 1:
                raise ValueError(value)
            ops.append(Op(worker, op_id, inv[1], inv[2], inv[3], Outcome(outcome), value,
                          None if error is None else str(error), inv[0], int(t), attempts))
        else:
            return f"unknown record tag {tag!r}"
    except (ValueError, TypeError, IndexError, KeyError):
        return f"malformed record: {line.strip()[:80]}"
    return None


class _Damaged(HistoryError):
    """Malformed data at a record: reading stops there and keeps what came before."""

    def __init__(self, record: int, message: str) -> None:
        super().__init__(message)
        self.record = record


class _V2Reader:
    """Reads a version-2 file in blocks of records, joining completions to their invokes with numpy.

    Invokes still open at the end of a block wait in ``pending`` (few: the ops in flight).
    """

    def __init__(self, path: Path, header: dict[str, Any], header_bytes: int) -> None:
        import numpy as np

        self.path = path
        self.header = header
        self.worker = str(header.get("worker"))
        self.header_bytes = header_bytes
        if header.get("record_bytes", RECORD_BYTES) != RECORD_BYTES:
            raise HistoryError(f"{path}:1: records of {header.get('record_bytes')!r} bytes (expected {RECORD_BYTES})")
        try:
            self.anchor_ns = int(header["anchor_monotonic_ns"])
        except (KeyError, TypeError, ValueError) as e:
            raise HistoryError(f"{path}:1: the header has no anchor_monotonic_ns") from e
        self.dtype = np.dtype([("tag", "u1"), ("code", "u1"), ("small", "<u2"), ("ref", "<u4"), ("id", "<i8"),
                               ("t", "<i8"), ("num", "<i8")])
        self.strings: list[str] = []
        self.next_id = 0  # ops invoked so far
        self.completed = 0
        self.op_count = 0
        self.footer: tuple[int, int] | None = None
        self.problem: str | None = None
        empty_i = np.empty(0, dtype=np.int64)
        # pending invokes: id, key, kind, amount, t_ns
        self.pending: tuple[Any, Any, Any, Any, Any] = (
            empty_i, np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.uint8), empty_i, empty_i)

    def where(self, record: int) -> str:
        return f"{self.path}: byte {self.header_bytes + record * RECORD_BYTES} (record {record})"

    def bad(self, record: int, what: str) -> _Damaged:
        return _Damaged(record, f"{self.where(record)}: {what}")

    def _state(self) -> tuple[int, int, int, int, Any, tuple[int, int] | None]:
        return len(self.strings), self.next_id, self.completed, self.op_count, self.pending, self.footer

    def _restore(self, state: tuple[int, int, int, int, Any, tuple[int, int] | None]) -> None:
        n_strings, self.next_id, self.completed, self.op_count, self.pending, self.footer = state
        del self.strings[n_strings:]  # batches already handed over only refer to the strings before

    def read(self, f: Any, on_columns: OnColumns | None) -> WorkerHistory:
        """Every record up to the end, or up to the first damaged one: what came before damage is kept
        (the history is then incomplete, the damage named by byte offset), never thrown away."""
        kept: list[OpColumns] = []
        emit: OnColumns = on_columns if on_columns is not None else kept.append
        leftover = b""
        base = 0  # record number of the first record in ``leftover + block``
        size = _CHUNK_RECORDS * RECORD_BYTES
        while True:
            try:
                block = f.read(size)
            except OSError as e:
                self.problem = f"cannot read {self.path} past byte {self.header_bytes + base * RECORD_BYTES}: {e}"
                break
            eof = len(block) < size
            data = leftover + block if leftover else block
            state = self._state()
            try:
                if self.footer is not None and data:
                    raise self.bad(base, "record after the footer")
                used = self.block(data, base, eof, emit)
            except _Damaged as damage:
                self._restore(state)
                self._read_before(data, base, damage, emit)
                break
            leftover = data[used * RECORD_BYTES:]
            base += used
            if eof or self.problem is not None:
                break
        if self.footer is None and self.problem is None:
            if leftover:
                self.problem = f"record {base} (byte {self.header_bytes + base * RECORD_BYTES}) is torn " \
                               "(the writer stopped mid-record)"
            else:
                self.problem = "no footer (the worker did not finish writing)"
        if self.problem is None and self.footer is not None and self.footer != (self.next_id, self.completed):
            self.problem = (f"{self.path}: the footer counts {self.footer[0]} ops invoked and {self.footer[1]} "
                            f"completed, the file holds {self.next_id} and {self.completed}")
        self.never_completed(emit)
        return WorkerHistory(self.worker, self.path, self.header, complete=self.problem is None, problem=self.problem,
                             op_count=self.op_count, _columns=None if on_columns is not None else kept)

    def _read_before(self, data: bytes, base: int, damage: _Damaged, emit: OnColumns) -> None:
        """The records of ``data`` before the damaged one, then stop: the file is incomplete from there."""
        first = damage
        while damage.record > base:
            state = self._state()
            try:
                self.block(data[:(damage.record - base) * RECORD_BYTES], base, True, emit)
                break
            except _Damaged as earlier:  # the cut exposed damage further up: stop there instead
                self._restore(state)
                damage = earlier
        self.problem = f"damaged: {first}; the records before record {damage.record} were read"

    def block(self, data: bytes, base: int, eof: bool, emit: OnColumns) -> int:
        """Decode the whole records of ``data``; returns how many were used (the rest is carried over)."""
        import numpy as np

        n = len(data) // RECORD_BYTES
        rec = np.frombuffer(data, dtype=self.dtype, count=n)
        tag = rec["tag"]
        special = np.flatnonzero((tag != T_INVOKE) & (tag != T_VALUE) & (tag != T_NO_VALUE))
        cut = n  # records [0, cut) are joined below
        used = n
        first_new = len(self.strings) + 1
        defined_at: list[int] = []  # record of each string defined in this block
        skip = -1
        for r in special.tolist():
            if r < skip:
                continue
            t = int(tag[r])
            if t == T_STRING:
                length = int(rec["id"][r])
                if not 0 <= length <= _MAX_TEXT:
                    raise self.bad(base + r, f"malformed string record (length {length})")
                k = -(-length // _TEXT_BYTES)
                if r + k >= n:  # its text runs past the block
                    cut = used = r
                    if eof:
                        self.problem = f"record {base + r} (byte {self.header_bytes + (base + r) * RECORD_BYTES}), " \
                                       "a string, is torn (the writer stopped mid-record)"
                    break
                text_tags = tag[r + 1:r + 1 + k]
                if (text_tags != T_TEXT).any():
                    j = r + 1 + int(np.argmax(text_tags != T_TEXT))
                    raise self.bad(base + j, f"string {int(rec['ref'][r])} is cut short by a {chr(tag[j])!r} record")
                ref = int(rec["ref"][r])
                if ref != len(self.strings) + 1:
                    raise self.bad(base + r, f"string {ref} defined out of order (expected {len(self.strings) + 1})")
                raw = np.frombuffer(data, dtype=np.uint8, count=(r + 1 + k) * RECORD_BYTES)
                body = raw[(r + 1) * RECORD_BYTES:].reshape(k, RECORD_BYTES)[:, 1:].tobytes()[:length]
                try:
                    self.strings.append(body.decode("utf-8", "surrogatepass"))
                except UnicodeDecodeError as e:
                    raise self.bad(base + r, f"string {ref} is not UTF-8") from e
                defined_at.append(r)
                skip = r + 1 + k
            elif t == T_TEXT:
                raise self.bad(base + r, "string text without its string record")
            elif t == T_FOOTER:
                if r + 1 < n or len(data) > n * RECORD_BYTES:
                    raise self.bad(base + r + 1, "record after the footer")
                self.footer = (int(rec["id"][r]), int(rec["num"][r]))
                cut = r
                break
            else:
                raise self.bad(base + r, f"unknown record tag {t!r}")
        if cut:
            self.join(rec[:cut], base, first_new, np.asarray(defined_at, dtype=np.int64), emit)
        return used

    def check_refs(self, refs: Any, rows: Any, base: int, first_new: int, defined_at: Any, *, what: str,
                   zero_ok: bool) -> None:
        """Every string id refers to a string defined before the record."""
        import numpy as np

        if not len(refs):
            return
        if refs.max() > len(self.strings) or (not zero_ok and refs.min() == 0):
            bad = (refs > len(self.strings)) | ((refs == 0) if not zero_ok else False)
            j = int(np.argmax(bad))
            raise self.bad(base + int(rows[j]), f"{what} refers to string {int(refs[j])}, not defined before it")
        if len(defined_at):  # strings defined in this block: each use must come after its definition
            new = np.flatnonzero(refs >= first_new)
            early = rows[new] <= defined_at[refs[new].astype(np.int64) - first_new]
            if early.any():
                j = int(new[int(np.argmax(early))])
                raise self.bad(base + int(rows[j]), f"{what} refers to string {int(refs[j])}, "
                                                    "not defined before it")

    def join(self, rec: Any, base: int, first_new: int, defined_at: Any, emit: OnColumns) -> None:
        """Join this block's completions to their invokes (of this block or still pending)."""
        import numpy as np

        tag = rec["tag"]
        inv_rows = np.flatnonzero(tag == T_INVOKE)
        comp_rows = np.flatnonzero((tag == T_VALUE) | (tag == T_NO_VALUE))
        first_id = self.next_id
        ids, kind, key = rec["id"][inv_rows], rec["code"][inv_rows], rec["ref"][inv_rows]

        # invokes: ids count on from the previous block's, kinds and keys are known
        if len(ids) and (ids[0] != first_id or ids[-1] != first_id + len(ids) - 1 or (
                len(ids) > 1 and (np.diff(ids) != 1).any())):
            expected = np.arange(first_id, first_id + len(ids), dtype=np.int64)
            j = int(np.argmax(ids != expected))
            op_id, want = int(ids[j]), int(expected[j])
            what = f"op {op_id} invoked twice" if 0 <= op_id < want else \
                f"invoke of op {op_id} out of order (op {want} expected)"
            raise self.bad(base + int(inv_rows[j]), what)
        if len(kind) and kind.max() >= len(KINDS):
            j = int(np.argmax(kind >= len(KINDS)))
            raise self.bad(base + int(inv_rows[j]), f"malformed record: unknown op kind {int(kind[j])}")
        self.check_refs(key, inv_rows, base, first_new, defined_at, what="invoke", zero_ok=False)
        self.next_id = first_id + len(ids)

        cid, outcome, attempts, error = (rec[f][comp_rows] for f in ("id", "code", "small", "ref"))
        if len(cid) and (outcome.max() >= len(OUTCOMES) or attempts.min() == 0):
            j = int(np.argmax((outcome >= len(OUTCOMES)) | (attempts == 0)))
            raise self.bad(base + int(comp_rows[j]), f"malformed record: outcome {int(outcome[j])}, "
                                                     f"attempts {int(attempts[j])}")
        self.check_refs(error, comp_rows, base, first_new, defined_at, what="completion", zero_ok=True)

        # each completion's invoke: pending ones (ids below first_id) by search, this block's by offset
        p_id, p_key, p_kind, p_amount, p_t = self.pending
        n_pending, n_all = len(p_id), len(p_id) + len(ids)
        pos = cid + (n_pending - first_id)
        found = (cid >= first_id) & (cid < self.next_id)
        earlier = np.flatnonzero(cid < first_id)
        if len(earlier) and n_pending:
            at = np.searchsorted(p_id, cid[earlier])
            pos[earlier] = at
            found[earlier] = (at < n_pending) & (p_id[np.minimum(at, n_pending - 1)] == cid[earlier])
        np.clip(pos, 0, max(n_all - 1, 0), out=pos)
        mine = found & (pos >= n_pending)  # invoked in this block: the invoke must come first
        found[mine] &= inv_rows[pos[mine] - n_pending] < comp_rows[mine]
        if not found.all():
            j = int(np.argmax(~found))
            op_id, row = int(cid[j]), int(comp_rows[j])
            invoked_before = 0 <= op_id < first_id or (
                first_id <= op_id < self.next_id and int(inv_rows[op_id - first_id]) < row)
            what = f"op {op_id} completed twice" if invoked_before else \
                f"completion of op {op_id} that was not invoked"
            raise self.bad(base + row, what)
        hits = np.bincount(pos, minlength=n_all)
        if len(pos) and hits.max() > 1:
            twice = np.flatnonzero(hits[pos] > 1)  # every completion of an op completed twice here
            j = int(twice[1]) if len(twice) > 1 else int(twice[0])
            raise self.bad(base + int(comp_rows[j]), f"op {int(cid[j])} completed twice")

        all_key = np.concatenate([p_key, key])
        all_kind = np.concatenate([p_kind, kind])
        all_amount = np.concatenate([p_amount, rec["num"][inv_rows]])
        all_t = np.concatenate([p_t, rec["t"][inv_rows]])
        if len(pos):
            anchor = self.anchor_ns
            emit(OpColumns(
                worker=self.worker, strings=self.strings, id=cid, key=all_key[pos], kind=all_kind[pos],
                amount=all_amount[pos], outcome=outcome, has_value=tag[comp_rows] == T_VALUE,
                value=rec["num"][comp_rows], error=error, attempts=attempts,
                invoked_us=(all_t[pos] - anchor) // 1000, completed_us=(rec["t"][comp_rows] - anchor) // 1000))
            self.completed += len(pos)
            self.op_count += len(pos)
            keep = hits == 0
            all_id = np.concatenate([p_id, ids])
            self.pending = (all_id[keep], all_key[keep], all_kind[keep], all_amount[keep], all_t[keep])
        else:
            self.pending = (np.concatenate([p_id, ids]), all_key, all_kind, all_amount, all_t)

    def never_completed(self, emit: OnColumns) -> None:
        """Ops still open at the end: the target may or may not have applied them."""
        import numpy as np

        p_id, p_key, p_kind, p_amount, p_t = self.pending
        n = len(p_id)
        if not n:
            return
        self.strings.append(NEVER_COMPLETED)
        emit(OpColumns(
            worker=self.worker, strings=self.strings, id=p_id, key=p_key, kind=p_kind, amount=p_amount,
            outcome=np.full(n, OUTCOMES.index(Outcome.INDETERMINATE), dtype=np.uint8),
            has_value=np.zeros(n, dtype=bool), value=np.zeros(n, dtype=np.int64),
            error=np.full(n, len(self.strings), dtype=np.uint32), attempts=np.ones(n, dtype=np.uint16),
            invoked_us=(p_t - self.anchor_ns) // 1000, completed_us=np.full(n, -1, dtype=np.int64)))
        self.op_count += n
        self.pending = (p_id[:0], p_key[:0], p_kind[:0], p_amount[:0], p_t[:0])
