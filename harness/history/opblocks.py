"""Reading version 5: version 4's blocks with op rows. The records are checked and joined as version 4's
are (``BlocksReader``); the op rows, ops whole already, are checked in bulk, take the ids left over, and
are merged with the joined ops by the time they were answered."""

from __future__ import annotations

import bisect
from typing import Any

from harness.history import format as fmt
from harness.history.blocks import TORN, BlocksReader, Columns, _Batch
from harness.history.columns import OnColumns, OpColumns
from harness.history.format import (
    _MAX_BLOCK_RECORDS,
    BLOCK_MAGIC_V5,
    FRAME_V5,
    KINDS_OF_VERSION,
    OP_WORDS,
    T_INVOKE,
    T_NO_VALUE,
    T_VALUE,
    decode_block_v5,
)
from harness.history.records import Damaged


class OpBatch:
    """A batch of version-5 blocks as decoded: their records (``Columns``), their op rows (an
    ``(OP_WORDS, n)`` int64 array: key | kind << 32, amount, t0, t1, value), and where each block begins."""

    __slots__ = ("op_firsts", "ops", "rec_firsts", "records")

    def __init__(self, records: Columns, ops: Any, rec_firsts: list[int], op_firsts: list[int]) -> None:
        self.records, self.ops, self.rec_firsts, self.op_firsts = records, ops, rec_firsts, op_firsts

    def __len__(self) -> int:
        return len(self.records) + int(self.ops.shape[1])

    def block_of_record(self, record: int) -> int:
        return bisect.bisect_right(self.rec_firsts, record) - 1

    def block_of_op(self, op: int) -> int:
        return bisect.bisect_right(self.op_firsts, op) - 1

    def head(self, records: int, ops: int) -> OpBatch:
        """The first ``records`` records and ``ops`` op rows (the blocks they begin in: cut short)."""
        blocks = max(self.block_of_record(records - 1) if records else -1, self.block_of_op(ops - 1) if ops else -1) + 1
        return OpBatch(self.records[:records], self.ops[:, :ops], self.rec_firsts[:blocks], self.op_firsts[:blocks])


