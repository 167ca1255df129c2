"""unique-values: every acknowledged op's returned value is new and in range.

For ops that all move the counter the same way, each op's value after it was
applied is distinct and lies in ``(I, F]`` (``[F, I)`` for decrements). A value
returned twice proves two ops read the same state: a lost update, even when the
totals happen to match. ``returns: before`` (as UPDATED_OLD) shifts the range to
``[I, F)``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from harness.checks.model import EVIDENCE_CAP, CheckResult, KeyTally

NAME = "unique-values"


def check_unique_values(
    *, key: str, initial: int, final: int | None, t: KeyTally, returns: Literal["after", "before"] = "after"
) -> CheckResult:
    ev: dict[str, Any] = {"values": len(t.ok_values), "ok_without_value": t.ok_without_value, "returns": returns}
    signs = t.signs
    if len(signs) > 1:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={**ev, "reason": "amounts of both signs: values may repeat legitimately"})
    if t.ok == 0:
        return CheckResult(name=NAME, key=key, valid=True, evidence={**ev, "reason": "no acknowledged op"})
    if not t.ok_values:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={**ev, "reason": "no acknowledged op returned a value"})
    counts = Counter(t.ok_values)
    repeated = sorted(((v, n) for v, n in counts.items() if n > 1), key=lambda vn: (-vn[1], vn[0]))
    ev["duplicate_values"] = sum(n - 1 for _, n in repeated)
    ev["repeated"] = [{"value": v, "times": n} for v, n in repeated[:EVIDENCE_CAP]]
    out_of_range: list[int] = []
    if final is not None:
        if signs == {-1}:
            lo, hi = (final, initial - 1) if returns == "after" else (final + 1, initial)
        else:
            lo, hi = (initial + 1, final) if returns == "after" else (initial, final - 1)
        ev["range"] = [lo, hi]
        out_of_range = sorted(v for v in counts if not lo <= v <= hi)
        ev["out_of_range"] = len(out_of_range)
        ev["out_of_range_values"] = out_of_range[:EVIDENCE_CAP]
    if repeated or out_of_range:
        return CheckResult(name=NAME, key=key, valid=False, evidence=ev)
    if final is None:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={**ev, "reason": "values are unique but the final value was not read"})
    return CheckResult(name=NAME, key=key, valid=True, evidence=ev)
