"""History files: round trip, torn tails, missing footers, malformed records, versions."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

import harness.history.format as history_format
import harness.history.writer as history_writer
from harness.core.errors import HistoryError, HistorySchemaError
from harness.core.ops import Completion, Outcome
from harness.history import (
    RECORD_BYTES,
    HistoryWriter,
    history_file,
    history_files,
    read_history,
    read_worker_history,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REC = struct.Struct("<BBHIqqq")


def writer(tmp_path: Path, name: str = "w1") -> HistoryWriter:
    return HistoryWriter(history_file(tmp_path / "history", name), worker=name, run_id="r", scenario="s")


def by_id(path: Path) -> list:
    return sorted(read_worker_history(path).ops, key=lambda o: o.id)


# --- version 4: the writer's format --------------------------------------------------------------

def test_round_trip(tmp_path):
    w = writer(tmp_path)
    a = w.invoke("k", "incr", 5)
    b = w.invoke("k", "decr_if_positive", -1)
    w.complete(b, Completion.fail("sold out"))
    w.complete(a, Completion.ok(5))
    w.close()
    assert w.path.name == "w1.cbhist"
    h = read_history(tmp_path / "history")
    assert h.complete
    ops = sorted(h.ops(), key=lambda o: o.id)
    assert [(o.key, o.kind, o.amount, o.outcome, o.value, o.error) for o in ops] == [
        ("k", "incr", 5, Outcome.OK, 5, None),
        ("k", "decr_if_positive", -1, Outcome.FAIL, None, "sold out"),
    ]
    assert all(o.latency_us is not None and o.latency_us >= 0 for o in ops)
    assert h.workers[0].header["schema_version"] == 5 and h.workers[0].op_count == 2


def test_round_trip_of_every_field(tmp_path):
    keys = ["", "k", "ключ-€-😀" * 7, "x" * 31, "y" * 32, *(f"page:{i}" for i in range(300))]
    w = writer(tmp_path)
    want = []
    for i, key in enumerate(keys * 2):
        amount = (-1) ** i * (i * 1_000_003)
        op = w.invoke(key, "incr" if i % 3 else "decr_if_positive", amount)
        if i % 5 == 0:
            done = Completion.ok(None)  # acknowledged without a value
        elif i % 5 == 1:
            done = Completion.ok(-(2**63) if i == 1 else 2**63 - 1 - i)
        elif i % 5 == 2:
            done = Completion.fail(f"error {i % 40}: ünïcode")  # errors repeat: interned once each
        elif i % 5 == 3:
            done = Completion(Outcome.INDETERMINATE, None, "timeout " + "z" * 300, attempts=i % 7 + 1)
        else:
            done = Completion(Outcome.OK, i, "ok after a retry", attempts=2)
        w.complete(op, done)
        want.append((op, key, "incr" if i % 3 else "decr_if_positive", amount, done.outcome, done.value,
                     None if done.error is None else done.error[:200], done.attempts))
    w.close()
    got = [(o.id, o.key, o.kind, o.amount, o.outcome, o.value, o.error, o.attempts) for o in by_id(w.path)]
    assert got == want


def test_reading_in_small_blocks_gives_the_same_ops(tmp_path, monkeypatch):
    """Strings and in-flight ops that straddle the reader's blocks."""
    w = writer(tmp_path)
    open_ops = []
    for i in range(500):
        open_ops.append(w.invoke(f"key-{i % 37}-" + "long" * (i % 13), "incr", 1 + i % 4))
        if i % 3 == 0:
            w.complete(open_ops.pop(0), Completion.fail(f"reason {i % 11} " * 5))
        if len(open_ops) > 4:
            w.complete(open_ops.pop(0), Completion.ok(i))
    w.close()
    whole = by_id(w.path)
    for records in (1, 2, 3, 7, 64):
        monkeypatch.setattr(history_format, "_CHUNK_RECORDS", records)
        assert by_id(w.path) == whole, records
    assert sum(o.completed_us is None for o in whole) == 4


def test_op_without_completion_is_indeterminate_and_file_still_complete(tmp_path):
    w = writer(tmp_path)
    w.invoke("k", "incr", 1)
    w.close()
    h = read_worker_history(w.path)
    assert h.complete
    assert h.ops[0].outcome is Outcome.INDETERMINATE and h.ops[0].completed_us is None
    assert h.ops[0].error == "never completed"


def test_missing_footer_is_incomplete(tmp_path):
    w = writer(tmp_path)
    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w.invoke("k", "incr", 1)
    w.flush()  # the worker died here, before close()
    h = read_worker_history(w.path)
    assert not h.complete and "no footer" in (h.problem or "")
    assert [o.outcome for o in sorted(h.ops, key=lambda o: o.id)] == [Outcome.OK, Outcome.INDETERMINATE]


def test_unflushed_records_are_lost_but_the_header_is_there(tmp_path):
    w = writer(tmp_path)
    w.invoke("k", "incr", 1)  # still in the writer's block
    h = read_worker_history(w.path)
    assert not h.complete and h.ops == []


