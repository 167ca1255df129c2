"""unique-values: every acknowledged op's returned value is new and in range.

For ops that all move the counter the same way, each op's value after it was
applied is distinct and lies in ``(I, F]`` (``[F, I)`` for decrements). A value
returned twice proves two ops read the same state: a lost update, even when the
totals happen to match. ``returns: before`` (as UPDATED_OLD) shifts the range to
``[I, F)``.
"""

from __future__ import annotations

from typing import Any, Literal

from harness.checks.model import EVIDENCE_CAP, Check, CheckResult, Completeness, KeyTally, noted

NAME = "unique-values"


def check_unique_values(
    *, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
    returns: Literal["after", "before"] = "after",
) -> CheckResult:
    if t.streamed is not None:  # folded as the history streamed (harness.checks.stream)
        return t.streamed.result(NAME, key=key, initial=initial, final=final, t=t, history=history, returns=returns)
    import numpy as np  # not at import time: the load generator imports the checks but never runs them

    ev: dict[str, Any] = {"values": len(t.ok_values), "ok_without_value": t.ok_without_value, "returns": returns}
    signs = history.possible_signs(t.signs)  # with an incomplete history, a missing op's too
    if len(signs) > 1:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={**ev, "reason": "amounts of both signs: values may repeat legitimately"})
    if t.ok == 0:
        if final is None:
            return CheckResult(name=NAME, key=key, valid=None,
                               evidence={**ev, "reason": "no acknowledged op, and the final value was not read"})
        return CheckResult(name=NAME, key=key, valid=True, evidence={**ev, "reason": "no acknowledged op"})
    if not len(t.ok_values):
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={**ev, "reason": "no acknowledged op returned a value"})
    # one sorted copy of the values (int64; beyond 64 bits they stay exact as Python ints in an object
    # array); distinct values and their counts are built only when some value repeats
    ordered = np.sort(np.asarray(t.ok_values))
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    if first.all():
        distinct, rep_values, rep_counts = ordered, ordered[:0], np.zeros(0, dtype=np.int64)
    else:
        starts = np.flatnonzero(first)
        distinct = ordered[starts]
        counts = np.diff(np.append(starts, len(ordered)))
        twice = counts > 1
        rep_values, rep_counts = distinct[twice], counts[twice]
    del first
    order = np.argsort(-rep_counts, kind="stable")  # most repeated first, then by value (distinct is sorted)
    ev["duplicate_values"] = int((rep_counts - 1).sum())
    ev["repeated"] = [{"value": int(v), "times": int(n)}
                      for v, n in zip(rep_values[order[:EVIDENCE_CAP]].tolist(),
                                      rep_counts[order[:EVIDENCE_CAP]].tolist(), strict=True)]
    out_of_range = 0
    if final is not None:
        if signs == {-1}:
            lo, hi = (final, initial - 1) if returns == "after" else (final + 1, initial)
        else:
            lo, hi = (initial + 1, final) if returns == "after" else (initial, final - 1)
        ev["range"] = [lo, hi]
        outside = distinct[(distinct < lo) | (distinct > hi)]  # sorted, as distinct is
        out_of_range = len(outside)
        ev["out_of_range"] = out_of_range
        ev["out_of_range_values"] = [int(v) for v in outside[:EVIDENCE_CAP].tolist()]
    if len(rep_values) or out_of_range:
        return CheckResult(name=NAME, key=key, valid=False, evidence=ev)
    if final is None:
        return CheckResult(name=NAME, key=key, valid=None,
                           evidence={**ev, "reason": "values are unique but the final value was not read"})
    return CheckResult(name=NAME, key=key, valid=True, evidence=ev)


def describe(r: CheckResult) -> str:
    if (said := noted(r)) is not None:
        return said
    e = r.evidence
    if r.valid:
        lo, hi = e["range"]
        return f"{e['values']:,} values returned, each once, all within {lo:,} to {hi:,}"
    parts = []
    if e.get("duplicate_values"):
        top = e["repeated"][0]
        parts.append(f"{e['duplicate_values']:,} values handed out twice or more (e.g. {top['value']:,}, "
                     f"{top['times']} times): two ops read the same state, so an update was lost")
    if e.get("out_of_range"):
        lo, hi = e["range"]
        parts.append(f"{e['out_of_range']:,} values outside {lo:,} to {hi:,} (e.g. {e['out_of_range_values'][0]:,}): "
                     "the counter reached them, then went back")
    return "; ".join(parts)


CHECK = Check(name=NAME, fn=check_unique_values, findings=(("duplicate_values", "values handed out twice"),),
              describe=describe)
