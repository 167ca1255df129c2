"""Latency tags: the one definition of how a histogram is named and read back.

    <op>.<outcome>              service time of ops of that kind and outcome: increment.ok
    <op>.<outcome>.intended     open model: from the intended send time (the wrk2 correction)
    <op>.late                   open model: how late a late send was
"""

from __future__ import annotations

from typing import NamedTuple

OUTCOMES = ("ok", "fail", "indeterminate")
SERVICE, INTENDED, LATE = "service", "intended", "late"


class Tag(NamedTuple):
    op: str  # increment, decrement-if-positive
    outcome: str  # ok, fail, indeterminate; "late" for a late send
    measure: str  # service, intended, late

    @staticmethod
    def parse(tag: str) -> Tag:
        """``increment.ok`` -> (increment, ok, service); ``increment.ok.intended`` -> (..., intended)."""
        parts = tag.split(".")
        outcome = parts[1] if len(parts) > 1 else ""
        measure = parts[2] if len(parts) > 2 else (LATE if outcome == LATE else SERVICE)
        return Tag(parts[0], outcome, measure)


def op_label(kind: str) -> str:
    """How reports name an op kind."""
    return {"decr_if_positive": "decrement-if-positive", "read": "read"}.get(kind, "increment")


def op_tag(kind: str, outcome: str, measure: str = "") -> str:
    """A histogram's tag: ``increment.ok``, ``decrement-if-positive.fail.intended``, ..."""
    op = op_label(kind)
    return f"{op}.{outcome}.{measure}" if measure else f"{op}.{outcome}"