@pytest.mark.parametrize("batch", [1 << 19, 2])
def test_a_torn_last_block_loses_only_itself_wherever_it_was_cut(tmp_path, monkeypatch, batch):
    monkeypatch.setattr(history_format, "_CHUNK_RECORDS", batch)
    w = writer(tmp_path)
    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w.flush()  # the first block
    first = w.path.stat().st_size
    w.invoke("k", "incr", 1)
    w.complete(1, Completion.fail("a reason long enough to need two text records"))
    w.close()  # the second block: the second op and the footer
    data = w.path.read_bytes()
    assert len(data) > first
    for end in range(first + 1, len(data)):  # every byte the process may have died at
        w.path.write_bytes(data[:end])
        h = read_worker_history(w.path)
        assert not h.complete and f"the block at byte {first} is torn" in (h.problem or ""), end
        assert [(o.id, o.outcome, o.value) for o in h.ops] == [(0, Outcome.OK, 1)], end
    w.path.write_bytes(data[:first])  # cut between blocks: no footer
    h = read_worker_history(w.path)
    assert not h.complete and "no footer" in (h.problem or "") and [o.value for o in h.ops] == [1]


@pytest.mark.parametrize("batch", [1 << 19, 2])  # records decoded at a time: all blocks in one batch, or one each
def test_a_damaged_block_ends_the_readable_part_and_keeps_the_blocks_before(tmp_path, monkeypatch, batch):
    monkeypatch.setattr(history_format, "_CHUNK_RECORDS", batch)
    w = writer(tmp_path)
    sizes = []
    for i in range(3):
        w.complete(w.invoke("k", "incr", 1), Completion.ok(i + 1))
        w.flush()
        sizes.append(w.path.stat().st_size)
    w.close()
    data = bytearray(w.path.read_bytes())
    data[sizes[1] - 1] ^= 0xFF  # the second block's last payload byte
    w.path.write_bytes(bytes(data))
    h = read_worker_history(w.path)
    assert not h.complete and f"the block at byte {sizes[0]} is damaged: its CRC-32" in (h.problem or "")
    assert [o.value for o in h.ops] == [1]


@pytest.mark.parametrize("batch", [1 << 19, 2])
def test_a_block_that_does_not_decode_ends_the_readable_part(tmp_path, monkeypatch, batch):
    monkeypatch.setattr(history_format, "_CHUNK_RECORDS", batch)
    w = writer(tmp_path)
    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w.close()
    garbage = b"not zstd at all"  # a frame whose CRC holds: written so, yet not a block's payload
    size = w.path.stat().st_size
    with open(w.path, "ab") as f:
        f.write(history_format.FRAME_V5.pack(history_format.BLOCK_MAGIC_V5, 2, 0, len(garbage),
                                             history_format._frame_crc_v5(2, 0, garbage)) + garbage)
    h = read_worker_history(w.path)
    assert f"the block at byte {size} is damaged: the payload does not decompress" in (h.problem or "")
    assert [o.value for o in h.ops] == [1]


def test_data_after_the_footer_is_damage(tmp_path):
    w = writer(tmp_path)
    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w.close()
    size = w.path.stat().st_size
    with open(w.path, "ab") as f:
        f.write(b"junk after the end of the history")
    h = read_worker_history(w.path)
    assert not h.complete and f"damaged after the footer: the block at byte {size}" in (h.problem or "")
    assert [o.value for o in h.ops] == [1]


def test_torn_string_definition_leaves_its_op_indeterminate(tmp_path):
    p = v2_file(tmp_path, string(1, "k"), inv(0), done(0, 1), inv(1), string(2, "e" * 100))
    p.write_bytes(p.read_bytes()[:-2 * RECORD_BYTES])  # two of the string's four text records gone
    h = read_worker_history(p)
    assert not h.complete and "torn" in (h.problem or "")
    assert [o.outcome for o in by_id(p)] == [Outcome.OK, Outcome.INDETERMINATE]


def test_retried_op_keeps_its_attempt_count(tmp_path):
    w = writer(tmp_path)
    w.complete(w.invoke("k", "incr", 1), Completion(Outcome.INDETERMINATE, None, "3 attempts", 3))
    w.complete(w.invoke("k", "incr", 1), Completion.ok(2))
    w.close()
    assert sorted(o.attempts for o in read_worker_history(w.path).ops) == [1, 3]


def test_write_failure_raises_history_error(tmp_path):
    w = writer(tmp_path)

    class Full:
        def write(self, _: bytes) -> int:
            raise OSError(28, "No space left on device")

    w._f = Full()  # type: ignore[assignment]
    w.invoke("k", "incr", 1)
    with pytest.raises(HistoryError, match="No space left"):
        w.flush()


def test_a_full_block_is_written_at_once_and_its_failure_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(history_writer, "_BUFFER", 4 * RECORD_BYTES)
    w = writer(tmp_path)
    for _ in range(3):
        w.invoke("k", "incr", 1)
    assert w.path.stat().st_size > 4 * RECORD_BYTES  # the header, then the block of the first ops

    class Full:
        def write(self, _: bytes) -> int:
            raise OSError(28, "No space left on device")

    w._f = Full()  # type: ignore[assignment]
    with pytest.raises(HistoryError, match="No space left"):
        for _ in range(8):
            w.invoke("k", "incr", 1)


def test_writing_after_close_raises_history_error(tmp_path):
    w = writer(tmp_path)
    w.close()
    with pytest.raises(HistoryError, match="closed"):
        w.invoke("k", "incr", 1)
    with pytest.raises(HistoryError, match="closed"):
        w.complete(0, Completion.ok(1))


def test_a_value_beyond_64_bits_is_refused_loudly(tmp_path):
    w = writer(tmp_path)
    op = w.invoke("k", "incr", 1)
    with pytest.raises(HistoryError, match=f"op {op}"):
        w.complete(op, Completion.ok(2**64))


