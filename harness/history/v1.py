"""Version-1 histories (JSON lines), still read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.errors import HistoryError
from harness.core.ops import Op, OpKind, Outcome
from harness.history.format import KINDS, NEVER_COMPLETED
from harness.history.model import WorkerHistory


def read_v1(path: Path, header: dict[str, Any]) -> WorkerHistory:
    """A version-1 file: every line up to the end, or up to the first damaged one (kept, as in version 2)."""
    try:
        f = open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    except OSError as e:
        raise HistoryError(f"cannot read history {path}: {e}") from e
    with f:
        f.readline()
        worker = str(header.get("worker"))
        invokes: dict[int, tuple[int, str, OpKind, int]] = {}
        ops: list[Op] = []
        footer: dict[str, Any] | None = None
        problem: str | None = None
        for lineno, line in enumerate(f, start=2):
            if not line.endswith("\n"):
                problem = f"line {lineno} is torn (the writer stopped mid-record)"
                break
            damage = _v1_record(line, footer is not None, invokes, ops, worker)
            if isinstance(damage, dict):
                footer = damage
            elif damage is not None:
                problem = f"damaged: {path}:{lineno}: {damage}; the lines before it were read"
                break
    # ops still open never completed: the target may or may not have applied them
    for op_id, (t, key, kind, amount) in invokes.items():
        ops.append(Op(worker, op_id, key, kind, amount, Outcome.INDETERMINATE, None, NEVER_COMPLETED, t, None))
    if footer is None and problem is None:
        problem = "no footer (the worker did not finish writing)"
    return WorkerHistory(worker, path, header, complete=problem is None, problem=problem, op_count=len(ops),
                         _ops=ops)


def _v1_record(line: str, after_footer: bool, invokes: dict[int, tuple[int, str, OpKind, int]], ops: list[Op],
               worker: str) -> dict[str, Any] | str | None:
    """Apply one version-1 line: the footer (a dict), None, or what is wrong with the line."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return "not a history record"
    if isinstance(rec, dict):
        if rec.get("type") != "footer":
            return f"unexpected record {rec.get('type')!r}"
        return "a second footer" if after_footer else rec
    if after_footer:
        return "record after the footer"
    try:
        tag = rec[0]
        if tag == "i":
            _, op_id, t, key, kind, amount = rec
            if op_id in invokes or kind not in KINDS:
                return f"op {op_id} invoked twice" if op_id in invokes else f"unknown op kind {kind!r}"
            invokes[op_id] = (int(t), str(key), kind, int(amount))
        elif tag == "c":
            _, op_id, t, outcome, value, error, *more = rec
            inv = invokes.pop(op_id, None)
            if inv is None:
                return f"completion of op {op_id} that was not invoked"
            attempts = int(more[0]) if more else 1
            if not (value is None or type(value) is int) or attempts < 1:
                raise ValueError(value)
            ops.append(Op(worker, op_id, inv[1], inv[2], inv[3], Outcome(outcome), value,
                          None if error is None else str(error), inv[0], int(t), attempts))
        else:
            return f"unknown record tag {tag!r}"
    except (ValueError, TypeError, IndexError, KeyError):
        return f"malformed record: {line.strip()[:80]}"
    return None
