"""Durable per-worker history: the format, the writer, the readers, the columns the checks tally.

    format.py   the file format (versions 1 to 4), a block's coding, and where files go
    writer.py   HistoryWriter: one worker's records, encoded in bulk, handed to the OS in compressed blocks
    reader.py   read_history / read_worker_history: any version; damage keeps what came before
    records.py  the version-2 and -3 reader (fixed-size records), which checks and joins every version's records
    blocks.py   the version-4 reader: decodes the blocks into records for records.py
    v1.py       the version-1 (JSON lines) reader
    columns.py  OpColumns: a batch of ops as numpy columns
    strings.py  StringLookup: a value per string the ops refer to (keys, errors), applied to columns
    model.py    WorkerHistory, History
"""

from harness.history.columns import OnColumns, OpColumns
from harness.history.format import (
    KINDS,
    NEVER_COMPLETED,
    OUTCOMES,
    READ_VERSIONS,
    RECORD_BYTES,
    SCHEMA_VERSION,
    SUFFIX,
    SUFFIXES,
    history_file,
    history_files,
)
from harness.history.model import History, WorkerHistory
from harness.history.reader import read_headers, read_history, read_history_interleaved, read_worker_history
from harness.history.strings import StringLookup
from harness.history.writer import HistoryWriter

__all__ = ["KINDS", "NEVER_COMPLETED", "OUTCOMES", "READ_VERSIONS", "RECORD_BYTES", "SCHEMA_VERSION", "SUFFIX",
           "SUFFIXES", "History", "HistoryWriter", "OnColumns", "OpColumns", "StringLookup", "WorkerHistory",
           "history_file", "history_files", "read_headers", "read_history", "read_history_interleaved",
           "read_worker_history"]