def test_writer_refuses_to_overwrite(tmp_path):
    writer(tmp_path).close()
    with pytest.raises(HistoryError):
        writer(tmp_path)


def test_streaming_read_keeps_no_ops_but_can_rebuild_them(tmp_path):
    w = writer(tmp_path)
    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w.close()
    batches = []
    h = read_worker_history(w.path, batches.append)
    assert sum(len(b) for b in batches) == 1 and h._columns is None
    assert [o.value for o in h.ops] == [1]  # re-read on demand


# --- version 2: damage ends the readable part, named by file, byte and record --------------------

ANCHOR = 5_000_000


def v2_file(tmp_path: Path, *records: bytes) -> Path:
    """A version-2 file with a hand-written header (clock anchor 5 ms) and the given records."""
    header = json.dumps({"schema_version": 2, "type": "header", "worker": "h", "run_id": "r", "scenario": "s",
                         "anchor_monotonic_ns": ANCHOR, "record_bytes": RECORD_BYTES}).encode()
    header += b" " * (-(len(header) + 1) % RECORD_BYTES) + b"\n"
    p = tmp_path / "h.cbhist"
    p.write_bytes(header + b"".join(records))
    return p


def inv(op_id: int, key: int = 1, amount: int = 1, kind: int = 0) -> bytes:
    return REC.pack(ord("i"), kind, 0, key, op_id, ANCHOR + 1000 * (10 + op_id), amount)


def done(op_id: int, value: int | None = 1, outcome: int = 0, error: int = 0, attempts: int = 1) -> bytes:
    tag = ord("n") if value is None else ord("c")
    return REC.pack(tag, outcome, attempts, error, op_id, ANCHOR + 1000 * (100 + op_id) + 999, value or 0)


def string(ref: int, text: str) -> bytes:
    data = text.encode()
    out = REC.pack(ord("s"), 0, 0, ref, len(data), 0, 0)
    data += b"\0" * (-len(data) % 31)
    return out + b"".join(b"x" + data[i:i + 31] for i in range(0, len(data), 31))


def footer(invoked: int, completed: int) -> bytes:
    return REC.pack(ord("f"), 0, 0, 0, invoked, 0, completed)


def test_hand_built_records_read(tmp_path):
    p = v2_file(tmp_path, string(1, "k"), inv(0), inv(1), inv(2, amount=-1, kind=1), done(1, 7), string(2, "boom"),
                done(0, None, outcome=1, error=2), footer(3, 2))
    h = read_worker_history(p)
    assert h.complete and h.op_count == 3
    assert [(o.id, o.kind, o.amount, o.outcome.value, o.value, o.error, o.invoked_us, o.completed_us)
            for o in by_id(p)] == [
        (0, "incr", 1, "fail", None, "boom", 10, 100),
        (1, "incr", 1, "ok", 7, None, 11, 101),
        (2, "decr_if_positive", -1, "indeterminate", None, "never completed", 12, None),
    ]


MALFORMED = [  # where: the offending record ("k" takes records 0, 1)
    ((string(1, "k"), done(3)), 2, "completion of op 3 that was not invoked"),
    ((string(1, "k"), inv(0), inv(0)), 3, "op 0 invoked twice"),
    ((string(1, "k"), inv(0), done(0), done(0)), 4, "op 0 completed twice"),
    ((string(1, "k"), inv(0), inv(1), done(1), done(0), done(1)), 6, "op 1 completed twice"),
    ((string(1, "k"), done(0), inv(0)), 2, "completion of op 0 that was not invoked"),
    ((string(1, "k"), inv(1)), 2, "invoke of op 1 out of order"),
    ((string(1, "k"), inv(0), footer(1, 0), inv(1)), 4, "record after the footer"),
    ((string(1, "k"), inv(0), footer(1, 0), footer(1, 0)), 4, "record after the footer"),
    ((string(1, "k"), inv(0, key=2)), 2, "refers to string 2"),
    ((inv(0), string(1, "k")), 0, "refers to string 1"),
    ((string(1, "k"), inv(0), done(0, error=5)), 3, "refers to string 5"),
    ((string(2, "k"),), 0, "string 2 defined out of order"),
    ((string(1, "k" * 40)[:-32] + inv(0),), 2, "cut short"),
    ((b"x" + bytes(31),), 0, "text without its string record"),
    ((REC.pack(ord("?"), 0, 0, 0, 0, 0, 0),), 0, "unknown record tag"),
    ((string(1, "k"), inv(0, kind=9)), 2, "unknown op kind"),
    ((string(1, "k"), inv(0), done(0, outcome=3)), 3, "outcome 3"),
    ((string(1, "k"), inv(0), done(0, attempts=0)), 3, "attempts 0"),
]


@pytest.mark.parametrize(("records", "where", "what"), MALFORMED)
def test_malformed_record_names_file_offset_and_record(tmp_path, records, where, what):
    p = v2_file(tmp_path, *records)
    data = p.read_bytes()
    header = len(data) - sum(len(r) for r in records)
    h = read_worker_history(p)
    assert not h.complete
    assert f"{p}: byte {header + where * RECORD_BYTES} (record {where}): " in (h.problem or "")
    assert what in (h.problem or "")
    # every op before the damage is kept, as if the file had been cut there
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "h.cbhist").write_bytes(data[:header + where * RECORD_BYTES])
    assert [(o.id, o.outcome, o.value) for o in by_id(p)] == [(o.id, o.outcome, o.value)
                                                              for o in by_id(cut / "h.cbhist")]


