"""Reading histories: every version, every file of a folder; damage keeps what came before it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HistoryError, HistorySchemaError
from harness.history.blocks import BlocksReader
from harness.history.columns import OnColumns, OpColumns
from harness.history.format import READ_VERSIONS, history_files
from harness.history.model import History, WorkerHistory
from harness.history.records import RecordsReader
from harness.history.v1 import read_v1


def read_worker_history(path: Path, on_columns: OnColumns | None = None) -> WorkerHistory:
    """Read one worker's file; a torn or missing tail makes it incomplete, not an error.

    With ``on_columns``, the ops are handed over in batches as they are read (versions 2 to 4 keep
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
        if version in (2, 3):
            return RecordsReader(path, header, len(first)).read(f, on_columns)
        if version == 4:
            return BlocksReader(path, header, len(first)).read(f, on_columns)
    h = read_v1(path, header)
    if on_columns is not None and h.ops:
        on_columns(OpColumns.from_ops(h.worker, h.ops))
    return h


def read_headers(directory: Path) -> dict[str, dict[str, Any]]:
    """Each readable history's header, by worker (the first line of each file: cheap)."""
    out: dict[str, dict[str, Any]] = {}
    for p in history_files(directory):
        try:
            with open(p, "rb") as f:
                header = json.loads(f.readline(1 << 16))
        except (OSError, ValueError):
            continue
        if isinstance(header, dict) and header.get("type") == "header":
            out[str(header.get("worker"))] = header
    return out


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
