"""What checks read (per-key tallies of a history) and what they return."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from harness.core.ops import Op

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from harness.checks.columns import Resolution
    from harness.checks.timed import TimedOps

EVIDENCE_CAP = 20  # offending values or keys listed in evidence; counts are always complete


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    name: str
    key: str
    valid: bool | None  # None: unknown, the check could not decide
    evidence: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        from harness.checks import CHECKS  # the registry words each result

        check = CHECKS.get(self.name)
        finding = check.sentence(self) if check is not None else describe_generic(self)
        return {"name": self.name, "key": self.key, "valid": self.valid, "finding": finding,
                "evidence": self.evidence}


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
    reads: int = 0  # reads of the key (not counted as ops above)
    reads_ok: int = 0
    timed: TimedOps | None = None  # its ops in time, for the checks of order (None: not placed)
    untimed: str | None = None  # why they could not be placed
    streamed: Any = None  # its ops folded as they streamed (harness.checks.stream.Streamed): checks read that

    @property
    def signs(self) -> set[int]:
        """Signs of every amount asked for (ok or not): {1}, {-1} or both."""
        return {1 if a > 0 else -1 for a in (*self.ok_amounts, *self.indeterminate_amounts) if a}

    @property
    def unit(self) -> bool:
        amounts = set(self.ok_amounts) | set(self.indeterminate_amounts)
        return amounts <= {1} or amounts <= {-1}


def tally(ops: Iterable[Op], resolutions: Mapping[str, Resolution] | None = None) -> dict[str, KeyTally]:
    """Hand-built ops, tallied per key and placed in time (their times are on one clock); ``resolutions``:
    uncertain ops looked up after the run, by worker (``harness.checks.columns.Resolution``)."""
    from harness.checks.columns import ColumnTally
    from harness.checks.timed import Clock
    from harness.history import OpColumns

    ops = list(ops)
    workers = sorted({o.worker for o in ops})
    columns = ColumnTally(timed=True, clocks={w: Clock(0, 0) for w in workers}, resolutions=dict(resolutions or {}))
    for w in workers:
        columns.add(OpColumns.from_ops(w, [o for o in ops if o.worker == w]))
    return columns.tallies()


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
    timed: bool = False  # it reads the ops' order in time (KeyTally.timed)
    # evidence fields a violation counts (summed over keys into verdict.json's totals), and how the
    # verdict's reason words them: ("lost", "lost"), ("duplicated", "applied twice"), ...
    findings: tuple[tuple[str, str], ...] = ()
    over_total: bool = False  # also judged on the sum over every key (a per-key rule that adds up)
    workloads: frozenset[str] | None = None  # the workloads it is for (None: every one)
    default: bool = True  # on by default wherever it applies
    describe: Callable[[CheckResult], str] | None = None  # one sentence of a result (default: its reason)

    def sentence(self, r: CheckResult) -> str:
        """What a result found, as a person reads it (never the raw evidence)."""
        if self.describe is not None:
            with contextlib.suppress(KeyError, TypeError, ValueError, IndexError):
                return self.describe(r)
        return describe_generic(r)

    def applies_to(self, workload: str) -> bool:
        return self.workloads is None or workload in self.workloads


def noted(r: CheckResult) -> str | None:
    """An undecided result's reason, or the note of one that holds for want of anything to compare
    ("no acknowledged op"); None when the result has counts to word."""
    if r.valid is None or (r.valid and "reason" in r.evidence):
        return str(r.evidence.get("reason", "undecided"))
    return None


def describe_generic(r: CheckResult) -> str:
    """A result's own reason, or what it is: valid, invalid, undecided."""
    why = r.evidence.get("reason") or r.evidence.get("error")
    if why:
        return str(why)
    return {True: "holds", False: "violated", None: "undecided"}[r.valid]