def test_damage_keeps_the_acknowledged_ops_before_it(tmp_path):
    # three ops acknowledged, then a garbled record: the three stay ok, the file is incomplete
    p = v2_file(tmp_path, string(1, "k"), inv(0), done(0, 1), inv(1), done(1, 2), inv(2), done(2, 3),
                b"\xff" * RECORD_BYTES, inv(3), done(3, 4), footer(4, 4))
    h = read_worker_history(p)
    assert not h.complete and "unknown record tag 255" in (h.problem or "")
    assert [(o.id, o.outcome.value, o.value) for o in by_id(p)] == [(0, "ok", 1), (1, "ok", 2), (2, "ok", 3)]


def test_damage_in_a_later_block_keeps_the_earlier_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(history_format, "_CHUNK_RECORDS", 4)
    records = [string(1, "k")] + [r for i in range(6) for r in (inv(i), done(i, i + 1))]
    p = v2_file(tmp_path, *records, done(2, 9), footer(6, 6))  # op 2 completed twice, at record 14
    h = read_worker_history(p)
    assert "op 2 completed twice" in (h.problem or "") and "(record 14)" in (h.problem or "")
    assert [o.value for o in by_id(p)] == [1, 2, 3, 4, 5, 6]


def v4_file(tmp_path: Path, *blocks: list[bytes]) -> Path:
    """A version-4 file with a hand-written header and the given records, each list one block."""
    import zstandard

    header = json.dumps({"schema_version": 4, "type": "header", "worker": "h", "run_id": "r", "scenario": "s",
                         "anchor_monotonic_ns": ANCHOR, "record_bytes": RECORD_BYTES, "block_codec": "zstd"})
    tmp_path.mkdir(exist_ok=True)
    p = tmp_path / "h.cbhist"
    c = zstandard.ZstdCompressor()
    p.write_bytes(header.encode() + b"\n" + b"".join(history_format.encode_block(b"".join(b), c) for b in blocks))
    return p


@pytest.mark.parametrize(("records", "where", "what"), MALFORMED)
def test_malformed_records_in_a_block_are_named_by_record_and_block(tmp_path, records, where, what):
    if len(b"".join(records)) % RECORD_BYTES:
        pytest.skip("a block holds whole records")
    v4 = v4_file(tmp_path / "v4", list(records))
    header = len(v4.read_bytes().split(b"\n", 1)[0]) + 1
    h = read_worker_history(v4)
    assert not h.complete and what in (h.problem or "")
    assert f"{v4}: record {where} (in the block at byte {header})" in (h.problem or "")
    v2 = v2_file(tmp_path, *records)  # the ops before the damage: as version 2 keeps them
    assert [(o.id, o.outcome, o.value) for o in by_id(v4)] == [(o.id, o.outcome, o.value) for o in by_id(v2)]


@pytest.mark.parametrize("batch", [1 << 19, 2])
def test_damage_in_a_later_block_is_named_there_and_keeps_the_earlier_blocks(tmp_path, monkeypatch, batch):
    monkeypatch.setattr(history_format, "_CHUNK_RECORDS", batch)
    p = v4_file(tmp_path, [string(1, "k"), inv(0), done(0, 1), inv(1)], [done(1, 2), done(0, 3)])
    second = len(v4_file(tmp_path / "one", [string(1, "k"), inv(0), done(0, 1), inv(1)]).read_bytes())
    h = read_worker_history(p)
    assert f"record 6 (in the block at byte {second}): op 0 completed twice" in (h.problem or "")
    assert [(o.id, o.value) for o in by_id(p)] == [(0, 1), (1, 2)]


@pytest.mark.parametrize("version", [2, 4])
def test_records_written_out_of_the_order_answered_are_handed_over_in_it(tmp_path, version):
    # version 4's writer wrote an op still out at a hand-over when it was answered, before ops held whole that
    # were answered earlier: the streamed checks take a batch in the order answered
    records = [string(1, "k"), inv(0), inv(1), inv(2), done(2, 3), done(0, 1), done(1, 2), footer(3, 3)]
    p = v2_file(tmp_path, *records) if version == 2 else v4_file(tmp_path, records)
    got: list = []
    h = read_worker_history(p, got.append)
    assert h.complete
    assert [(o.id, o.value, o.completed_us) for c in got for o in c.ops()] == [(0, 1, 100), (1, 2, 101), (2, 3, 102)]


@pytest.mark.parametrize("damage", ["torn", "crc"])
def test_version_4_a_torn_or_damaged_last_block_keeps_the_blocks_before_it(tmp_path, damage):
    p = v4_file(tmp_path, [string(1, "k"), inv(0), done(0, 1)], [inv(1), done(1, 2), footer(2, 2)])
    data = bytearray(p.read_bytes())
    if damage == "torn":
        del data[-5:]
    else:
        data[-3] ^= 0xFF
    p.write_bytes(bytes(data))
    h = read_worker_history(p)
    assert not h.complete
    assert ("is torn" if damage == "torn" else "its CRC-32 does not match") in (h.problem or "")
    assert [o.value for o in by_id(p)] == [1]


