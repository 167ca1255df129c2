"""no-oversell: a seats counter never sells more than it had, nor goes below zero."""

from __future__ import annotations

from typing import Literal

from harness.checks.model import Check, CheckResult, Completeness, KeyTally

NAME = "no-oversell"


def check_no_oversell(*, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
                      returns: Literal["after", "before"] = "after") -> CheckResult:
    sold = t.ok  # acknowledged reservations; missing ops could only add to them
    oversold = max(0, sold - initial, -final if final is not None else 0)
    ev = {"capacity": initial, "sold": sold, "final": final, "oversold": oversold}
    if oversold:
        return CheckResult(name=NAME, key=key, valid=False, evidence=ev)
    if final is None:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={**ev, "reason": "the final value was not read"})
    if not history.complete:  # reservations the history lacks may have been acknowledged beyond capacity
        return CheckResult(name=NAME, key=key, valid=None, evidence={
            **ev, "reason": "the history is incomplete; missing reservations could exceed the capacity"})
    return CheckResult(name=NAME, key=key, valid=True, evidence=ev)


def describe(r: CheckResult) -> str:
    e = r.evidence
    if r.valid is None:
        return str(e.get("reason", "undecided"))
    if r.valid:
        return f"{e['sold']:,} of {e['capacity']:,} sold, {e['final']:,} left: nothing oversold"
    return (f"{e['oversold']:,} oversold: {e['sold']:,} sold of {e['capacity']:,}, {e['final']:,} left")


CHECK = Check(name=NAME, fn=check_no_oversell, findings=(("oversold", "oversold"),), workloads=frozenset({"seats"}),
              describe=describe)