class OpBlocksReader(BlocksReader):
    """Reads a version-5 file (see ``harness.history.format``)."""

    FRAME_BYTES = FRAME_V5.size

    def __init__(self, path: Any, header: dict[str, Any], header_bytes: int) -> None:
        super().__init__(path, header, header_bytes)
        self._batch: OpBatch | None = None  # the batch ``block`` is reading: ``join`` takes its op rows
        self._op_offsets: list[int] = []  # each block's byte offset, to name damage in op rows

    # --- the blocks --------------------------------------------------------------------------------

    @staticmethod
    def _empty() -> Any:
        import numpy as np

        return OpBatch(Columns(np.empty((4, 0), dtype="<u8")), np.empty((OP_WORDS, 0), dtype="<i8"), [], [])

    @staticmethod
    def _count(data: Any) -> int:
        return len(data.records) if isinstance(data, OpBatch) else len(data)  # a batch, or its records

    @staticmethod
    def _glue(leftover: Any, block: Any) -> Any:
        return block  # never called: a version-5 batch leaves nothing over (``block``)

    def _rest(self, data: Any, used: int) -> Any:
        return self._empty()

    @staticmethod
    def _batch_rows() -> int:
        return max(fmt._CHUNK_RECORDS // 2, 1)  # an op row is an op: as many ops as version 4's batches

    @staticmethod
    def _records_in(counts: Any) -> int:
        return int(counts[0])

    @staticmethod
    def _frame(f: Any) -> tuple[int, bytes, Any] | str | None:
        frame = f.read(FRAME_V5.size)
        if not frame:
            return None
        if len(frame) < FRAME_V5.size:
            return TORN
        magic, n, m, length, crc = FRAME_V5.unpack(frame)
        if magic != BLOCK_MAGIC_V5 or not 0 < n + m <= _MAX_BLOCK_RECORDS:
            return f"is damaged: not a block (magic {magic:#x}, {n} records, {m} op rows)"
        payload = f.read(length)
        if len(payload) < length:
            return TORN
        if fmt._frame_crc_v5(n, m, payload) != crc:
            return "is damaged: its CRC-32 does not match"
        return n + m, payload, (n, m)

    @staticmethod
    def _decode_frames(frames: list[tuple[Any, bytes, int]], size: int, record: int, decompressor: Any) -> _Batch:
        """The batch's records and op rows, each in one array; a block that does not decode ends them."""
        import numpy as np

        n_rec = sum(c[0] for c, _, _ in frames)
        n_ops = size - n_rec
        rec = np.empty((4, n_rec), dtype="<u8")
        ops = np.empty((OP_WORDS, n_ops), dtype="<i8")
        rec_firsts: list[int] = []
        op_firsts: list[int] = []
        offsets: list[int] = []
        r = o = 0
        broken = None
        for (n, m), payload, offset in frames:
            try:
                decode_block_v5(n, m, payload, decompressor, rec[:, r:r + n], ops[:, o:o + m])
            except ValueError as e:
                broken = f"the block at byte {offset} is damaged: {e}; every block before it was read"
                break
            rec_firsts.append(r)
            op_firsts.append(o)
            offsets.append(offset)
            r += n
            o += m
        data = OpBatch(Columns(rec[:, :r]), ops[:, :o], rec_firsts, op_firsts)
        return _Batch(data, [record + f for f in rec_firsts], offsets, broken)

    def _hand_over(self, batch: _Batch) -> None:
        super()._hand_over(batch)
        self._op_offsets = batch.offsets

    # --- checking and joining ----------------------------------------------------------------------

    def block(self, data: Any, base: int, eof: bool, emit: OnColumns) -> int:
        """The batch's records as version 4 reads them, its op rows with them (``join``); what it hands over
        goes to ``emit`` only once all of it has been checked."""
        self._batch = data
        had_footer = self.footer is not None
        got: list[OpColumns] = []
        try:
            used = super().block(data.records, base, eof, got.append)
        finally:
            self._batch = None
        n = len(data.records)
        if used < n and not eof:
            raise self.bad(base + used, "a string's text runs past the end of its block")
        if self.footer is not None and not had_footer:  # the footer is its batch's last record
            after = data.block_of_record(n - 1) + 1
            if after < len(data.op_firsts) and data.op_firsts[after] < data.ops.shape[1]:
                raise self._bad_op(data, data.op_firsts[after], base, "op row after the footer")
        for c in got:
            emit(c)
        return used

    def _bad_op(self, data: OpBatch, op: int, base: int, what: str) -> Damaged:
        k = data.block_of_op(op)
        at = f" of the block at byte {self._op_offsets[k]}" if k < len(self._op_offsets) else ""
        records = data.rec_firsts[k + 1] if k + 1 < len(data.rec_firsts) else len(data.records)
        return Damaged(base + records, f"{self.path}: op row {op - data.op_firsts[k]}{at}: {what}", ops=op)

    def _read_before(self, data: Any, base: int, damage: Damaged, emit: OnColumns) -> None:
        """What came before the damage: the records before it, and the op rows of the blocks before its
        record's (an op row comes after its block's records), or the op rows before it."""
        first = damage
        while True:
            records = damage.record - base
            ops = damage.ops if damage.ops is not None else self._ops_before(data, records)
            head = data.head(records, ops)
            if not len(head) or self.footer is not None:  # nothing follows a footer read before this batch
                break
            state = self._state()
            try:
                self.block(head, base, True, emit)
                break
            except Damaged as earlier:  # the cut exposed damage further up: stop there instead
                self._restore(state)
                damage = earlier
        self.problem = f"damaged: {first}; what came before it was read"

    @staticmethod
    def _ops_before(data: OpBatch, record: int) -> int:
        k = data.block_of_record(record)
        return data.op_firsts[k] if k >= 0 else 0

    def join(self, rec: Any, base: int, first_new: int, defined_at: Any, emit: OnColumns) -> None:
        """Join the records' completions to their invokes (version 4's rule), give the op rows the ids the
        invokes left, and hand both over merged by the time they were answered."""
        import numpy as np

        data = self._batch
        assert data is not None
        ops = data.ops
        n_ops = int(ops.shape[1])
        tag = rec["tag"]
        inv_rows = np.flatnonzero(tag == T_INVOKE)
        comp_rows = np.flatnonzero((tag == T_VALUE) | (tag == T_NO_VALUE))
        first_id = self.next_id
        ids, kind, key = rec["id"][inv_rows], rec["code"][inv_rows], rec["ref"][inv_rows]
        span = len(ids) + n_ops
        kinds = KINDS_OF_VERSION[5]
        self._check_ids(data, ids, inv_rows, base, first_id)
        self.check_invokes(kind, key, inv_rows, base, first_new, defined_at, kinds=kinds)

        # op rows: a known kind, a key defined before them (in their block or earlier)
        halves = ops[0].view("<u4").reshape(n_ops, 2)  # little-endian words: the key, then the kind
        o_key = np.ascontiguousarray(halves[:, 0])
        o_kind = halves[:, 1]
        if n_ops and (int(o_kind.max()) >= kinds or int(o_key.min()) == 0 or int(o_key.max()) > len(self.strings)):
            bad = (o_kind >= kinds) | (o_key == 0) | (o_key > len(self.strings))
            if bad.any():
                j = int(np.argmax(bad))
                raise self._bad_op(data, j, base,
                                   f"malformed op row: kind {int(o_kind[j])}, key string {int(o_key[j])}")
        self.next_id = first_id + span
        if len(ids):
            free = np.ones(span, dtype=bool)
            free[ids - first_id] = False
            op_ids = np.flatnonzero(free)
            op_ids += first_id
        else:
            op_ids = np.arange(first_id, first_id + n_ops, dtype=np.int64)

        cid, outcome, attempts, error = self.completions(rec, comp_rows, base, first_new, defined_at)

        # each completion's invoke: pending, or of this batch and before it (ids in order: by search)
        p_id = self.pending[0]
        n_pending = len(p_id)
        all_id = np.concatenate([p_id, ids])
        n_all = len(all_id)
        pos = np.searchsorted(all_id, cid)
        np.clip(pos, 0, max(n_all - 1, 0), out=pos)
        found = all_id[pos] == cid if n_all else np.zeros(len(cid), dtype=bool)
        mine = found & (pos >= n_pending)
        found[mine] &= inv_rows[pos[mine] - n_pending] < comp_rows[mine]
        if not found.all():
            j = int(np.argmax(~found))
            op_id, row = int(cid[j]), int(comp_rows[j])
            later = np.flatnonzero(ids == op_id)
            invoked_before = 0 <= op_id < self.next_id and not (len(later) and int(inv_rows[later[0]]) > row)
            raise self.unmatched(op_id, row, base, invoked_before=invoked_before)
        hits = self.completed_once(pos, n_all, cid, comp_rows, base)
        all_key, all_kind, all_amount, all_t = self.with_pending(rec, inv_rows, key, kind)
        keep = hits == 0
        if len(pos) or n_ops:
            t = rec["t"]
            # ops still to come were invoked after the last time in the batch, or are open now
            last = max(int(t[inv_rows].max(initial=0)), int(t[comp_rows].max(initial=0)),
                       int(ops[3].max()) if n_ops else 0)
            open_from = min(int(all_t[keep].min(initial=last)), last)
            joined = (cid, all_key[pos], all_kind[pos], all_amount[pos], outcome, tag[comp_rows] == T_VALUE,
                      rec["num"][comp_rows], error, attempts, all_t[pos], t[comp_rows])
            if n_ops:
                joined = _among(joined, (op_ids, o_key, o_kind.astype(np.uint8), ops[1], ops[4],
                                         ops[2], ops[3]), ops[3])
            answered = joined[10]
            if len(answered) > 1 and (answered[1:] < answered[:-1]).any():  # the writer keeps them in order
                order = np.argsort(answered, kind="stable")
                joined = tuple(col[order] for col in joined)
            emit(self.op_columns(joined, open_from))
            self.completed += len(pos) + n_ops
            self.op_count += len(pos) + n_ops
        self.pending = (all_id[keep], all_key[keep], all_kind[keep], all_amount[keep], all_t[keep])

    def _check_ids(self, data: OpBatch, ids: Any, inv_rows: Any, base: int, first_id: int) -> None:
        """A block's invokes take ids among the block's own, in order: from the first not taken before it, as
        many as its invokes and op rows."""
        import numpy as np

        if not len(ids):
            return
        n_blocks = len(data.rec_firsts)
        block = np.searchsorted(np.asarray(data.rec_firsts, dtype=np.int64), inv_rows, side="right") - 1
        per_block = np.bincount(block, minlength=n_blocks) + np.diff(
            np.asarray([*data.op_firsts, data.ops.shape[1]], dtype=np.int64))
        ends = first_id + np.cumsum(per_block)
        starts = ends - per_block
        bad = (ids < starts[block]) | (ids >= ends[block])
        bad[1:] |= ids[1:] <= ids[:-1]
        if bad.any():
            j = int(np.argmax(bad))
            op_id = int(ids[j])
            twice = op_id < int(starts[block[j]]) or (j and op_id <= int(ids[j - 1]))  # an id taken before
            what = f"op {op_id} invoked twice" if twice else f"invoke of op {op_id} out of order"
            raise self.bad(base + int(inv_rows[j]), what)


def _among(joined: tuple[Any, ...], whole: tuple[Any, ...], answered: Any) -> tuple[Any, ...]:
    """The ops joined from records (few: ``(id, key, kind, amount, outcome, has_value, value, error, attempts,
    t0, t1)``, in the order answered) put among the op rows (``(id, key, kind, amount, value, t0, t1)``, answered
    at ``answered``, in order) by the time each was answered; the op rows' constant fields filled in."""
    import numpy as np

    n, k = len(answered), len(joined[0])
    size = n + k
    if not k:
        return (whole[0], whole[1], whole[2], whole[3], np.zeros(n, dtype=np.uint8), np.ones(n, dtype=bool),
                whole[4], np.zeros(n, dtype=np.uint32), np.ones(n, dtype=np.uint16), whole[5], whole[6])
    at = np.searchsorted(answered, joined[10], side="right")
    at += np.arange(k)  # where each joined op lands
    rows = np.ones(size, dtype=bool)
    rows[at] = False

    def merged(w: Any, j: Any) -> Any:
        out = np.empty(size, dtype=w.dtype)
        out[rows] = w
        out[at] = j
        return out

    def constant(value: int, dtype: Any, j: Any) -> Any:
        out = np.full(size, value, dtype=dtype)
        out[at] = j
        return out

    i, key, kind, amount, value, t0, t1 = whole
    return (merged(i, joined[0]), merged(key, joined[1]), merged(kind, joined[2]), merged(amount, joined[3]),
            constant(0, np.uint8, joined[4]), constant(True, bool, joined[5]), merged(value, joined[6]),
            constant(0, np.uint32, joined[7]), constant(1, np.uint16, joined[8]), merged(t0, joined[9]),
            merged(t1, joined[10]))