def v5_file(tmp_path: Path, *blocks: tuple[list[bytes], list[tuple[int, ...]]]) -> Path:
    """A version-5 file with a hand-written header; each block its records and its op rows, each op row
    (key string, kind, amount, t0, t1, value), t0 and t1 in µs after the anchor."""
    import numpy as np
    import zstandard

    header = json.dumps({"schema_version": 5, "type": "header", "worker": "h", "run_id": "r", "scenario": "s",
                         "anchor_monotonic_ns": ANCHOR, "record_bytes": RECORD_BYTES, "block_codec": "zstd"})
    tmp_path.mkdir(exist_ok=True)
    p = tmp_path / "h.cbhist"
    c = zstandard.ZstdCompressor()
    out = []
    for records, ops in blocks:
        rows = np.array([[key | kind << 32, amount, ANCHOR + 1000 * t0, ANCHOR + 1000 * t1, value]
                         for key, kind, amount, t0, t1, value in ops], dtype=np.int64).reshape(-1, 5).T
        out.append(history_format.encode_block_v5(b"".join(records), rows, c))
    p.write_bytes(header.encode() + b"\n" + b"".join(out))
    return p


@pytest.mark.parametrize(("records", "where", "what"), MALFORMED)
def test_version_5_names_malformed_records_as_version_4_does(tmp_path, records, where, what):
    if len(b"".join(records)) % RECORD_BYTES:
        pytest.skip("a block holds whole records")
    v5 = v5_file(tmp_path / "v5", (list(records), []))
    header = len(v5.read_bytes().split(b"\n", 1)[0]) + 1
    h = read_worker_history(v5)
    assert not h.complete and what in (h.problem or "")
    assert f"{v5}: record {where} (in the block at byte {header})" in (h.problem or "")
    v2 = v2_file(tmp_path, *records)
    assert [(o.id, o.outcome, o.value) for o in by_id(v5)] == [(o.id, o.outcome, o.value) for o in by_id(v2)]


@pytest.mark.parametrize("batch", [1 << 19, 2])
def test_version_5_op_rows_take_the_ids_the_invokes_leave_in_the_order_answered(tmp_path, monkeypatch, batch):
    monkeypatch.setattr(history_format, "_CHUNK_RECORDS", batch)
    # block 1: op 1 is invoked (out at the hand-over), ops 0 and 2 whole; block 2: op 1 answered between ops 3, 4
    p = v5_file(tmp_path, ([string(1, "k"), inv(1)], [(1, 0, 1, 5, 6, 10), (1, 2, 0, 7, 8, 10)]),
                ([done(1, 12), footer(5, 5)], [(1, 0, 1, 20, 30, 11), (1, 0, 1, 40, 200, 13)]))
    h = read_worker_history(p)
    assert h.complete, h.problem
    assert [(o.id, o.kind, o.value) for o in by_id(p)] == [
        (0, "incr", 10), (1, "incr", 12), (2, "read", 10), (3, "incr", 11), (4, "incr", 13)]
    got: list = []
    read_worker_history(p, got.append)
    answered = [t for c in got for t in c.completed_us.tolist()]
    assert answered == sorted(answered) == [6, 8, 30, 101, 200]  # op 1, a record, between two op rows


def test_version_5_op_rows_out_of_order_are_still_handed_over_in_the_order_answered(tmp_path):
    p = v5_file(tmp_path, ([string(1, "k"), inv(0), done(0, 5), footer(3, 3)],
                           [(1, 0, 1, 20, 300, 7), (1, 0, 1, 40, 50, 6)]))
    got: list = []
    assert read_worker_history(p, got.append).complete
    assert [(o.id, o.value, o.completed_us) for c in got for o in c.ops()] == [(2, 6, 50), (0, 5, 100), (1, 7, 300)]


OP_ROW_DAMAGE = [  # (blocks, what, ops kept)
    ((([string(1, "k")], [(1, 0, 1, 1, 2, 1), (1, 7, 1, 3, 4, 2)]),), "op row 1 of the block at byte {0}: "
     "malformed op row: kind 7", [1]),
    ((([string(1, "k")], [(1, 0, 1, 1, 2, 1), (2, 0, 1, 3, 4, 2)]),), "op row 1 of the block at byte {0}: "
     "malformed op row: kind 0, key string 2", [1]),
    ((([string(1, "k")], [(1, 0, 1, 1, 2, 1)]), ([inv(3)], [(1, 0, 1, 3, 4, 2)])), "invoke of op 3 out of order",
     [1]),  # block 2 holds ids 1 and 2: an invoke of op 3 is another block's
    ((([string(1, "k")], [(1, 0, 1, 1, 2, 1)]), ([inv(0)], [])), "op 0 invoked twice", [1]),
    ((([string(1, "k"), footer(1, 1)], [(1, 0, 1, 1, 2, 1)]), ([], [(1, 0, 1, 3, 4, 2)])), "after the footer",
     [1]),  # an op row in the footer's batch, or a block in the next
    ((([string(1, "k"), footer(1, 1)], [(1, 0, 1, 1, 2, 1)]), ([], [(1, 0, 1, 3, 4, 2)]), ([], [(1, 0, 1, 5, 6, 3)])),
     "after the footer", [1]),
]


