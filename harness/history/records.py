"""Reading version 2 and 3: fixed-size records, checked and joined in large blocks with numpy.

It is long because it holds the record rules every later version shares: version 4 reads through it whole,
and version 5 (``harness.history.opblocks``) checks its records with the same methods, so a rule lives once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.core.errors import HistoryError
from harness.core.ops import Outcome
from harness.history import format as fmt
from harness.history.columns import OnColumns, OpColumns
from harness.history.format import (
    _MAX_TEXT,
    _TEXT_BYTES,
    KINDS_OF_VERSION,
    NEVER_COMPLETED,
    OUTCOMES,
    RECORD_BYTES,
    T_FOOTER,
    T_INVOKE,
    T_NO_VALUE,
    T_STRING,
    T_TEXT,
    T_VALUE,
)
from harness.history.model import WorkerHistory


class Damaged(HistoryError):
    """Malformed data at a record: reading stops there and keeps what came before."""

    def __init__(self, record: int, message: str, *, ops: int | None = None) -> None:
        super().__init__(message)
        self.record = record
        self.ops = ops  # version 5: the op rows of its batch before it (None: those before its record's block)


class RecordsReader:
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
        self.tail_problem: str | None = None  # why the blocks ended before the end of the file
        empty_i = np.empty(0, dtype=np.int64)
        # pending invokes: id, key, kind, amount, t_ns
        self.pending: tuple[Any, Any, Any, Any, Any] = (
            empty_i, np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.uint8), empty_i, empty_i)

    def where(self, record: int) -> str:
        return f"{self.path}: byte {self.header_bytes + record * RECORD_BYTES} (record {record})"

    def bad(self, record: int, what: str) -> Damaged:
        return Damaged(record, f"{self.where(record)}: {what}")

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
        leftover: Any = self._empty()
        base = 0  # record number of the first record in ``leftover + block``
        for block, eof in self.blocks(f):
            data = self._glue(leftover, block) if self._count(leftover) else block
            state = self._state()
            try:
                if self.footer is not None and data:
                    raise self.bad(base, "record after the footer")
                used = self.block(data, base, eof, emit)
            except Damaged as damage:
                self._restore(state)
                self._read_before(data, base, damage, emit)
                break
            leftover = self._rest(data, used)
            base += used
            if eof or self.problem is not None:
                break
        if self.tail_problem is not None and self.problem is None:
            after = "" if self.footer is None else "damaged after the footer: "
            self.problem = after + self.tail_problem
        if self.footer is None and self.problem is None:
            if len(leftover):
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

    # --- the records of a block: bytes of 32-byte rows here; columns of words in version 4 ----------

    @staticmethod
    def _empty() -> Any:
        return b""

    @staticmethod
    def _count(data: Any) -> int:
        """Whole records in ``data``."""
        return len(data) // RECORD_BYTES

    @staticmethod
    def _glue(leftover: Any, block: Any) -> Any:
        return leftover + block

    @staticmethod
    def _rest(data: Any, used: int) -> Any:
        """What follows the first ``used`` records, carried over (a block may be a view of an array: kept)."""
        return bytes(data[used * RECORD_BYTES:])

    @staticmethod
    def _head(data: Any, n: int) -> Any:
        return data[:n * RECORD_BYTES]

    def _records(self, data: Any, n: int) -> Any:
        """The first ``n`` records, fields by name (tag, code, small, ref, id, t, num)."""
        import numpy as np

        return np.frombuffer(data, dtype=self.dtype, count=n)

    @staticmethod
    def _text(data: Any, first: int, k: int) -> bytes:
        """The text the ``k`` text records from record ``first`` carry (31 bytes each)."""
        import numpy as np

        raw = np.frombuffer(data, dtype=np.uint8, count=(first + k) * RECORD_BYTES)
        return raw[first * RECORD_BYTES:].reshape(k, RECORD_BYTES)[:, 1:].tobytes()

    @staticmethod
    def _torn_after(data: Any, n: int) -> bool:
        """Whether part of a record follows the ``n`` whole ones."""
        return len(data) > n * RECORD_BYTES

    def blocks(self, f: Any) -> Iterator[tuple[Any, bool]]:
        """The file's records in large blocks, and whether the block is the last: version 2 and 3 store
        them as they are."""
        size = fmt._CHUNK_RECORDS * RECORD_BYTES  # read at call time: tests make it small
        read = 0
        while True:
            try:
                block = f.read(size)
            except OSError as e:
                self.tail_problem = f"cannot read {self.path} past byte {self.header_bytes + read}: {e}"
                return
            read += len(block)
            eof = len(block) < size
            yield block, eof
            if eof:
                return

    def _read_before(self, data: Any, base: int, damage: Damaged, emit: OnColumns) -> None:
        """The records of ``data`` before the damaged one, then stop: the file is incomplete from there."""
        first = damage
        while damage.record > base:
            state = self._state()
            try:
                self.block(self._head(data, damage.record - base), base, True, emit)
                break
            except Damaged as earlier:  # the cut exposed damage further up: stop there instead
                self._restore(state)
                damage = earlier
        self.problem = f"damaged: {first}; the records before record {damage.record} were read"

    def block(self, data: Any, base: int, eof: bool, emit: OnColumns) -> int:
        """Decode the whole records of ``data``; returns how many were used (the rest is carried over)."""
        import numpy as np

        n = self._count(data)
        rec = self._records(data, n)
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
                body = self._text(data, r + 1, k)[:length]
                try:
                    self.strings.append(body.decode("utf-8", "surrogatepass"))
                except UnicodeDecodeError as e:
                    raise self.bad(base + r, f"string {ref} is not UTF-8") from e
                defined_at.append(r)
                skip = r + 1 + k
            elif t == T_TEXT:
                raise self.bad(base + r, "string text without its string record")
            elif t == T_FOOTER:
                if r + 1 < n or self._torn_after(data, n):
                    raise self.bad(base + r + 1, "record after the footer")
                self.footer = (int(rec["id"][r]), int(rec["num"][r]))
                cut = r
                break
            else:
                raise self.bad(base + r, f"unknown record tag {t!r}")
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

    def check_invokes(self, kind: Any, key: Any, rows: Any, base: int, first_new: int, defined_at: Any, *,
                      kinds: int) -> None:
        """Invoke records (at ``rows``) name a known kind and a key defined before them."""
        import numpy as np

        if len(kind) and kind.max() >= kinds:
            j = int(np.argmax(kind >= kinds))
            raise self.bad(base + int(rows[j]), f"malformed record: unknown op kind {int(kind[j])}")
        self.check_refs(key, rows, base, first_new, defined_at, what="invoke", zero_ok=False)

    def completions(self, rec: Any, rows: Any, base: int, first_new: int, defined_at: Any) -> tuple[Any, ...]:
        """The completion records at ``rows``, checked: op id, outcome, attempts, error."""
        import numpy as np

        cid, outcome, attempts, error = (rec[f][rows] for f in ("id", "code", "small", "ref"))
        if len(cid) and (outcome.max() >= len(OUTCOMES) or attempts.min() == 0):
            j = int(np.argmax((outcome >= len(OUTCOMES)) | (attempts == 0)))
            raise self.bad(base + int(rows[j]), f"malformed record: outcome {int(outcome[j])}, "
                                                f"attempts {int(attempts[j])}")
        self.check_refs(error, rows, base, first_new, defined_at, what="completion", zero_ok=True)
        return cid, outcome, attempts, error

    def completed_once(self, pos: Any, n_all: int, cid: Any, rows: Any, base: int) -> Any:
        """How many completions each invoke got (``pos``: each completion's invoke, of ``n_all``): none twice."""
        import numpy as np

        hits = np.bincount(pos, minlength=n_all)
        if len(pos) and hits.max() > 1:
            twice = np.flatnonzero(hits[pos] > 1)  # every completion of an op completed twice here
            j = int(twice[1]) if len(twice) > 1 else int(twice[0])
            raise self.bad(base + int(rows[j]), f"op {int(cid[j])} completed twice")
        return hits

    def unmatched(self, op_id: int, row: int, base: int, *, invoked_before: bool) -> Damaged:
        """A completion whose invoke is not open: completed before, or never invoked."""
        return self.bad(base + row, f"op {op_id} completed twice" if invoked_before else
                        f"completion of op {op_id} that was not invoked")

    def op_columns(self, cols: tuple[Any, ...], open_from_ns: int) -> OpColumns:
        """Joined ops (id, key, kind, amount, outcome, has_value, value, error, attempts, t0 and t1 in ns) as
        the batch handed over, times in µs since the anchor."""
        i, k, kd, a, out, hv, v, e, n, t0, t1 = cols
        anchor = self.anchor_ns
        return OpColumns(worker=self.worker, strings=self.strings, id=i, key=k, kind=kd, amount=a, outcome=out,
                         has_value=hv, value=v, error=e, attempts=n, invoked_us=(t0 - anchor) // 1000,
                         completed_us=(t1 - anchor) // 1000, open_from_us=(open_from_ns - anchor) // 1000)

    def with_pending(self, rec: Any, inv_rows: Any, key: Any, kind: Any) -> tuple[Any, Any, Any, Any]:
        """The open invokes, then this batch's (at ``inv_rows``): key, kind, amount, t_ns."""
        import numpy as np

        _, p_key, p_kind, p_amount, p_t = self.pending
        return (np.concatenate([p_key, key]), np.concatenate([p_kind, kind]),
                np.concatenate([p_amount, rec["num"][inv_rows]]), np.concatenate([p_t, rec["t"][inv_rows]]))

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
        kinds = KINDS_OF_VERSION[int(self.header.get("schema_version", 3))]
        self.check_invokes(kind, key, inv_rows, base, first_new, defined_at, kinds=kinds)
        self.next_id = first_id + len(ids)
        cid, outcome, attempts, error = self.completions(rec, comp_rows, base, first_new, defined_at)

        # each completion's invoke: pending ones (ids below first_id) by search, this block's by offset
        p_id = self.pending[0]
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
            raise self.unmatched(op_id, row, base, invoked_before=invoked_before)
        hits = self.completed_once(pos, n_all, cid, comp_rows, base)
        all_key, all_kind, all_amount, all_t = self.with_pending(rec, inv_rows, key, kind)
        if len(pos):
            keep = hits == 0
            answered = rec["t"][comp_rows]
            # ops still to come were invoked after the last record, or are open now
            last = max(int(rec["t"][inv_rows[-1]]) if len(inv_rows) else 0, int(answered.max()))
            open_from = min(int(all_t[keep].min(initial=last)), last)
            cols = (cid, all_key[pos], all_kind[pos], all_amount[pos], outcome, tag[comp_rows] == T_VALUE,
                    rec["num"][comp_rows], error, attempts, all_t[pos], answered)
            if len(answered) > 1 and (answered[1:] < answered[:-1]).any():
                # handed over in the order answered (what the streamed checks take): version 4's writer wrote
                # an op still out at a hand-over as it was answered, before ops answered earlier and held whole
                order = np.argsort(answered, kind="stable")
                cols = tuple(col[order] for col in cols)
            emit(self.op_columns(cols, open_from))
            self.completed += len(pos)
            self.op_count += len(pos)
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
