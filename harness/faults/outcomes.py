"""What became of each planned fault, rebuilt from faults.jsonl alone, and the rule that makes faults
part of the verdict: a run whose planned faults did not all happen as planned cannot pass.

Pure: the scenario's planned faults and the file's events in, one ``FaultOutcome`` per planned fault
out (``outcomes``); a verdict and its reason in, the verdict the faults allow out (``with_faults``).
The nemesis writes the events (``harness.faults.nemesis``), the judge reads them (``harness.judge``).

Each outcome has one status:

    healed              opened, then healed
    open                opened; no duration, so it stays open (a server killed for good)
    heal-error          opened, but its heal raised (the error is kept)
    not-healed          opened with a duration, and no record of its heal (an older file whose heal failed)
    no-failover         a partition of a primary opened and healed, and no other node was promoted meanwhile:
                        the failover it was there to cause never happened (the heal records who was)
    open-error          opening it raised (the error is kept): it did not happen
    load-ended          the load ended before its time (a stop signal, a load process that died)
    load-never-started  the load never started, so neither did the fault
    no-record           nothing in faults.jsonl says what became of it (no file: the nemesis never ran)

Only ``healed`` and ``open`` went as planned. A fault that did not go as planned leaves a run proving
nothing about that fault, so such a run cannot ``pass``; a ``fail`` stands (a violation proven is proven
whatever the faults did).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from harness.core.models import FaultSpec

Status = Literal["healed", "open", "heal-error", "not-healed", "no-failover", "open-error", "load-ended",
                 "load-never-started", "no-record"]
AS_PLANNED: frozenset[Status] = frozenset({"healed", "open"})
OPENED: frozenset[Status] = frozenset({"healed", "open", "heal-error", "not-healed", "no-failover"})


def secs(x: float) -> str:
    """Seconds as a reader wants them: ``3``, ``1.5``, ``2.3`` (a tenth is as fine as a nemesis is punctual)."""
    return f"{round(x, 1):g}"


@dataclass(frozen=True, kw_only=True)
class FaultOutcome:
    """One planned fault (its place in the scenario's list, what and when) and what became of it; times
    in seconds since the load started: ``opened_s`` when the nemesis began opening it, ``healed_s`` when
    its heal was done (a restarted server serving again)."""

    index: int
    action: str
    server: str
    at: float
    duration: float | None
    status: Status
    opened_s: float | None = None
    healed_s: float | None = None
    healed_at_load_end: bool = False  # its window outlasted the load, so it healed when the load ended
    load_ended_s: float | None = None
    stopped_by: str | None = None  # the signal that ended the load early
    error: str | None = None  # what opening or healing it raised (no-record: why there is no record)
    promoted: str | None = None  # a partition: the node promoted while it was open, as its heal found

    @property
    def happened(self) -> bool:
        return self.status in OPENED

    @property
    def as_planned(self) -> bool:
        return self.status in AS_PLANNED

    def why(self) -> str | None:
        """The sentence that says how it did not go as planned (None when it did)."""
        what = f"{self.action} planned at {secs(self.at)} s"
        opened = f"{what} opened at {secs(self.opened_s)} s" if self.opened_s is not None else f"{what} opened"
        match self.status:
            case "load-ended":
                ended = "" if self.load_ended_s is None else f" at {secs(self.load_ended_s)} s"
                by = f" (stopped by {self.stopped_by})" if self.stopped_by else ""
                return f"{what} did not happen: the load ended{ended}{by}"
            case "load-never-started":
                return f"{what} did not happen: the load never started"
            case "open-error":
                return f"{what} did not happen: it raised {self.error}"
            case "no-record":
                return f"{what} did not happen: {self.error or 'faults.jsonl has no record of it'}"
            case "heal-error":
                return f"{opened} but did not heal: it raised {self.error}"
            case "not-healed":
                return f"{opened} and has no record of its heal"
            case "no-failover":
                return (f"{opened} and healed at {secs(self.healed_s or 0)} s, but no other node was promoted "
                        "meanwhile: the failover it was there to cause never happened")
        return None

    def to_json(self) -> dict[str, Any]:
        return {"fault": self.index, "action": self.action, "server": self.server, "at": self.at,
                "duration": self.duration, "status": self.status, "happened": self.happened,
                "opened_s": _r(self.opened_s), "healed_s": _r(self.healed_s),
                "healed_at_load_end": self.healed_at_load_end, "load_ended_s": _r(self.load_ended_s),
                "stopped_by": self.stopped_by, "error": self.error, "promoted": self.promoted, "why": self.why()}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def with_faults(verdict: str, reason: str, outcomes: Sequence[FaultOutcome]) -> tuple[str, str]:
    """The verdict the faults allow: a run whose planned faults did not all go as planned cannot pass (it
    proves nothing about the fault it missed); a fail stays a fail; an unknown says this reason too."""
    missed = [o for o in outcomes if not o.as_planned]
    if verdict == "fail" or not missed:
        return verdict, reason
    why = str(missed[0].why())
    if len(missed) > 1:
        why += f" (and {len(missed) - 1} more planned fault{'s' if len(missed) > 2 else ''} not as planned)"
    return "unknown", why if verdict == "pass" else f"{reason}; {why}"


def outcomes(planned: Sequence[FaultSpec], events: Sequence[Mapping[str, Any]] | None, *,
             load_started: float | None = None) -> list[FaultOutcome]:
    """Each planned fault's outcome from faults.jsonl's events (None: there is no faults.jsonl).

    Version 2 events name their fault by its place in the list (``fault``) and carry their time since
    the load started (``t``). Version 1 files hold only ``begin`` and ``end``, matched to planned faults
    of the same action and server in the order they were planned; their times count from
    ``load_started`` (wall clock), when known.
    """
    if events is None:
        missing = "there is no faults.jsonl (the nemesis never ran; a plain locust run applies no faults)"
        return [_outcome(i, f, [], error=missing) for i, f in enumerate(planned)]
    by_fault = _by_fault(planned, events)
    return [_outcome(i, f, [_timed(e, load_started) for e in by_fault.get(i, [])]) for i, f in enumerate(planned)]


def _timed(event: Mapping[str, Any], start: float | None) -> dict[str, Any]:
    """The event with ``t``, its seconds since the load started (None when that cannot be known)."""
    t = event.get("t")
    if t is None and start is not None and event.get("time") is not None:
        t = round(float(event["time"]) - start, 3)  # to the ms, as version 2 records it
    return {**event, "t": t}


def _by_fault(planned: Sequence[FaultSpec], events: Sequence[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    """Events by the index of the planned fault they are about."""
    out: dict[int, list[Mapping[str, Any]]] = {}
    order = sorted(range(len(planned)), key=lambda i: planned[i].at)  # as the nemesis opened them
    opened: list[int] = []  # version 1: faults begun and not yet ended, in order
    for e in events:
        if e.get("fault") is not None:
            out.setdefault(int(e["fault"]), []).append(e)
            continue
        same = [i for i in order if (planned[i].action, planned[i].server) == (e.get("action"), e.get("server"))]
        if e.get("event") == "begin":
            i = next((i for i in same if i not in out), None)
            if i is not None:
                out[i] = [e]
                opened.append(i)
        elif e.get("event") == "end":
            i = next((i for i in opened if i in same), None)
            if i is not None:
                out[i].append(e)
                opened.remove(i)
    return out


def _outcome(index: int, fault: FaultSpec, events: Sequence[Mapping[str, Any]], *,
             error: str | None = None) -> FaultOutcome:
    """One fault's outcome from its own events, in the order they were written."""
    base: dict[str, Any] = {"index": index, "action": fault.action, "server": fault.server, "at": fault.at,
                            "duration": fault.duration}
    kinds = {e.get("event"): e for e in events}
    if "begin" in kinds:
        opened = kinds["begin"].get("t")
        if "end" in kinds:
            end = kinds["end"]
            # a heal that looked for a promotion says whom it found (null: nobody); older heals did not look
            failed_over = "promoted" not in end or end["promoted"] is not None
            return FaultOutcome(**base, status="healed" if failed_over else "no-failover", opened_s=opened,
                                healed_s=end.get("t"), healed_at_load_end=bool(end.get("at_load_end")),
                                promoted=end.get("promoted"))
        if "heal-error" in kinds:
            return FaultOutcome(**base, status="heal-error", opened_s=opened, error=kinds["heal-error"].get("error"))
        return FaultOutcome(**base, status="open" if fault.duration is None else "not-healed", opened_s=opened)
    if "open-error" in kinds:
        return FaultOutcome(**base, status="open-error", error=kinds["open-error"].get("error"))
    if "not-opened" in kinds:
        e = kinds["not-opened"]
        if e.get("why") == "load-never-started":
            return FaultOutcome(**base, status="load-never-started")
        return FaultOutcome(**base, status="load-ended", load_ended_s=e.get("load_ended_s"),
                            stopped_by=e.get("stopped_by"))
    return FaultOutcome(**base, status="no-record", error=error)