@pytest.mark.parametrize("batch", [1 << 19, 8, 2])  # 8: a batch of the footer's block, then one of the rest
@pytest.mark.parametrize(("blocks", "what", "kept"), OP_ROW_DAMAGE)
def test_version_5_damaged_op_rows_keep_what_came_before(tmp_path, monkeypatch, batch, blocks, what, kept):
    monkeypatch.setattr(history_format, "_CHUNK_RECORDS", batch)
    p = v5_file(tmp_path, *blocks)
    header = len(p.read_bytes().split(b"\n", 1)[0]) + 1
    h = read_worker_history(p)
    assert not h.complete and what.format(header) in (h.problem or ""), h.problem
    assert [o.value for o in by_id(p) if o.outcome is Outcome.OK] == kept


def test_version_5_writer_ids_and_order_as_the_load_loop_makes_them(tmp_path):
    # ops recorded whole, an op still out when a block is handed over, answered in the next: the ids the writer
    # returned are the ids read, and each batch comes in the order answered
    w = writer(tmp_path)
    t = time.monotonic_ns()
    w.record("k", "incr", 1, t, Completion.ok(1), t + 10)
    w.record("k", "incr", 1, t + 20, Completion.ok(2), t + 30)
    out = w.invoke("k", "incr", 1, t + 40)
    w.flush()
    w.record("k", "incr", 1, t + 50_000, Completion.ok(3), t + 60_000)
    w.complete(out, Completion.ok(4), t + 70_000)
    w.record("k", "read", 0, t + 75_000, Completion.ok(4), t + 80_000)
    w.record("k", "incr", 1, t + 85_000, Completion.fail("boom"), t + 90_000)
    w.close()
    got: list = []
    h = read_worker_history(w.path, got.append)
    assert h.complete and h.op_count == 6
    ops = [o for c in got for o in c.ops()]
    assert [(o.id, o.value) for o in ops] == [(0, 1), (1, 2), (3, 3), (2, 4), (4, 4), (5, None)]
    assert out == 2
    answered = [o.completed_us for o in ops]
    assert answered == sorted(answered)


def test_footer_that_disagrees_with_the_records_is_incomplete(tmp_path):
    p = v2_file(tmp_path, string(1, "k"), inv(0), done(0), footer(5, 1))
    h = read_worker_history(p)
    assert not h.complete and "h.cbhist: the footer counts 5 ops invoked" in (h.problem or "")
    assert [o.outcome for o in h.ops] == [Outcome.OK]


def test_bytes_after_the_footer_are_damage(tmp_path):
    p = v2_file(tmp_path, string(1, "k"), inv(0), footer(1, 0), b"\x00\x01")
    h = read_worker_history(p)
    assert not h.complete and "record after the footer" in (h.problem or "")


def test_a_folder_with_an_unreadable_file_names_it_and_reads_the_others(tmp_path):
    w = writer(tmp_path, "good")
    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w.close()
    (tmp_path / "history" / "bad.cbhist").write_bytes(b"\x00 junk\n")
    h = read_history(tmp_path / "history")
    assert [(x.worker, x.complete) for x in h.workers] == [("bad", False), ("good", True)]
    assert "bad.cbhist:1: not a counterbench history" in (h.workers[0].problem or "")
    assert len(list(h.ops())) == 1


def test_not_a_history(tmp_path):
    p = tmp_path / "x.cbhist"
    p.write_bytes(b"\x00\x01 binary junk\n")
    with pytest.raises(HistoryError, match=r"x.cbhist:1: not a counterbench history"):
        read_worker_history(p)


# --- folders and versions ------------------------------------------------------------------------

def test_history_file_and_folder_of_both_versions(tmp_path):
    folder = tmp_path / "history"
    assert history_file(folder, "host-1-0") == folder / "host-1-0.cbhist"
    w = writer(tmp_path, "new")
    w.complete(w.invoke("k", "incr", 1), Completion.ok(2))
    w.close()
    (folder / "old.jsonl").write_bytes((FIXTURES / "history-v1.jsonl").read_bytes())
    (folder / "notes.txt").write_text("not a history")
    assert [p.name for p in history_files(folder)] == ["new.cbhist", "old.jsonl"]
    h = read_history(folder)
    assert [w.worker for w in h.workers] == ["new", "fixture-1"] and h.complete
    assert len(list(h.ops())) == 4


def test_no_history_is_an_error(tmp_path):
    with pytest.raises(HistoryError, match="no history"):
        read_history(tmp_path)


def test_unknown_version_is_refused(tmp_path):
    p = tmp_path / "h.cbhist"
    p.write_text(json.dumps({"schema_version": 99, "type": "header", "worker": "w"}) + "\n")
    with pytest.raises(HistorySchemaError, match="99"):
        read_worker_history(p)


def test_version_2_fixture_still_reads():
    h = read_worker_history(FIXTURES / "run-v2" / "history" / "fixture-1.cbhist")
    assert h.complete and h.header["schema_version"] == 2
    assert [(o.id, o.outcome.value, o.value, o.error, o.invoked_us, o.completed_us) for o in
            sorted(h.ops, key=lambda o: o.id)] == [
        (0, "ok", 1, None, 10, 250), (1, "fail", None, "not sent: connection refused", 11, 300),
        (2, "indeterminate", None, "never completed", 260, None)]


def test_version_3_fixture_still_reads():
    h = read_worker_history(FIXTURES / "run-v3" / "history" / "fixture-1.cbhist")  # by the version-3 writer
    assert h.complete and h.header["schema_version"] == 3
    assert [(o.id, o.key, o.kind, o.amount, o.outcome.value, o.value, o.error) for o in by_id(h.path)] == [
        (0, "counter", "incr", 1, "ok", 1, None), (1, "counter", "read", 0, "ok", 1, None),
        (2, "counter", "incr", 2, "ok", 3, None), (3, "seats", "decr_if_positive", -1, "fail", None, "sold out"),
        (4, "counter", "incr", 1, "indeterminate", None, "never completed")]
    assert by_id(h.path)[2].invoked_us == 1 and by_id(h.path)[2].completed_us == 5


