"""Reading histories: every version, every file of a folder; damage keeps what came before it."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HistoryError, HistorySchemaError
from harness.history.blocks import BlocksReader
from harness.history.columns import OnColumns, OpColumns
from harness.history.format import READ_VERSIONS, history_files
from harness.history.model import History, WorkerHistory
from harness.history.opblocks import OpBlocksReader
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
        if version == 5:
            return OpBlocksReader(path, header, len(first)).read(f, on_columns)
    h = read_v1(path, header)
    if on_columns is not None and h.ops:
        on_columns(OpColumns.from_ops(h.worker, h.ops))
    return h


def read_headers(directory: Path) -> dict[str, dict[str, Any]]:
    """Each readable history's header, by worker (the first line of each file: cheap)."""
    return {str(h.get("worker")): h for p in history_files(directory) if (h := _header(p)) is not None}


def _header(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline(1 << 16))
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) and header.get("type") == "header" else None


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


def read_history_interleaved(directory: Path, on_columns: Callable[..., None], *,
                             position: Callable[[OpColumns], int], on_ended: Callable[[str], None],
                             prepare: Callable[[OpColumns], Any] | None = None) -> History:
    """Like ``read_history``, every file read at once (a thread each, a few batches ahead) and the batches
    handed over (in this thread) from the file furthest behind: by ``position``, where a batch leaves its
    worker on the run's timeline. ``on_ended(worker)`` follows each worker's last batch. So a consumer that
    merges them by time holds only what one worker is ahead of another.

    ``prepare(batch)``, when given, runs in the file's own thread on each batch (work of that batch alone,
    off the consumer's thread; it must not touch what the consumer changes), and the consumer gets
    ``on_columns(batch, prepared)``."""
    files = history_files(directory)
    if not files:
        raise HistoryError(f"no history in {directory}")
    stop = threading.Event()
    feeds = [_Feed(p, stop, prepare) for p in files]
    for f in feeds:
        f.thread.start()
    try:
        live = list(feeds)
        while live:
            feed = min(live, key=lambda f: f.last)
            item = feed.queue.get()
            if isinstance(item, _End):
                feed.result = item.history
                live.remove(feed)
                on_ended(item.worker)
            elif isinstance(item, BaseException):
                raise item
            elif isinstance(item, _Ready):
                feed.last = position(item.columns)
                on_columns(item.columns, item.prepared)
            else:
                feed.last = position(item)
                on_columns(item)
    finally:
        stop.set()
        for f in feeds:
            f.thread.join()
    return History([f.result for f in feeds if f.result is not None])


@dataclass(frozen=True)
class _End:
    worker: str
    history: WorkerHistory


@dataclass(frozen=True)
class _Ready:
    columns: OpColumns
    prepared: Any


class _Feed:
    """One file read in its own thread into a short queue (the reader waits while the queue is full)."""

    def __init__(self, path: Path, stop: threading.Event, prepare: Callable[[OpColumns], Any] | None) -> None:
        self.path, self.stop, self.prepare = path, stop, prepare
        self.queue: queue.Queue[OpColumns | _Ready | _End | BaseException] = queue.Queue(maxsize=1)
        self.last = -(1 << 63)
        self.result: WorkerHistory | None = None
        self.thread = threading.Thread(target=self._run, name=f"cbhist-{path.stem}", daemon=True)

    def _batch(self, c: OpColumns) -> None:
        self._put(c if self.prepare is None else _Ready(c, self.prepare(c)))

    def _put(self, item: OpColumns | _Ready | _End | BaseException) -> None:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _run(self) -> None:
        worker = str((_header(self.path) or {}).get("worker", self.path.stem))
        try:
            try:
                h = read_worker_history(self.path, self._batch)
            except HistoryError as e:
                h = WorkerHistory(self.path.stem, self.path, {}, complete=False, problem=f"unreadable: {e}", _ops=[])
            self._put(_End(worker, h))
        except _Stopped:
            return
        except BaseException as e:  # handed to the consumer, which raises it
            with contextlib.suppress(_Stopped):
                self._put(e)


class _Stopped(Exception):
    """The consumer stopped: the reading thread ends."""
