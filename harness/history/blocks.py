"""Reading version 4: compressed blocks, decoded into version 3's records -- held as a column per record
word (``Columns``) -- which RecordsReader checks and joins."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HistoryError
from harness.history import format as fmt
from harness.history.format import (
    _MAX_BLOCK_RECORDS,
    BLOCK_CODEC,
    BLOCK_MAGIC,
    FRAME,
    RECORD_BYTES,
    decode_block_columns,
)
from harness.history.records import RecordsReader

TORN = "is torn (the writer stopped mid-block)"  # a block cut short: the end of a file, or not all of it yet

# a record's first word: tag (byte 0), code (1), small (2-3), ref (4-7); then id, t, num, a word each
_FIELDS = {"tag": (0, 0, 0xFF, "u1"), "code": (0, 8, 0xFF, "u1"), "small": (0, 16, 0xFFFF, "<u2"),
           "ref": (0, 32, 0xFFFFFFFF, "<u4"), "id": (1, 0, None, "<i8"), "t": (2, 0, None, "<i8"),
           "num": (3, 0, None, "<i8")}


class Columns:
    """Version 4's records as decoded: a ``(4, n)`` array, a column per word, read by field name as the
    version-2 reader reads its structured rows (``rec["tag"]``, ``rec[:cut]``), each field contiguous."""

    __slots__ = ("_fields", "words")

    def __init__(self, words: Any) -> None:
        self.words = words
        self._fields: dict[str, Any] = {}

    def __len__(self) -> int:
        return int(self.words.shape[1])

    def __getitem__(self, key: str | slice) -> Any:
        import numpy as np

        if isinstance(key, slice):
            return Columns(self.words[:, key])
        got = self._fields.get(key)
        if got is None:
            word, shift, mask, dtype = _FIELDS[key]
            column = self.words[word]
            if mask is None:
                got = column.view(np.int64)
            else:
                got = ((column >> np.uint64(shift)) & np.uint64(mask)).astype(dtype)
            self._fields[key] = got
        return got

    def rows(self, first: int, k: int) -> bytes:
        """Records ``first`` to ``first + k`` as their 32 bytes each."""
        import numpy as np

        return np.ascontiguousarray(self.words[:, first:first + k].T).tobytes()


class BlocksReader(RecordsReader):
    """Reads a version-4 file: its blocks decoded, several at a time, into version 3's records, which
    the version-2 reader checks and joins. A torn or damaged block ends the readable part."""

    FRAME_BYTES = FRAME.size

    def __init__(self, path: Path, header: dict[str, Any], header_bytes: int) -> None:
        super().__init__(path, header, header_bytes)
        if header.get("block_codec") != BLOCK_CODEC:
            raise HistoryError(f"{path}:1: blocks coded {header.get('block_codec')!r} (expected {BLOCK_CODEC!r})")
        # the blocks of the batch being checked: their first record and byte offset, to name damage
        self._firsts: list[int] = []
        self._offsets: list[int] = []

    # records are ``Columns`` (see RecordsReader for what each hook does)

    @staticmethod
    def _empty() -> Any:
        import numpy as np

        return Columns(np.empty((4, 0), dtype="<u8"))

    @staticmethod
    def _count(data: Any) -> int:
        return len(data)

    @staticmethod
    def _glue(leftover: Any, block: Any) -> Any:
        import numpy as np

        return Columns(np.concatenate([leftover.words, block.words], axis=1))

    @staticmethod
    def _rest(data: Any, used: int) -> Any:
        return Columns(data.words[:, used:].copy())  # the batch's array is not kept for a few records

    @staticmethod
    def _head(data: Any, n: int) -> Any:
        return data[:n]

    def _records(self, data: Any, n: int) -> Any:
        return data if len(data) == n else data[:n]

    @staticmethod
    def _text(data: Any, first: int, k: int) -> bytes:
        import numpy as np

        raw = np.frombuffer(data.rows(first, k), dtype=np.uint8)
        return raw.reshape(k, RECORD_BYTES)[:, 1:].tobytes()

    @staticmethod
    def _torn_after(data: Any, n: int) -> bool:
        return False  # a block holds whole records

    def where(self, record: int) -> str:
        i = max(bisect.bisect_right(self._firsts, record) - 1, 0)
        at = f" (in the block at byte {self._offsets[i]})" if self._offsets else ""
        return f"{self.path}: record {record}{at}"

    def blocks(self, f: Any) -> Iterator[tuple[Any, bool]]:
        """Batches of at least ``_CHUNK_RECORDS`` records (the last may be short), each decoded straight
        into one array by a second thread while the caller checks the batch before it (zstd and numpy
        let go of the GIL: on two cores the decoding mostly hides); the first torn or damaged block
        ends them (``tail_problem`` says which)."""
        import zstandard

        decompressor = zstandard.ZstdDecompressor()
        want = self._batch_rows()
        offset = self.header_bytes
        record = 0
        frames: list[tuple[int, bytes, int]] = []  # this batch's blocks: records, payload, byte offset
        size = 0
        ahead: Future[_Batch] | None = None  # the batch being decoded
        problem: str | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="cbhist-decode") as pool:
            while True:
                try:
                    got = self._frame(f)
                except OSError as e:
                    got = f"cannot be read: {e}"
                if isinstance(got, tuple):
                    frames.append((got[2], got[1], offset))
                    size += got[0]
                    offset += self.FRAME_BYTES + len(got[1])
                    if size < want:
                        continue
                elif got is not None:
                    problem = f"the block at byte {offset} {got}; every block before it was read"
                # a batch is whole, or the blocks ended: decode it while the one before is checked
                submitted = pool.submit(self._decode_frames, frames, size, record, decompressor) if frames else None
                record += sum(self._records_in(counts) for counts, _, _ in frames)
                frames, size = [], 0
                if ahead is not None:
                    done = ahead.result()
                    self._hand_over(done)
                    if done.broken is not None:
                        yield done.data, True
                        return
                    yield done.data, False
                ahead = submitted
                if got is None or isinstance(got, str):
                    break
            done = ahead.result() if ahead is not None else None
            if done is not None:
                self._hand_over(done)
            self.tail_problem = (done.broken if done is not None else None) or problem
            yield (done.data if done is not None else self._empty()), True

    def _hand_over(self, batch: _Batch) -> None:
        """The batch the caller checks next: its blocks name any damage in it."""
        self._firsts, self._offsets = batch.firsts, batch.offsets
        if batch.broken is not None:
            self.tail_problem = batch.broken

    @staticmethod
    def _batch_rows() -> int:
        """The rows a batch holds at least (read at call time: tests make it small)."""
        return fmt._CHUNK_RECORDS

    @staticmethod
    def _records_in(counts: Any) -> int:
        """The records of a block, from its frame's counts."""
        return int(counts)

    @staticmethod
    def _decode_frames(frames: list[tuple[Any, bytes, int]], size: int, record: int, decompressor: Any) -> _Batch:
        return _decode(frames, size, record, decompressor)

    @staticmethod
    def _frame(f: Any) -> tuple[int, bytes, Any] | str | None:
        """The next block's rows (records, here), payload and counts (its records); None at the end; why,
        when it is torn or damaged."""
        frame = f.read(FRAME.size)
        if not frame:
            return None
        if len(frame) < FRAME.size:
            return TORN
        magic, n, length, crc = FRAME.unpack(frame)
        if magic != BLOCK_MAGIC or not 0 < n <= _MAX_BLOCK_RECORDS:
            return f"is damaged: not a block (magic {magic:#x}, {n} records)"
        payload = f.read(length)
        if len(payload) < length:
            return TORN
        if fmt._frame_crc(n, payload) != crc:
            return "is damaged: its CRC-32 does not match"
        return n, payload, n


@dataclass(frozen=True)
class _Batch:
    data: Any  # the records, whole (Columns; version 5: its OpBatch)
    firsts: list[int]  # each block's first record and byte offset
    offsets: list[int]
    broken: str | None  # why a block did not decode (it and what follows are left out)


def _decode(frames: list[tuple[Any, bytes, int]], size: int, record: int, decompressor: Any) -> _Batch:
    """The batch's records in one array; a block that does not decode ends them."""
    import numpy as np

    out = np.empty((4, size), dtype="<u8")
    firsts: list[int] = []
    offsets: list[int] = []
    at = 0
    for n, payload, offset in frames:
        try:
            decode_block_columns(n, payload, decompressor, out[:, at:at + n])
        except ValueError as e:
            return _Batch(Columns(out[:, :at]), firsts, offsets,
                          f"the block at byte {offset} is damaged: {e}; every block before it was read")
        firsts.append(record + at)
        offsets.append(offset)
        at += n
    return _Batch(Columns(out), firsts, offsets, None)
