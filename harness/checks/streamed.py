"""The streamed folds of one key read out as check results: the same preconditions, evidence and witnesses
as the in-memory check of each name (``harness.checks.unique``, ``realtime``, ``reads``, ``gaps``), which
hand over to it when a key was folded as its history streamed (``harness.checks.stream``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from harness.checks.model import EVIDENCE_CAP, CheckResult, Completeness, KeyTally
from harness.checks.reads import WHY, bad_read, found_at, later_lost
from harness.checks.timed import NEVER, TRUNCATION_NS, later_but_behind
from harness.checks.windows import LOW


@dataclass(eq=False)
class Streamed:
    """One key's folds, read out as each check's result (the same preconditions and evidence as the
    in-memory check of that name)."""

    folds: Any  # harness.checks.stream._KeyFolds: holes (unique-values, gaps) and order (the rest)
    workers: list[str]
    start_ns: int
    d: int

    def witness(self, op: dict[str, int], *, read: bool = False) -> dict[str, Any]:
        cmp = op.get("cmp0", op["cmp"])  # as placed, not widened
        return {"process": self.workers[op["worker"]], "op": op["op"],
                "kind": "read" if read else ("increment" if self.d > 0 else "decrement"),
                "amount": 0 if read else self.d,
                "value": op["u"] * self.d if read or op["u"] > LOW else None,
                "invoked_s": round((op.get("inv0", op["inv"]) - self.start_ns) / 1e9, 6),
                "completed_s": None if cmp >= NEVER else round((cmp - TRUNCATION_NS - self.start_ns) / 1e9, 6)}

    def result(self, name: str, *, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
               returns: Literal["after", "before"]) -> CheckResult:
        fn = {"unique-values": self._unique, "realtime-order": self._realtime, "reads": self._reads,
              "gaps": self._gaps}[name]
        return fn(key, initial, final, t, history, returns)

    def _unique(self, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
                returns: Literal["after", "before"]) -> CheckResult:
        name, h, d = "unique-values", self.folds.holes, self.d
        ev: dict[str, Any] = {"values": h.values, "ok_without_value": t.ok_without_value, "returns": returns}
        signs = history.possible_signs(t.signs)
        if len(signs) > 1:
            return CheckResult(name=name, key=key, valid=None,
                               evidence={**ev, "reason": "amounts of both signs: values may repeat legitimately"})
        if t.ok == 0:
            if final is None:
                return CheckResult(name=name, key=key, valid=None, evidence={
                    **ev, "reason": "no acknowledged op, and the final value was not read"})
            return CheckResult(name=name, key=key, valid=True, evidence={**ev, "reason": "no acknowledged op"})
        if not h.values:
            return CheckResult(name=name, key=key, valid=None,
                               evidence={**ev, "reason": "no acknowledged op returned a value"})
        vals, times = h.repeated()
        vals = vals * d
        by_value = np.argsort(vals, kind="stable")
        vals, times = vals[by_value], times[by_value]
        top = np.argsort(-times, kind="stable")[:EVIDENCE_CAP]
        ev["duplicate_values"] = h.extra
        ev["repeated"] = [{"value": int(v), "times": int(n)}
                          for v, n in zip(vals[top].tolist(), times[top].tolist(), strict=True)]
        out_of_range = 0
        if final is not None:
            if d < 0:
                lo, hi = (final, initial - 1) if returns == "after" else (final + 1, initial)
            else:
                lo, hi = (initial + 1, final) if returns == "after" else (initial, final - 1)
            ev["range"] = [lo, hi]
            outside = np.sort(h.outside() * d)
            out_of_range = len(outside) + h.outside_more
            ev["out_of_range"] = out_of_range
            ev["out_of_range_values"] = [int(v) for v in outside[:EVIDENCE_CAP].tolist()]
        if h.extra or out_of_range:
            return CheckResult(name=name, key=key, valid=False, evidence=ev)
        if final is None:
            return CheckResult(name=name, key=key, valid=None,
                               evidence={**ev, "reason": "values are unique but the final value was not read"})
        if h.too_far is not None:
            return CheckResult(name=name, key=key, valid=None, evidence={
                **ev, "reason": f"{h.too_far}: a streamed check cannot follow them (see bounds)"})
        return CheckResult(name=name, key=key, valid=True, evidence=ev)

    def _realtime(self, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
                  returns: Literal["after", "before"]) -> CheckResult:
        name = "realtime-order"
        signs = history.possible_signs(t.signs)
        if len(signs) > 1:
            return CheckResult(name=name, key=key, valid=None,
                               evidence={"reason": "amounts of both signs: values need not move one way"})
        ev: dict[str, Any] = {"compared": self.folds.valued}
        if not self.folds.valued:
            if t.ok == 0:
                return CheckResult(name=name, key=key, valid=True, evidence={**ev, "reason": "no acknowledged op"})
            return CheckResult(name=name, key=key, valid=None,
                               evidence={**ev, "reason": "no acknowledged op returned a value"})
        count, b, a = self.folds.order.order
        ev["out_of_order"] = count
        if not count:
            return CheckResult(name=name, key=key, valid=True, evidence=ev)
        second = self.witness(b)
        if a is None:  # pragma: no cover - a bad op always has one answered above it
            return CheckResult(name=name, key=key, valid=False, evidence={**ev, "witness": [second]})
        first = self.witness(a)
        return CheckResult(name=name, key=key, valid=False,
                           evidence={**ev, "witness": [first, second], "reason": later_but_behind(first, second)})

    def _reads(self, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
               returns: Literal["after", "before"]) -> CheckResult:
        name, d, o = "reads", self.d, self.folds.order
        ev: dict[str, Any] = {"reads": t.reads_ok}
        if t.reads_ok == 0:
            return CheckResult(name=name, key=key, valid=True, evidence={**ev, "reason": "no acknowledged read"})
        s_on = history.complete or -d not in history.op_signs
        a_on = history.complete or d not in history.op_signs
        # no write at all: only the counts bound a read (no way it moves, nothing to lose or go back from)
        one_way = len(history.possible_signs(t.signs)) == 1
        # and with no write, a read is judged as of a counter that goes up (the in-memory check's way)
        flip = not one_way and d < 0
        # a read judged before a later write showed it ahead: one at least (which one, the window no longer says)
        late = a_on and o.late_ahead is not None
        stale_n, ahead_n = (o.counts["ahead"], o.counts["stale"]) if flip else (o.counts["stale"], o.counts["ahead"])
        ev.update(stale=stale_n if s_on else 0, ahead=max(ahead_n, late) if a_on else 0,
                  lost_state=o.counts["lost"] if one_way and final is not None else 0, never_held=0)
        backwards, b, a = o.back if one_way else (0, None, None)
        ev["backwards"] = backwards
        which = (s_on, a_on, one_way and final is not None)
        bad = max(o.bad[which], late)
        if late:
            ev["at_least"] = True  # ahead and bad_reads count the reads the window still held, and one more
        if not (bad or backwards):
            return CheckResult(name=name, key=key, valid=True, evidence=ev)
        ev["bad_reads"] = bad + backwards
        if not bad:
            first, second = self.witness(a, read=True), self.witness(b, read=True)  # type: ignore[arg-type]
            ev["witness"] = [first, second]
            ev["reason"] = f"{later_but_behind(first, second, noun='read op', process=False)}: the counter went back"
            return CheckResult(name=name, key=key, valid=False, evidence=ev)
        rec = o.first_bad.get(which)
        if rec is None:  # only a read already judged, shown ahead by a later write
            w = self.witness(o.late_ahead)  # type: ignore[arg-type]
            ev["witness"] = [w]
            ev["reason"] = (f"op {w['op']} ({w['process']}) found the counter below a value a read answered "
                            "before it was sent had seen")
            return CheckResult(name=name, key=key, valid=False, evidence=ev)
        read = self.witness(rec["read"], read=True)
        lower, upper = (rec["upper"], rec["lower"]) if flip else (rec["lower"], rec["upper"])
        stale, ahead = (rec["ahead"], rec["stale"]) if flip else (rec["stale"], rec["ahead"])
        ev["bounds"] = sorted((lower * d, upper * d))
        ev["stale_reads"] = [u * d for u in o.listed(stale=not flip)] if s_on else []
        if stale and s_on:
            writer = rec["furthest"] if not flip else None
            witness = [self.witness(writer), read] if writer is not None else [read]
            why = WHY["stale"](lower * d)
        elif ahead and a_on and not flip and rec["upper"] == rec["upper_v"] and rec["nearest"] is not None:
            w = self.witness(rec["nearest"])
            witness = [w, read]
            why = found_at(w, rec["upper"] * d)
        elif ahead and a_on:
            witness = [read]
            why = WHY["ahead"](upper * d)
        else:
            witness = [read]
            why = later_lost(d, final)
        ev["witness"] = witness
        ev["reason"] = bad_read(read, why)
        return CheckResult(name=name, key=key, valid=False, evidence=ev)

    def _gaps(self, key: str, initial: int, final: int | None, t: KeyTally, history: Completeness,
              returns: Literal["after", "before"]) -> CheckResult:
        name, d, h, f = "gaps", self.d, self.folds.holes, self.folds
        if final is None:
            return CheckResult(name=name, key=key, valid=None, evidence={"reason": "the final value was not read"})
        if not history.complete:
            return CheckResult(name=name, key=key, valid=None, evidence={
                "reason": "the history is incomplete: a missing op may account for a gap"})
        if not f.placed:
            return CheckResult(name=name, key=key, valid=True, evidence={"reason": "no op"})
        if t.ok_without_value:
            return CheckResult(name=name, key=key, valid=None, evidence={
                "reason": "an acknowledged op returned no value: its value is unknown"})
        first_v = initial + d if returns == "after" else initial
        last_v = final if returns == "after" else final - d
        span = (last_v - first_v) * d + 1
        if span > 2 * f.placed + 1000:
            return CheckResult(name=name, key=key, valid=None, evidence={
                "reason": f"the counter moved {span} from its initial value, far more than the ops could: see bounds"})
        if h.duplicated:
            return CheckResult(name=name, key=key, valid=None, evidence={
                "reason": "values were handed out twice (see unique-values): which answer of such a value made a gap "
                          "is not told apart in a streamed check"})
        if h.too_far is not None:
            return CheckResult(name=name, key=key, valid=None, evidence={"reason": h.too_far})
        gaps, uncertain, matched, phantoms = h.gaps()
        ev: dict[str, Any] = {"gaps": gaps, "uncertain": uncertain}
        ev.update(shown_applied=matched, shown_not_applied=uncertain - matched, phantoms=gaps - matched)
        if not gaps:
            ev.update(shown_applied=0, shown_not_applied=uncertain)
        if gaps == matched:
            return CheckResult(name=name, key=key, valid=True, evidence=ev)
        values = [p * d + first_v for p in phantoms]
        ev["phantom_values"] = values
        ev["reason"] = (f"the counter passed {values[0]}, which no acknowledged op returned and no uncertain op "
                        "could have produced (none was out while it could happen): an increment nobody sent, or an op "
                        "applied twice")
        return CheckResult(name=name, key=key, valid=False, evidence=ev)
