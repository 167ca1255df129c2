"""Checks: pure functions from (history, initial state, final state) to verdicts.

No I/O and no Locust here: a finished run folder can be re-checked offline.
A check that crashes yields ``unknown`` with the error, never a pass.

Each check is a module ending with its ``CHECK`` (``harness.checks.model.Check``: its function, the
findings it counts, where it applies) and one line of ``CHECKS`` below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.checks import bounds, gaps, oversell, reads, realtime, unique
from harness.checks.columns import Resolution
from harness.checks.model import EVIDENCE_CAP, Check, CheckResult, Completeness, KeyTally, merged, tally
from harness.checks.timed import TimedOps
from harness.core.ops import Op

CHECKS: dict[str, Check] = {c.name: c for c in (
    bounds.CHECK,
    unique.CHECK,
    oversell.CHECK,
    realtime.CHECK,
    reads.CHECK,
    gaps.CHECK,
)}

Verdict = Literal["pass", "fail", "unknown"]
TOTAL_KEY = "(total)"
ALL_KEYS = "(every key)"

__all__ = ["ALL_KEYS", "CHECKS", "FINDINGS", "TOTAL_KEY", "Check", "CheckReport", "CheckResult", "Completeness",
           "Verdict", "default_checks", "run_checks"]


def default_checks(workload: str) -> tuple[str, ...]:
    """The checks a workload gets when its scenario names none."""
    return tuple(name for name, c in CHECKS.items() if c.default and c.applies_to(workload))


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    verdict: Verdict
    reason: str  # one sentence a report can lead with
    totals: dict[str, int]
    checks: list[CheckResult]


# what checks that decided counted, and how a reason words each
WORDS: dict[str, str] = {field: words for c in CHECKS.values() for field, words in c.findings}
FINDINGS = tuple(WORDS)


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
        check = CHECKS.get(name)
        if check is None:
            return CheckResult(name=name, key=key, valid=None, evidence={"error": f"no check named {name!r}"})
        return check.fn(key=key, initial=initial, final=final, t=t, history=history, returns=returns)
    except Exception as e:
        return CheckResult(name=name, key=key, valid=None, evidence={"error": f"{type(e).__name__}: {e}"})


def _summarise(name: str, per_key: list[CheckResult]) -> list[CheckResult]:
    """Many keys: one result over every key, plus the keys that are not valid (capped)."""
    bad = [r for r in per_key if r.valid is False]
    unknown = [r for r in per_key if r.valid is None]
    valid: bool | None = False if bad else (None if unknown else True)
    ev: dict[str, Any] = {"keys": len(per_key), "invalid_keys": len(bad), "unknown_keys": len(unknown)}
    for field in FINDINGS:
        if any(field in r.evidence for r in per_key):
            ev[field] = sum(int(r.evidence.get(field) or 0) for r in per_key)
    if any("beyond_recorded" in r.evidence for r in per_key):
        ev["unexplained"] = sum(abs(int(r.evidence.get("beyond_recorded") or 0)) for r in per_key)
    if valid is None:  # say why, by the first undecided key
        first = unknown[0]
        why = first.evidence.get("reason") or first.evidence.get("error") or "undecided"
        ev["reason"] = f"{len(unknown)} of {len(per_key)} keys undecided ({first.key}: {why})"
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
    resolutions: Mapping[str, Resolution] | None = None,
) -> CheckReport:
    """Every check on every key. The history comes as ``ops`` (hand-built, with the ``resolutions`` of its
    uncertain ops, by worker) or as per-key ``tallies`` (``harness.checks.columns.ColumnTally`` of a
    history file, which applied them)."""
    tallies = tally(ops, resolutions) if tallies is None else dict(tallies)
    for key in initial:  # keys nobody touched still must hold their initial value (no op to place in time)
        tallies.setdefault(key, KeyTally(key=key, timed=TimedOps()))
    keys = sorted(tallies)
    names = list(checks)
    results: list[CheckResult] = []
    for name in names:
        per_key = [_one(name, key, initial.get(key, 0), final.get(key), tallies[key], history, returns)
                   for key in keys]
        results.extend(per_key if len(per_key) == 1 else _summarise(name, per_key))
        if name in CHECKS and CHECKS[name].over_total and len(keys) > 1:
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

    def unexplained() -> int:
        """How far final values lie beyond what an incomplete history explains: not a finding."""
        return sum(int(r.evidence.get("unexplained") or 0) for r in summaries) + sum(
            abs(int(r.evidence.get("beyond_recorded") or 0)) for r in per_key
            if not any(s.name == r.name for s in summaries))

    return {
        "ops": sum(t.ok + t.fail + t.indeterminate for t in ts),
        "reads": sum(t.reads for t in ts),
        "ok": sum(t.ok for t in ts),
        "fail": sum(t.fail for t in ts),
        "indeterminate": sum(t.indeterminate for t in ts),
        "keys": len(ts),
        **{field: total(c.name, field) for c in CHECKS.values() for field, _ in c.findings},
        "unexplained": unexplained(),
    }


def _verdict(results: list[CheckResult], totals: dict[str, int], history: Completeness) -> tuple[Verdict, str]:
    bad = [r for r in results if r.valid is False]
    if bad:
        parts = [f"{totals[field]} {words}" for field, words in WORDS.items() if totals.get(field)]
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
