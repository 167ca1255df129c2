"""History files: round trip, torn tails, missing footers, versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import HistoryError, HistorySchemaError
from harness.history import HistoryWriter, read_history, read_worker_history
from harness.ops import Completion, Outcome

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def writer(tmp_path: Path, name: str = "w1") -> HistoryWriter:
    return HistoryWriter(tmp_path / "history" / f"{name}.jsonl", worker=name, run_id="r", scenario="s")


def test_round_trip(tmp_path):
    w = writer(tmp_path)
    a = w.invoke("k", "incr", 5)
    b = w.invoke("k", "decr_if_positive", -1)
    w.complete(b, Completion.fail("sold out"))
    w.complete(a, Completion.ok(5))
    w.close()
    h = read_history(tmp_path / "history")
    assert h.complete
    ops = sorted(h.ops(), key=lambda o: o.id)
    assert [(o.key, o.kind, o.amount, o.outcome, o.value, o.error) for o in ops] == [
        ("k", "incr", 5, Outcome.OK, 5, None),
        ("k", "decr_if_positive", -1, Outcome.FAIL, None, "sold out"),
    ]
    assert all(o.latency_us is not None and o.latency_us >= 0 for o in ops)


def test_op_without_completion_is_indeterminate_and_file_still_complete(tmp_path):
    w = writer(tmp_path)
    w.invoke("k", "incr", 1)
    w.close()
    h = read_worker_history(w.path)
    assert h.complete
    assert h.ops[0].outcome is Outcome.INDETERMINATE and h.ops[0].completed_us is None


def test_missing_footer_is_incomplete(tmp_path):
    w = writer(tmp_path)
    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w._f.flush()  # the worker died here, before close()
    h = read_worker_history(w.path)
    assert not h.complete and "no footer" in (h.problem or "")
    assert h.ops[0].outcome is Outcome.OK


def test_torn_last_line_is_incomplete_not_an_error(tmp_path):
    w = writer(tmp_path)
    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w.close()
    text = w.path.read_text().splitlines(keepends=True)
    w.path.write_text("".join(text[:2]) + '["i",7,12,"k","in')
    h = read_worker_history(w.path)
    assert not h.complete and "torn" in (h.problem or "")


def test_completion_without_invoke_is_corrupt(tmp_path):
    w = writer(tmp_path)
    w.close()
    lines = w.path.read_text().splitlines()
    w.path.write_text(lines[0] + '\n["c",3,1,"ok",1,null]\n' + lines[1] + "\n")
    with pytest.raises(HistoryError, match="not invoked"):
        read_worker_history(w.path)


def test_write_failure_raises_history_error(tmp_path):
    w = writer(tmp_path)

    class Full:
        def write(self, _: str) -> None:
            raise OSError(28, "No space left on device")

    w._f = Full()  # type: ignore[assignment]
    with pytest.raises(HistoryError, match="No space left"):
        w.invoke("k", "incr", 1)


def test_writer_refuses_to_overwrite(tmp_path):
    writer(tmp_path).close()
    with pytest.raises(HistoryError):
        writer(tmp_path)


def test_no_history_is_an_error(tmp_path):
    with pytest.raises(HistoryError, match="no history"):
        read_history(tmp_path)


def test_version_1_fixture_still_reads():
    h = read_worker_history(FIXTURES / "history-v1.jsonl")
    assert h.complete
    assert sorted(o.outcome.value for o in h.ops) == ["fail", "indeterminate", "ok"]


def test_unknown_version_is_refused(tmp_path):
    p = tmp_path / "h.jsonl"
    p.write_text(json.dumps({"schema_version": 99, "type": "header", "worker": "w"}) + "\n")
    with pytest.raises(HistorySchemaError, match="99"):
        read_worker_history(p)


def test_malformed_record_names_file_and_line(tmp_path):
    w = writer(tmp_path)
    w.close()
    lines = w.path.read_text().splitlines()
    w.path.write_text(lines[0] + '\n["c",3,1,"ok"]\n')
    with pytest.raises(HistoryError, match=r"w1.jsonl:2: malformed record"):
        read_worker_history(w.path)


def test_retried_op_keeps_its_attempt_count(tmp_path):
    w = writer(tmp_path)
    w.complete(w.invoke("k", "incr", 1), Completion(Outcome.INDETERMINATE, None, "3 attempts", 3))
    w.complete(w.invoke("k", "incr", 1), Completion.ok(2))
    w.close()
    assert sorted(o.attempts for o in read_worker_history(w.path).ops) == [1, 3]
