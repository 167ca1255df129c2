"""Durable per-worker history: writer, reader, merge.

File format (JSON lines), one file per worker under ``<run>/history/``:

    {"schema_version": 1, "type": "header", "worker": ..., "run_id": ..., ...}
    ["i", op_id, t_us, key, kind, amount]          invoke, written before the op is sent
    ["c", op_id, t_us, outcome, value, error]      completion, exactly one per invoke
    ["c", op_id, t_us, outcome, value, error, n]   ... sent as n requests (SDK retries), when n > 1
    {"type": "footer", "invoked": n, "completed": m}

``t_us`` is microseconds on the worker's monotonic clock since ``anchor`` in the
header. A file without a footer is incomplete (the worker died or was cut off):
its unfinished ops are indeterminate and the history is marked incomplete.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HistoryError, HistorySchemaError
from harness.ops import Completion, Op, OpKind, Outcome

# Version history of the history file format:
#   1: first version
SCHEMA_VERSION = 1

_BUFFER = 1 << 18
_monotonic_ns = time.monotonic_ns


class HistoryWriter:
    """Appends one worker's op records; any I/O failure raises HistoryError."""

    def __init__(self, path: Path, *, worker: str, run_id: str, scenario: str) -> None:
        self.path = path
        self.worker = worker
        self._next_id = 0
        self._completed = 0
        self._anchor_ns = time.monotonic_ns()
        self._closed = False
        self._quoted: dict[str, str] = {}
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
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "x", encoding="utf-8", buffering=_BUFFER)  # noqa: SIM115 - lives with the writer
            self._f.write(json.dumps(header) + "\n")
        except OSError as e:
            raise HistoryError(f"cannot write history {path}: {e}") from e

    # invoke and complete are on the hot path of every op: plain string building, keys quoted once

    def invoke(self, key: str, kind: OpKind, amount: int) -> int:
        """Record an op about to be sent; returns its id."""
        op_id = self._next_id
        self._next_id = op_id + 1
        qkey = self._quoted.get(key)
        if qkey is None:
            qkey = self._quoted[key] = json.dumps(key)
        t = (_monotonic_ns() - self._anchor_ns) // 1000
        self._write(f'["i",{op_id},{t},{qkey},"{kind}",{amount}]\n')
        return op_id

    def complete(self, op_id: int, done: Completion) -> None:
        self._completed += 1
        t = (_monotonic_ns() - self._anchor_ns) // 1000
        if done.outcome is Outcome.OK and done.error is None and done.attempts == 1:
            value = "null" if done.value is None else int(done.value)
            self._write(f'["c",{op_id},{t},"ok",{value},null]\n')
            return
        value = "null" if done.value is None else str(int(done.value))
        error = "null" if done.error is None else json.dumps(done.error[:200])
        more = f",{done.attempts}" if done.attempts > 1 else ""
        self._write(f'["c",{op_id},{t},"{done.outcome.value}",{value},{error}{more}]\n')

    def _write(self, line: str) -> None:
        try:
            self._f.write(line)
        except (OSError, ValueError) as e:  # ValueError: the file was closed, an op ran after the run
            raise HistoryError(f"cannot write history {self.path}: {e}") from e

    def flush(self) -> None:
        """Hand the buffered block to the OS: a killed process then loses at most what came after.

        Called every 200 ms while the load runs; writing in blocks keeps the per-op cost
        to a string append (fsync is left to close: the OS keeps what a killed process wrote).
        """
        if self._closed:
            return
        try:
            self._f.flush()
        except OSError as e:
            raise HistoryError(f"cannot write history {self.path}: {e}") from e

    def close(self) -> None:
        """Write the footer and make the file durable."""
        if self._closed:
            return
        footer = {"type": "footer", "invoked": self._next_id, "completed": self._completed}
        try:
            self._f.write(json.dumps(footer) + "\n")
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        except OSError as e:
            raise HistoryError(f"cannot finish history {self.path}: {e}") from e
        finally:
            self._closed = True


@dataclass
class WorkerHistory:
    worker: str
    path: Path
    header: dict[str, Any]
    ops: list[Op]
    complete: bool  # a footer was written and every invoke has its completion
    problem: str | None = None  # why it is incomplete


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


def read_worker_history(path: Path) -> WorkerHistory:
    """Read one worker's file; a torn or missing tail makes it incomplete, not an error."""
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise HistoryError(f"cannot read history {path}: {e}") from e
    with f:
        first = f.readline()
        try:
            header = json.loads(first)
        except json.JSONDecodeError as e:
            raise HistoryError(f"{path}:1: not a counterbench history (no header)") from e
        if not isinstance(header, dict) or header.get("type") != "header":
            raise HistoryError(f"{path}:1: not a counterbench history (no header)")
        if header.get("schema_version") != SCHEMA_VERSION:
            raise HistorySchemaError(
                f"{path}: history schema_version {header.get('schema_version')!r} is not supported "
                f"(this counterbench reads {SCHEMA_VERSION})"
            )
        worker = str(header["worker"])
        invokes: dict[int, tuple[int, str, OpKind, int]] = {}
        ops: list[Op] = []
        footer: dict[str, Any] | None = None
        problem: str | None = None
        for lineno, line in enumerate(f, start=2):
            if not line.endswith("\n"):
                problem = f"line {lineno} is torn (the writer stopped mid-record)"
                break
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise HistoryError(f"{path}:{lineno}: not a history record") from e
            if isinstance(rec, dict):
                if rec.get("type") != "footer":
                    raise HistoryError(f"{path}:{lineno}: unexpected record {rec.get('type')!r}")
                footer = rec
                continue
            if footer is not None:
                raise HistoryError(f"{path}:{lineno}: record after the footer")
            try:
                tag = rec[0]
                if tag == "i":
                    _, op_id, t, key, kind, amount = rec
                    if op_id in invokes:
                        raise HistoryError(f"{path}:{lineno}: op {op_id} invoked twice")
                    invokes[op_id] = (t, key, kind, amount)
                elif tag == "c":
                    _, op_id, t, outcome, value, error, *more = rec
                    inv = invokes.pop(op_id, None)
                    if inv is None:
                        raise HistoryError(f"{path}:{lineno}: completion of op {op_id} that was not invoked")
                    attempts = int(more[0]) if more else 1
                    ops.append(Op(worker, op_id, inv[1], inv[2], inv[3], Outcome(outcome), value, error, inv[0], t,
                                  attempts))
                else:
                    raise HistoryError(f"{path}:{lineno}: unknown record tag {tag!r}")
            except (ValueError, TypeError, IndexError) as e:
                raise HistoryError(f"{path}:{lineno}: malformed record: {line.strip()[:80]}") from e
    # ops still open never completed: the target may or may not have applied them
    for op_id, (t, key, kind, amount) in invokes.items():
        ops.append(Op(worker, op_id, key, kind, amount, Outcome.INDETERMINATE, None, "never completed", t, None))
    if footer is None and problem is None:
        problem = "no footer (the worker did not finish writing)"
    return WorkerHistory(worker, path, header, ops, complete=problem is None, problem=problem)


def read_history(directory: Path) -> History:
    """Every worker history in a run's ``history/`` folder."""
    files = sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
    if not files:
        raise HistoryError(f"no history in {directory}")
    return History([read_worker_history(p) for p in files])
