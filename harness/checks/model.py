"""What checks read (per-key tallies of a history) and what they return."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from harness.ops import Op, Outcome

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

EVIDENCE_CAP = 20  # offending values or keys listed in evidence; counts are always complete


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    name: str
    key: str
    valid: bool | None  # None: unknown, the check could not decide
    evidence: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "valid": self.valid, "evidence": self.evidence}


@dataclass(kw_only=True)
class KeyTally:
    """Everything the checks need to know about one key's ops.

    Built from Op objects (``tally``, for hand-built histories) or from columns of a history file
    (``harness.checks.columns``, where ``ok_values`` is one int64 array).
    """

    key: str
    ok: int = 0
    fail: int = 0
    indeterminate: int = 0
    ok_sum: int = 0
    indeterminate_amounts: Counter[int] = field(default_factory=Counter)
    ok_amounts: Counter[int] = field(default_factory=Counter)
    ok_values: list[int] | npt.NDArray[np.int64] = field(default_factory=list)
    ok_without_value: int = 0

    def add(self, op: Op) -> None:
        if op.outcome is Outcome.OK:
            self.ok += 1
            self.ok_sum += op.amount
            self.ok_amounts[op.amount] += 1
            if op.value is None:
                self.ok_without_value += 1
            else:
                self.ok_values.append(op.value)  # type: ignore[union-attr]
        elif op.outcome is Outcome.FAIL:
            self.fail += 1
        else:
            self.indeterminate += 1
            self.indeterminate_amounts[op.amount] += 1

    @property
    def signs(self) -> set[int]:
        """Signs of every amount asked for (ok or not): {1}, {-1} or both."""
        return {1 if a > 0 else -1 for a in (*self.ok_amounts, *self.indeterminate_amounts) if a}

    @property
    def unit(self) -> bool:
        amounts = set(self.ok_amounts) | set(self.indeterminate_amounts)
        return amounts <= {1} or amounts <= {-1}


def tally(ops: Iterable[Op]) -> dict[str, KeyTally]:
    out: dict[str, KeyTally] = {}
    for op in ops:
        t = out.get(op.key)
        if t is None:
            t = out[op.key] = KeyTally(key=op.key)
        t.add(op)
    return out


def merged(key: str, tallies: Iterable[KeyTally]) -> KeyTally:
    """One tally over many keys (for the total); values are per key and are not merged."""
    total = KeyTally(key=key)
    for t in tallies:
        total.ok += t.ok
        total.fail += t.fail
        total.indeterminate += t.indeterminate
        total.ok_sum += t.ok_sum
        total.indeterminate_amounts.update(t.indeterminate_amounts)
        total.ok_amounts.update(t.ok_amounts)
    return total


BOTH_SIGNS = frozenset({1, -1})


@dataclass(frozen=True, kw_only=True)
class Completeness:
    """Whether the history may be missing ops, whose, and what those ops could have done.

    ``op_signs`` are the signs of the changes the workload's ops ask for (``Workload.signs``): a
    missing op moved the counter in one of them, or not at all. Unknown, it is both: then no
    incomplete history can prove a wrong total.
    """

    complete: bool
    missing: tuple[str, ...] = ()  # workers whose history is incomplete, with the reason
    op_signs: frozenset[int] = BOTH_SIGNS

    def possible_signs(self, recorded: set[int]) -> frozenset[int]:
        """Signs of the changes a key may have seen: its recorded ops', and a missing op's."""
        return frozenset(recorded) if self.complete else frozenset(recorded) | self.op_signs


class CheckFn(Protocol):
    def __call__(self, *, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
                 returns: Literal["after", "before"]) -> CheckResult: ...


@dataclass(frozen=True, kw_only=True)
class Check:
    """One check, as the registry (``harness.checks.CHECKS``) lists it: a new check is one module
    ending with its ``CHECK`` and one line there; verdicts, totals, the terminal, reports and
    comparisons pick it up by name."""

    name: str
    fn: CheckFn  # one key's verdict, pure
    # evidence fields a violation counts (summed over keys into verdict.json's totals), and how the
    # verdict's reason words them: ("lost", "lost"), ("duplicated", "applied twice"), ...
    findings: tuple[tuple[str, str], ...] = ()
    over_total: bool = False  # also judged on the sum over every key (a per-key rule that adds up)
    workloads: frozenset[str] | None = None  # the workloads it is for (None: every one)
    default: bool = True  # on by default wherever it applies

    def applies_to(self, workload: str) -> bool:
        return self.workloads is None or workload in self.workloads
