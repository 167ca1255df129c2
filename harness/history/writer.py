"""The history writer: one worker's records, held and encoded in bulk, handed to the OS in blocks."""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

from harness.core.errors import HistoryError
from harness.core.ops import Completion, OpKind, Outcome
from harness.core.secrets import scrub
from harness.history.format import (
    _BUFFER,
    _ERROR_CHARS,
    _KIND_CODE,
    _MAX_INTERNED,
    _OK,
    _OUTCOME_CODE,
    _ROWS,
    _TEXT_BYTES,
    _ZSTD_LEVEL,
    BLOCK_CODEC,
    KINDS,
    OP_WORDS,
    OUTCOMES,
    RECORD_BYTES,
    SCHEMA_VERSION,
    T_FOOTER,
    T_INVOKE,
    T_NO_VALUE,
    T_STRING,
    T_VALUE,
    _monotonic_ns,
    _pack,
    encode_block_v5,
)


def _read_id(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def clock_identity() -> dict[str, str | None]:
    """Which monotonic clock this process reads: its machine and boot (``harness.checks.timed.host_of``).
    A host name cannot tell two machines of one name apart; containers on one kernel share its boot
    id, and its clock, and are rightly placed as one host."""
    return {"machine_id": _read_id("/etc/machine-id"), "boot_id": _read_id("/proc/sys/kernel/random/boot_id")}


def _same_or_all(column: list[int]) -> int | list[int]:
    """A column's one value when every row has it (one key, one amount: the usual case), which
    numpy fills without converting each Python int; else the column."""
    first = column[0]
    return first if column.count(first) == len(column) else column


class HistoryWriter:
    """Appends one worker's ops (version 5); any I/O failure raises HistoryError.

    Ops recorded whole are held as op rows, other records packed, in an in-memory block; ``flush`` (every
    200 ms) hands the block to the OS, compressed (``format.encode_block_v5``), and a block that outgrows
    8,192 op rows or 256 KiB of records is handed over at once.

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
        self._out = bytearray()  # blocks encoded and not yet written whole
        # ops recorded whole (``record``), as columns until they are encoded in bulk: key | kind << 32,
        # amount, invoke t_ns, completion t_ns, value; then the block's op rows (ids taken), and how many
        self._heads: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self._cols: tuple[list[int], list[int], list[int], list[int], list[int]] = ([], [], [], [], [])
        self._rows: list[Any] = []
        self._room = _ROWS  # ops recorded whole that the block still takes
        header = {
            "schema_version": SCHEMA_VERSION,
            "type": "header",
            "worker": worker,
            "run_id": run_id,
            "scenario": scenario,
            "host": socket.gethostname(),
            **clock_identity(),
            "pid": os.getpid(),
            "anchor_wall_ns": time.time_ns(),
            "anchor_monotonic_ns": self._anchor_ns,
            "record_bytes": RECORD_BYTES,
            "block_codec": BLOCK_CODEC,
        }
        line = json.dumps(header).encode() + b"\n"
        self._compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "xb", buffering=0)  # noqa: SIM115 - lives with the writer
            self._write_all(bytearray(line))
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
        ref = self._strings.get(key)
        if ref is None:
            ref = self._define(key)
        if t_ns is None:
            t_ns = _monotonic_ns()
        try:
            self._buf += _pack(T_INVOKE, _KIND_CODE[kind], 0, ref, op_id, t_ns, amount)  # type: ignore[operator]
        except (struct.error, KeyError, TypeError) as e:
            raise self._refused(e, f"invoke of op {op_id} ({kind} {amount!r})") from e
        self._next_id = op_id + 1  # only once its record is in: ids have no gaps
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
                if len(heads) >= self._room:
                    self._spill()
                return
            if kind in self._heads and type(amount) is int:
                ref = self._strings.get(key) or self._define(key)
                if self._strings.get(key) == ref:  # interned: the next op on this key takes the fast path
                    self._heads[kind][key] = ref | _KIND_CODE[kind] << 32
        self.complete(self.invoke(key, kind, amount, t0_ns), done, t1_ns)

    def _encode(self) -> None:
        """The ops held as columns, as op rows of the block: they take the next ids, in order."""
        import numpy as np

        heads, amounts, t0s, t1s, values = self._cols
        n = len(heads)
        if not n or self._buf is None:
            return
        out = np.empty((OP_WORDS, n), dtype="<i8")
        try:
            out[0], out[1], out[2], out[3], out[4] = _same_or_all(heads), _same_or_all(amounts), t0s, t1s, values
        except (OverflowError, TypeError, ValueError):
            # a number beyond 64 bits: record them one by one, so the refusal names the op; every op
            # was sent, so each still gets its invoke (a refused completion leaves it indeterminate)
            self._cols = ([], [], [], [], [])
            refused: HistoryError | None = None
            for head, amount, t0, t1, value in zip(heads, amounts, t0s, t1s, values, strict=True):
                try:
                    op_id = self.invoke(self._string_of(head & 0xFFFFFFFF), KINDS[head >> 32], amount, t0)
                    self.complete(op_id, Completion(_OK, value), t1)
                except HistoryError as e:
                    refused = refused or e
            if refused is not None:
                raise refused from None
            return
        self._next_id += n  # implicit: the ids after those taken before (format.py)
        self._completed += n
        self._rows.append(out)
        self._room -= n
        self._cols = ([], [], [], [], [])
        if self._on_latencies is not None:  # all ok: the code is the kind's
            self._on_latencies((out[0] >> 32) * len(OUTCOMES), out[3], out[3] - out[2])

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

    def _write_all(self, data: bytearray) -> None:
        """Write every byte; what was written leaves ``data``, even when a write fails."""
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
            if done:
                del data[:done]

    def _write_block(self) -> None:
        """The block's records and op rows, compressed, to the OS. Encoded, they leave the block at once
        and wait in ``_out`` until written: a write that fails part-way is continued by the next one, so
        no op is written twice (a process killed mid-write leaves a torn last block)."""
        import numpy as np

        buf = self._buf
        if buf or self._rows:
            rows = self._rows
            joined = rows[0] if len(rows) == 1 else np.concatenate(rows, axis=1) if rows else \
                np.empty((OP_WORDS, 0), dtype="<i8")
            self._out += encode_block_v5(buf or b"", joined, self._compressor)
            self._rows, self._room = [], _ROWS
            if buf:
                del buf[:]
        if self._out:
            self._write_all(self._out)

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
        try:
            self._write_block()
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
            self._write_block()
            os.fsync(self._f.fileno())
            self._f.close()
        except (OSError, ValueError) as e:
            raise HistoryError(f"cannot finish history {self.path}: {e}") from e
        finally:
            self._closed = True
            self._buf = None
            self._heads = {kind: {} for kind in KINDS}  # so record() takes the path that refuses
