"""Reading version 4: compressed blocks, decoded into version 3's records, which RecordsReader checks."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import HistoryError
from harness.history import format as fmt
from harness.history.format import _MAX_BLOCK_RECORDS, BLOCK_CODEC, BLOCK_MAGIC, FRAME, RECORD_BYTES, decode_block
from harness.history.records import RecordsReader


class BlocksReader(RecordsReader):
    """Reads a version-4 file: its blocks decoded, several at a time, into version 3's records, which
    the version-2 reader checks and joins. A torn or damaged block ends the readable part."""

    def __init__(self, path: Path, header: dict[str, Any], header_bytes: int) -> None:
        super().__init__(path, header, header_bytes)
        if header.get("block_codec") != BLOCK_CODEC:
            raise HistoryError(f"{path}:1: blocks coded {header.get('block_codec')!r} (expected {BLOCK_CODEC!r})")
        # the blocks of the batch being checked: their first record and byte offset, to name damage
        self._firsts: list[int] = []
        self._offsets: list[int] = []

    def where(self, record: int) -> str:
        i = max(bisect.bisect_right(self._firsts, record) - 1, 0)
        at = f" (in the block at byte {self._offsets[i]})" if self._offsets else ""
        return f"{self.path}: record {record}{at}"

    def blocks(self, f: Any) -> Iterator[tuple[bytes, bool]]:
        import zstandard

        decompressor = zstandard.ZstdDecompressor()
        want = fmt._CHUNK_RECORDS * RECORD_BYTES  # read at call time: tests make it small
        offset = self.header_bytes
        record = 0
        batch: list[bytes] = []
        size = 0
        firsts: list[int] = []
        offsets: list[int] = []
        eof = False
        while not eof:
            problem = None
            try:
                frame = f.read(FRAME.size)
                if not frame:
                    eof = True
                elif len(frame) < FRAME.size:
                    problem = "is torn (the writer stopped mid-block)"
                else:
                    magic, n, length, crc = FRAME.unpack(frame)
                    if magic != BLOCK_MAGIC or not 0 < n <= _MAX_BLOCK_RECORDS:
                        problem = f"is damaged: not a block (magic {magic:#x}, {n} records)"
                    else:
                        payload = f.read(length)
                        if len(payload) < length:
                            problem = "is torn (the writer stopped mid-block)"
                        elif fmt._frame_crc(n, payload) != crc:
                            problem = "is damaged: its CRC-32 does not match"
                        else:
                            try:
                                records = decode_block(n, payload, decompressor)
                            except ValueError as e:
                                problem = f"is damaged: {e}"
            except OSError as e:
                problem = f"cannot be read: {e}"
            if problem is not None:
                self.tail_problem = f"the block at byte {offset} {problem}; every block before it was read"
                eof = True
            elif not eof:
                firsts.append(record)
                offsets.append(offset)
                batch.append(records)
                size += len(records)
                record += n
                offset += FRAME.size + length
            if batch and (size >= want or eof):
                self._firsts, self._offsets = firsts, offsets
                yield b"".join(batch), eof
                batch, size, firsts, offsets = [], 0, [], []
            elif eof:
                yield b"", True