# --- version 1: still read -----------------------------------------------------------------------

def v1_file(tmp_path: Path, *lines: str) -> Path:
    p = tmp_path / "w1.jsonl"
    header = json.dumps({"schema_version": 1, "type": "header", "worker": "w1", "run_id": "r", "scenario": "s",
                         "anchor_monotonic_ns": 1})
    p.write_text("".join(line + "\n" for line in (header, *lines)))
    return p


def test_version_1_fixture_still_reads():
    h = read_worker_history(FIXTURES / "history-v1.jsonl")
    assert h.complete and h.op_count == 3
    assert sorted(o.outcome.value for o in h.ops) == ["fail", "indeterminate", "ok"]


def test_version_1_missing_footer_is_incomplete(tmp_path):
    h = read_worker_history(v1_file(tmp_path, '["i",0,1,"k","incr",1]', '["c",0,2,"ok",1,null]'))
    assert not h.complete and "no footer" in (h.problem or "")
    assert h.ops[0].outcome is Outcome.OK


def test_version_1_torn_last_line_is_incomplete_not_an_error(tmp_path):
    p = v1_file(tmp_path, '["i",0,1,"k","incr",1]', '["c",0,2,"ok",1,null]')
    p.write_text(p.read_text() + '["i",7,12,"k","in')
    h = read_worker_history(p)
    assert not h.complete and "torn" in (h.problem or "")


def test_version_1_completion_without_invoke_is_damage(tmp_path):
    p = v1_file(tmp_path, '["i",0,1,"k","incr",1]', '["c",0,2,"ok",1,null]', '["c",3,1,"ok",1,null]',
                '{"type": "footer", "invoked": 1, "completed": 1}')
    h = read_worker_history(p)
    assert not h.complete and "w1.jsonl:4: completion of op 3 that was not invoked" in (h.problem or "")
    assert [(o.id, o.outcome) for o in h.ops] == [(0, Outcome.OK)]


def test_version_1_malformed_record_names_file_and_line(tmp_path):
    p = v1_file(tmp_path, '["i",0,1,"k","incr",1]', '["c",0,2,"ok"]')
    h = read_worker_history(p)
    assert not h.complete and "w1.jsonl:3: malformed record" in (h.problem or "")
    assert [(o.id, o.outcome) for o in h.ops] == [(0, Outcome.INDETERMINATE)]  # its completion is damaged


def test_version_1_retried_op_keeps_its_attempt_count(tmp_path):
    p = v1_file(tmp_path, '["i",0,1,"k","incr",1]', '["c",0,2,"indeterminate",null,"3 attempts",3]',
                '{"type": "footer", "invoked": 1, "completed": 1}')
    assert [o.attempts for o in read_worker_history(p).ops] == [3]


def test_a_failed_write_does_not_write_the_same_records_twice(tmp_path):
    w = writer(tmp_path)
    real = w._f

    class Short:  # takes 40 bytes, then the disk is full
        calls = 0

        def write(self, data: memoryview) -> int:
            Short.calls += 1
            if Short.calls == 1:
                return real.write(data[:40])
            raise OSError(28, "No space left on device")

    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w._f = Short()  # type: ignore[assignment]
    with pytest.raises(HistoryError, match="No space left"):
        w.flush()
    w._f = real  # space again: the rest follows the bytes already written
    w.close()
    h = read_worker_history(w.path)
    assert h.complete and [o.value for o in h.ops] == [1]


# --- ops recorded whole (the load loop's path) -----------------------------------------------------

