"""Operations, outcomes and the history record format.

The history is the contract (Jepsen): every op gets an invoke record (stamped
with when it was sent) and exactly one completion after; an op still out when
the history hands a block to the OS has its invoke in that block. An invoke
without a completion is an op whose fate is unknown: it counts as ``indeterminate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, NamedTuple

OpKind = Literal["incr", "decr_if_positive", "read"]


class Outcome(StrEnum):
    OK = "ok"  # acknowledged: it happened
    FAIL = "fail"  # it definitely did not happen
    INDETERMINATE = "indeterminate"  # it may or may not have happened


# The reasons a client gives for an op that never left it (``harness.targets.classify`` words its errors
# "<reason>: <detail>"): nothing can have been applied, and nothing was paid for (``harness.cost``).
NOT_SENT, CONNECTION_REFUSED, NAME_NOT_RESOLVED = "not sent", "connection refused", "name not resolved"
UNSENT_REASONS = (NOT_SENT, CONNECTION_REFUSED, NAME_NOT_RESOLVED)


class Completion(NamedTuple):
    """What a target client reports for one op (a tuple: built on every op's path, so cheap)."""

    outcome: Outcome
    value: int | None = None  # the counter value the target returned, when it returned one
    error: str | None = None  # short reason for fail / indeterminate
    attempts: int = 1  # requests the client sent for this op (more than 1 only with SDK retries on)

    @staticmethod
    def ok(value: int | None) -> Completion:
        return Completion(Outcome.OK, value)

    @staticmethod
    def fail(error: str) -> Completion:
        return Completion(Outcome.FAIL, None, error)

    @staticmethod
    def indeterminate(error: str) -> Completion:
        return Completion(Outcome.INDETERMINATE, None, error)


@dataclass(frozen=True, slots=True)
class Op:
    """One op of a history, invoke and completion joined."""

    worker: str
    id: int
    key: str
    kind: OpKind
    amount: int  # the change the op asks for; -1 for decr_if_positive, 0 for a read
    outcome: Outcome
    value: int | None
    error: str | None
    invoked_us: int  # microseconds since the worker's clock anchor
    completed_us: int | None  # None: never completed
    attempts: int = 1

    @property
    def latency_us(self) -> int | None:
        return None if self.completed_us is None else self.completed_us - self.invoked_us


def op_token(run_id: str, worker: str, op_id: int) -> str:
    """The idempotency key of one op: the same on every retry, and found again after the run from the
    history alone (the run, the load process, the op id)."""
    return f"{run_id}.{worker}.{op_id}"
