"""A run's history as read: one WorkerHistory per file, complete or not, and why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.ops import Op
from harness.history.columns import OpColumns


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
                from harness.history.reader import read_worker_history

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