def _mixed_ops(w: HistoryWriter) -> list[tuple]:
    """Ops written both ways, interleaved: recorded whole (fast and slow cases) and invoked eagerly."""
    want = []
    t = time.monotonic_ns()  # after the writer's clock anchor, as the load loop's readings are
    for i in range(3000):
        key, kind = f"k{i % 7}", "incr" if i % 4 else "decr_if_positive"
        t0, t1 = t + i * 10_000, t + i * 10_000 + 1000 + i
        if i % 97 == 0:  # invoked before it is sent (as for an op still out when a block is handed over)
            op = w.invoke(key, kind, 1, t0)
            done = Completion.ok(i)
            w.complete(op, done, t1)
        else:
            done = (Completion.fail("sold out") if i % 11 == 0 else Completion(Outcome.OK, i, None, 2) if i % 13 == 0
                    else Completion.ok(None) if i % 17 == 0 else Completion.ok(-i if i % 2 else i))
            w.record(key, kind, 1, t0, done, t1)
        want.append((key, kind, 1, done.outcome, done.value, done.error, done.attempts, (t1 - t0) // 1000))
        if i % 500 == 0:
            w.flush()
    return want


def test_ops_recorded_whole_read_back_in_order_with_their_latency(tmp_path):
    w = writer(tmp_path)
    want = _mixed_ops(w)
    w.close()
    ops = by_id(w.path)
    assert [o.id for o in ops] == list(range(len(want)))  # ids in the order the ops were recorded
    got = [(o.key, o.kind, o.amount, o.outcome, o.value, o.error, o.attempts) for o in ops]
    assert got == [w[:-1] for w in want]
    # each end is whole microseconds since the anchor, so a latency may read 1 us long
    assert all(0 <= o.latency_us - w[-1] <= 1 for o, w in zip(ops, want, strict=True))
    assert read_worker_history(w.path).complete


def test_a_value_beyond_64_bits_recorded_whole_is_refused_naming_the_op(tmp_path):
    w = writer(tmp_path)
    t = time.monotonic_ns()
    w.record("k", "incr", 1, t, Completion.ok(1), t + 1)  # the first op on a key interns it
    w.record("k", "incr", 1, t + 2, Completion.ok(2), t + 3)  # then ops are held as columns
    w.record("k", "incr", 1, t + 4, Completion.ok(2**64), t + 5)
    w.record("k", "incr", 1, t + 6, Completion.ok(3), t + 7)
    with pytest.raises(HistoryError, match="op 2"):
        w.flush()
    w.close()
    # every op was sent: each is in the history, the refused one without a completion
    ops = by_id(w.path)
    assert [(o.id, o.value, o.completed_us is None) for o in ops] == [
        (0, 1, False), (1, 2, False), (2, None, True), (3, 3, False)]


def test_recording_after_close_is_refused(tmp_path):
    w = writer(tmp_path)
    t = time.monotonic_ns()
    w.record("k", "incr", 1, t, Completion.ok(1), t + 1)
    w.close()
    with pytest.raises(HistoryError, match="closed"):
        w.record("k", "incr", 1, t + 2, Completion.ok(2), t + 3)


def test_a_string_lookup_computes_each_used_string_once_as_its_list_grows():
    import numpy as np

    from harness.history import StringLookup

    asked: list[str] = []

    def of(text: str) -> int:
        asked.append(text)
        return len(text)

    look = StringLookup(of, none=-7)
    one: list[str] = ["a", "bbb"]  # one load process's strings, growing from batch to batch
    assert look(one, np.array([2, 2, 0], dtype=np.uint32)).tolist() == [3, 3, -7]
    assert asked == ["bbb"]  # "a" is not used yet: not computed
    one += ["cc", "dddd"]
    assert look(one, np.array([1, 3, 2], dtype=np.uint32)).tolist() == [1, 2, 3]
    assert asked == ["bbb", "a", "cc"]  # "bbb" from the first batch's table, "dddd" still unused
    other: list[str] = ["zz"]  # another process's list: its ids mean other strings
    assert look(other, np.array([1], dtype=np.uint32)).tolist() == [2]
    assert look(one, np.zeros(0, dtype=np.uint32)).tolist() == []
    assert asked == ["bbb", "a", "cc", "zz"]


# --- version 4: size and a process killed mid-write ----------------------------------------------

def test_a_load_loops_history_takes_at_most_16_bytes_per_op(tmp_path):
    """Ops as a load process records them: sent every ~14 us, answered after 0.1-2 ms, each value
    some tens above its previous one (other processes' increments between), a read now and then."""
    import numpy as np

    rng = np.random.default_rng(7)
    n = 200_000
    t0 = 10**12 + np.cumsum(rng.exponential(14_000, n)).astype(np.int64)
    t1 = t0 + rng.lognormal(np.log(300_000), 0.6, n).astype(np.int64)
    values = np.cumsum(rng.integers(1, 60, n))
    reads = rng.random(n) < 0.1
    w = writer(tmp_path)
    for a, b, v, r in zip(t0.tolist(), t1.tolist(), values.tolist(), reads.tolist(), strict=True):
        w.record("page:views", "read" if r else "incr", 0 if r else 1, a, Completion.ok(v), b)
    w.close()
    size = w.path.stat().st_size
    assert size / n <= 16, f"{size / n:.1f} bytes per op"
    ops = by_id(w.path)
    assert len(ops) == n and [o.value for o in ops[:3]] == values[:3].tolist()


KILLED_WRITER = """
import sys, time
from pathlib import Path
from harness.history import HistoryWriter
from harness.core.ops import Completion
w = HistoryWriter(Path(sys.argv[1]), worker="w1", run_id="r", scenario="s")
out = []
i = 0
while True:  # ops recorded whole, and ops still out when a block is handed over (their invoke first)
    t = time.monotonic_ns()
    w.record("k", "incr", 1, t, Completion.ok(2 * i + 1), t + 1000)
    out.append(w.invoke("k", "incr", 1))
    if len(out) > 3:
        w.complete(out.pop(0), Completion.ok(2 * i + 2))
    i += 1
    if i % 500 == 0:
        w.flush()
"""


def test_a_process_killed_mid_write_leaves_a_readable_history(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    path = tmp_path / "history" / "w1.cbhist"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)],
                            cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 30
        while (not path.exists() or path.stat().st_size < 100_000) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    h = read_worker_history(path)
    assert not h.complete and ("torn" in (h.problem or "") or "no footer" in (h.problem or ""))
    ops = by_id(path)
    assert len(ops) > 10_000 and [o.id for o in ops] == list(range(len(ops)))
    assert all(o.outcome is Outcome.OK and o.value is not None for o in ops[:-10])
    assert all(o.outcome is Outcome.INDETERMINATE and o.error == "never completed"
               for o in ops if o.value is None)  # sent, answer not written: the invoke is there
    assert all(o.completed_us is None or o.invoked_us <= o.completed_us for o in ops)
