"""Checks: pure functions from (history, initial state, final state) to verdicts.

No I/O and no Locust here: a finished run folder can be re-checked offline.
A check that crashes yields ``unknown`` with the error, never a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.checks.bounds import check_bounds
from harness.checks.model import EVIDENCE_CAP, CheckResult, Completeness, KeyTally, merged, tally
from harness.checks.oversell import check_no_oversell
from harness.checks.unique import check_unique_values
from harness.ops import Op

Verdict = Literal["pass", "fail", "unknown"]
TOTAL_KEY = "(total)"
ALL_KEYS = "(every key)"

__all__ = ["ALL_KEYS", "TOTAL_KEY", "CheckReport", "CheckResult", "Completeness", "Verdict", "run_checks"]


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    verdict: Verdict
    reason: str  # one sentence a report can lead with
    totals: dict[str, int]
    checks: list[CheckResult]


FINDINGS = ("lost", "duplicated", "duplicate_values", "oversold")  # what a check that decided counted


def _one(name: str, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
         returns: Literal["after", "before"]) -> CheckResult:
    """One check on one key; a crashing check is unknown, never a pass. An undecided result carries
    no finding, not even a zero (it would read as a clean bill)."""
    r = _run_one(name, key, initial, final, t, history, returns)
    if r.valid is None and any(f in r.evidence for f in FINDINGS):
        r = CheckResult(name=r.name, key=r.key, valid=None,
                        evidence={k: v for k, v in r.evidence.items() if k not in FINDINGS})
    return r


def _run_one(name: str, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
             returns: Literal["after", "before"]) -> CheckResult:
    try:
        if name == "bounds":
            return check_bounds(key=key, initial=initial, final=final, t=t, history=history)
        if name == "unique-values":
            return check_unique_values(key=key, initial=initial, final=final, t=t, history=history, returns=returns)
        if name == "no-oversell":
            return check_no_oversell(key=key, initial=initial, final=final, t=t, history=history)
        return CheckResult(name=name, key=key, valid=None, evidence={"error": f"no check named {name!r}"})
    except Exception as e:
        return CheckResult(name=name, key=key, valid=None, evidence={"error": f"{type(e).__name__}: {e}"})


def _summarise(name: str, per_key: list[CheckResult]) -> list[CheckResult]:
    """Many keys: one result over every key, plus the keys that are not valid (capped)."""
    bad = [r for r in per_key if r.valid is False]
    unknown = [r for r in per_key if r.valid is None]
    valid: bool | None = False if bad else (None if unknown else True)
    ev: dict[str, Any] = {"keys": len(per_key), "invalid_keys": len(bad), "unknown_keys": len(unknown)}
    for field in ("lost", "duplicated", "duplicate_values", "oversold"):
        if any(field in r.evidence for r in per_key):
            ev[field] = sum(int(r.evidence.get(field) or 0) for r in per_key)
    if any("beyond_recorded" in r.evidence for r in per_key):
        ev["unexplained"] = sum(abs(int(r.evidence.get("beyond_recorded") or 0)) for r in per_key)
    return [CheckResult(name=name, key=ALL_KEYS, valid=valid, evidence=ev), *(bad + unknown)[:EVIDENCE_CAP]]


def run_checks(
    *,
    checks: Iterable[str],
    ops: Iterable[Op] = (),
    tallies: Mapping[str, KeyTally] | None = None,
    initial: Mapping[str, int],
    final: Mapping[str, int | None],
    history: Completeness,
    returns: Literal["after", "before"] = "after",
) -> CheckReport:
    """Every check on every key. The history comes as ``ops`` (hand-built) or as per-key ``tallies``
    (``harness.checks.columns.ColumnTally`` of a history file)."""
    tallies = tally(ops) if tallies is None else dict(tallies)
    for key in initial:  # keys nobody touched still must hold their initial value
        tallies.setdefault(key, KeyTally(key=key))
    keys = sorted(tallies)
    names = list(checks)
    results: list[CheckResult] = []
    for name in names:
        per_key = [_one(name, key, initial.get(key, 0), final.get(key), tallies[key], history, returns)
                   for key in keys]
        results.extend(per_key if len(per_key) == 1 else _summarise(name, per_key))
        if name == "bounds" and len(keys) > 1:
            finals = [final.get(k) for k in keys]
            total_final = None if any(v is None for v in finals) else sum(v for v in finals if v is not None)
            results.append(_one(name, TOTAL_KEY, sum(initial.get(k, 0) for k in keys), total_final,
                                merged(TOTAL_KEY, tallies.values()), history, returns))

    totals = _totals(tallies.values(), results)
    verdict, reason = _verdict(results, totals, history)
    return CheckReport(verdict=verdict, reason=reason, totals=totals, checks=results)


def _totals(tallies: Iterable[KeyTally], results: list[CheckResult]) -> dict[str, int]:
    ts = list(tallies)
    per_key = [r for r in results if r.key not in (TOTAL_KEY, ALL_KEYS)]
    summaries = [r for r in results if r.key == ALL_KEYS]

    def total(check: str, field: str) -> int:
        """A finding (lost, duplicated, ...) counts only from results that decided: an undecided one
        carries no such figure."""
        s = [r for r in summaries if r.name == check]
        if s:
            return int(s[0].evidence.get(field) or 0)
        return sum(int(r.evidence.get(field) or 0) for r in per_key if r.name == check)

    unexplained = [r for r in summaries if r.name == "bounds"]

    return {
        "ops": sum(t.ok + t.fail + t.indeterminate for t in ts),
        "ok": sum(t.ok for t in ts),
        "fail": sum(t.fail for t in ts),
        "indeterminate": sum(t.indeterminate for t in ts),
        "keys": len(ts),
        "lost": total("bounds", "lost"),
        "duplicated": total("bounds", "duplicated"),
        "duplicate_values": total("unique-values", "duplicate_values"),
        "oversold": total("no-oversell", "oversold"),
        # how far the final values lie beyond what an incomplete history explains: not a finding
        "unexplained": int(unexplained[0].evidence.get("unexplained") or 0) if unexplained else sum(
            abs(int(r.evidence.get("beyond_recorded") or 0)) for r in per_key if r.name == "bounds"),
    }


def _verdict(results: list[CheckResult], totals: dict[str, int], history: Completeness) -> tuple[Verdict, str]:
    bad = [r for r in results if r.valid is False]
    if bad:
        parts = []
        for field, words in (("lost", "lost"), ("duplicated", "applied twice"),
                             ("duplicate_values", "values handed out twice"), ("oversold", "oversold")):
            if totals[field]:
                parts.append(f"{totals[field]} {words}")
        detail = ", ".join(parts) or "; ".join(str(r.evidence.get("reason", r.name)) for r in bad[:3])
        return "fail", f"{', '.join(sorted({r.name for r in bad}))} violated: {detail}"
    unknown = [r for r in results if r.valid is None]
    if not history.complete:
        missing = f"the history is incomplete ({'; '.join(history.missing)})"
        if unknown:
            return "unknown", f"{missing}: {_why(unknown[0])}"
        return "unknown", missing
    if totals["ok"] == 0:
        return "unknown", "no op was acknowledged, so nothing was proven"
    if unknown:
        return "unknown", _why(unknown[0])
    return "pass", "every check holds"


def _why(r: CheckResult) -> str:
    why = r.evidence.get("reason") or r.evidence.get("error") or "undecided"
    return f"{r.name} ({r.key}) could not decide: {why}"
