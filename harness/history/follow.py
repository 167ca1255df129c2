"""Following a history file (version 4 or 5) while its load process still writes it (the online checks).

Each ``poll`` hands over the ops of the blocks written since the last one, through the reader's own
checks and join (``BlocksReader``, ``OpBlocksReader``): an op is handed over once its completion is in a
block, an op still out stays pending (its invoke is in the file: it counts as in flight). A block not yet
whole -- the writer is in its write, or a remote worker's chunk has not all come -- is read again at the
next poll; a damaged one stops the following there (``problem``), as it ends the readable part of a finished file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.errors import HistoryError
from harness.history.blocks import TORN, BlocksReader
from harness.history.columns import OnColumns
from harness.history.opblocks import OpBlocksReader
from harness.history.records import Damaged

FOLLOWED = {4: BlocksReader, 5: OpBlocksReader}  # the block versions: what the writer writes, and before


class Follower:
    """One growing history file, read a block at a time as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader: BlocksReader | None = None
        self.offset = 0  # the byte after the last whole block read
        self.base = 0  # the record number of the first record not yet used (carried over)
        self.ended = False  # its footer was read: every op of the process has been handed over
        self.problem: str | None = None  # why following stopped early (the ops before it were handed over)
        self._leftover: Any = None
        self._decompressor: Any = None

    @property
    def worker(self) -> str | None:
        return None if self.reader is None else self.reader.worker

    def poll(self, emit: OnColumns) -> int:
        """Hand the ops of every block whole since the last poll to ``emit``; returns the blocks read."""
        if self.ended or self.problem is not None:
            return 0
        try:
            f = open(self.path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return 0
        except OSError as e:
            self.problem = f"cannot read {self.path}: {e}"
            return 0
        with f:
            if self.reader is None and not self._start(f):
                return 0
            assert self.reader is not None
            f.seek(self.offset)
            frames: list[tuple[Any, bytes, int]] = []
            rows = 0
            while True:
                got = self.reader._frame(f)
                if got is None or got == TORN:
                    break  # the end of what is written so far: the rest comes with a later poll
                if isinstance(got, str):
                    self.problem = f"{self.path}: the block at byte {self.offset} {got}"
                    break
                frames.append((got[2], got[1], self.offset))
                rows += got[0]
                self.offset += self.reader.FRAME_BYTES + len(got[1])
        if frames:
            self._take(frames, rows, emit)
        return len(frames)

    def _start(self, f: Any) -> bool:
        first = f.readline(1 << 16)
        if not first.endswith(b"\n"):
            return False  # the header is not whole yet
        try:
            header = json.loads(first)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.problem = f"{self.path}:1: not a counterbench history (no header)"
            return False
        version = header.get("schema_version") if isinstance(header, dict) else None
        reader = FOLLOWED.get(version) if isinstance(version, int) else None
        if reader is None:
            self.problem = (f"{self.path}: history schema_version {version!r}: only versions "
                            f"{', '.join(map(str, FOLLOWED))} are followed")
            return False
        try:
            self.reader = reader(self.path, header, len(first))
        except HistoryError as e:
            self.problem = str(e)
            return False
        import zstandard

        self._decompressor = zstandard.ZstdDecompressor()
        self._leftover = self.reader._empty()
        self.offset = len(first)
        return True

    def _take(self, frames: list[tuple[Any, bytes, int]], rows: int, emit: OnColumns) -> None:
        reader = self.reader
        assert reader is not None
        carried = reader._count(self._leftover)
        batch = reader._decode_frames(frames, rows, self.base + carried, self._decompressor)
        reader._hand_over(batch)
        data = reader._glue(self._leftover, batch.data) if carried else batch.data
        try:
            used = reader.block(data, self.base, False, emit)
        except Damaged as e:
            self.problem = str(e)
            return
        if batch.broken is not None:
            self.problem = f"{self.path}: {batch.broken}"
        self._leftover = reader._rest(data, used)
        self.base += used
        if reader.footer is not None:
            self.ended = True
