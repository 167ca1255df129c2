"""The slow oracle beside counterbench's fast checks (STYLE item 13), and the histories it judges.

``linearize`` decides by brute force whether a small counter history is linearizable: Wing & Gong's
search over every order the history allows, as Knossos and Porcupine do it, memoising each
(linearized set, counter value) already shown to lead nowhere. ``random_history`` makes small
histories the way real services and clients behave -- a correct atomic counter, or one with a real
bug, or a correct history with one thing changed -- and ``compare`` runs counterbench's checks and
the oracle on each, so that the two can be held to the two rules of issue 21:

- the checks never fail a history the oracle accepts (no false alarm), and
- where they claim to be complete (unit increments whose acknowledged ops all returned the value
  after), they fail every history the oracle rejects.

``python -m tests.oracle --n 100000`` prints the comparison table and one shrunk example of each
disagreement.

The semantics (one key, the value after returned):

- ``ok``: applied exactly once, at a point within [invoke, completion]; reads saw the state there.
- ``fail``: never applied (a failed read says nothing).
- ``indeterminate`` (or never completed): applied at most once, at a point after its invoke --
  possibly after its client gave up -- or never. A retried op is still one op.
- a resolution (the idempotency key looked up after the run): applied, leaving ``value``, at a point
  after its invoke (when is not known), or never applied.
- the final value is read after everything that ever lands has landed.
- times are truncated to the microsecond: events in the same microsecond may be in either order.

A history is linearizable iff some order of every ok op, every resolved-applied op and any subset of
the other indeterminate ops, each at a point within its window, replays from the initial value to
every returned and read value and ends at the final one.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from harness.checks import Completeness, default_checks, run_checks
from harness.checks.columns import Resolution
from harness.core.ops import Op, OpKind, Outcome

KEY = "k"
NEVER = 1 << 62  # the deadline of an op that may land any time after its invoke

Domain = Literal["unit-with-values", "amounts", "without-values", "seats"]
COMPLETE_DOMAIN: Domain = "unit-with-values"  # where the checks claim every violation is found


# --- a history ------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class History:
    """One key's ops, its initial and final value, and the uncertain ops looked up after the run."""

    ops: tuple[Op, ...]
    initial: int
    final: int
    # (worker, op id, value after): applied, leaving that value; value None: never applied
    resolved: tuple[tuple[str, int, int | None], ...] = ()
    story: str = ""  # how it was made (the generator's words): "correct", "bug:lost-update", "mutation:final"
    # what happened in it, as the generator knows (for coverage): "late-landing", "slow-ack", "retry", ...
    features: frozenset[str] = frozenset()
    # the values the counter took, with when (the generator's truth; empty for a hand-built history)
    timeline: tuple[tuple[int, int], ...] = ()

    @property
    def seats(self) -> bool:
        return any(o.kind == "decr_if_positive" for o in self.ops)

    def resolutions(self) -> dict[str, Resolution]:
        """As ``run_checks(resolutions=...)`` takes them."""
        return {w: Resolution(applied=a, not_applied=n) for w, (a, n) in self._by_worker().items()}

    def _by_worker(self) -> dict[str, tuple[list[list[int]], list[int]]]:
        """Per worker: [[op id, value], ...] applied, and the op ids not applied."""
        by: dict[str, tuple[list[list[int]], list[int]]] = {}
        for worker, op_id, value in self.resolved:
            applied, not_applied = by.setdefault(worker, ([], []))
            if value is None:
                not_applied.append(op_id)
            else:
                applied.append([op_id, value])
        return dict(sorted(by.items()))

    def resolution(self, o: Op) -> tuple[bool, int | None] | None:
        """What the lookup said of an uncertain op: (applied, value after), or None (not looked up).
        As counterbench reads them, a resolution speaks only of an op whose outcome was indeterminate."""
        if o.outcome is not Outcome.INDETERMINATE:
            return None
        for worker, op_id, value in self.resolved:
            if worker == o.worker and op_id == o.id:
                return value is not None, value
        return None

    @property
    def domain(self) -> Domain:
        """Which of the checks' claims covers it: complete for unit increments that return values."""
        writes = [o for o in self.ops if o.kind != "read"]
        if self.seats:
            return "seats"
        if any(o.amount != 1 for o in writes):
            return "amounts"
        if any(o.outcome is Outcome.OK and o.value is None for o in writes):
            return "without-values"
        return "unit-with-values"

    def literal(self) -> str:
        """Python source of the history, as ``run_checks`` takes it (``Op``, ``Outcome``, ``Resolution``)."""
        lines = ["ops = ["]
        lines += [f"    {op_literal(o)}," for o in self.ops]
        lines.append("]")
        lines.append(f"initial, final = {{{KEY!r}: {self.initial}}}, {{{KEY!r}: {self.final}}}")
        res = ", ".join(f"{w!r}: Resolution(applied={a!r}, not_applied={n!r})"
                        for w, (a, n) in self._by_worker().items())
        lines.append(f"resolutions = {{{res}}}")
        return "\n".join(lines)


def op_literal(o: Op) -> str:
    more = f", attempts={o.attempts}" if o.attempts != 1 else ""
    return (f"Op({o.worker!r}, {o.id}, {o.key!r}, {o.kind!r}, {o.amount}, Outcome.{o.outcome.name}, {o.value}, "
            f"{o.error!r}, {o.invoked_us}, {o.completed_us}{more})")


# --- the oracle -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Event:
    """One op as the search places it: its window, whether it must be placed, and what it must see."""

    op: Op
    lo: int  # the earliest point it can take effect
    hi: int  # the latest (NEVER: none)
    must: bool  # acknowledged or resolved applied; otherwise it may be left out (never applied)
    read: bool
    conditional: bool  # decrement only while positive
    amount: int
    value: int | None  # the state it leaves (writes) or saw (reads); None: not known


def _events(h: History) -> list[_Event]:
    out = []
    for o in h.ops:
        if o.completed_us is not None and o.completed_us < o.invoked_us:
            raise ValueError(f"op {o.worker}/{o.id} completed before it was invoked")
        hi = NEVER if o.completed_us is None else o.completed_us
        if o.kind == "read":
            if o.outcome is Outcome.OK and o.value is not None:
                out.append(_Event(o, o.invoked_us, hi, True, True, False, 0, o.value))
            continue
        conditional = o.kind == "decr_if_positive"
        amount = -1 if conditional else o.amount
        resolved = h.resolution(o)
        if resolved is not None:
            applied, value = resolved
            if applied:  # it landed when it landed: after its invoke, with no deadline
                out.append(_Event(o, o.invoked_us, NEVER, True, False, conditional, amount, value))
        elif o.outcome is Outcome.OK:
            out.append(_Event(o, o.invoked_us, hi, True, False, conditional, amount, o.value))
        elif o.outcome is Outcome.INDETERMINATE:
            out.append(_Event(o, o.invoked_us, NEVER, False, False, conditional, amount, None))
    return out


def _apply(e: _Event, state: int) -> int | None:
    """The state after ``e`` at ``state``; None where it cannot take effect there as the history says."""
    if e.read:
        return state if state == e.value else None
    if e.conditional and state <= 0:
        return None  # an acknowledged take is not possible at zero; an uncertain one would change nothing
    new = state + e.amount
    return new if e.value is None or new == e.value else None


@dataclass(frozen=True)
class Step:
    """One op of an order, and the counter's value after it."""

    worker: str
    id: int
    kind: OpKind
    state: int


@dataclass(frozen=True)
class Linearization:
    """The oracle's answer: ``ok``, with an order that replays the history; or not, with the longest
    consistent order it found (where every order got stuck is near its end)."""

    ok: bool
    order: tuple[Step, ...]
    explored: int  # (linearized set, value) pairs searched

    def __bool__(self) -> bool:
        return self.ok

    def explain(self) -> str:
        steps = " -> ".join(f"{s.worker}/{s.id} {s.kind} ={s.state}" for s in self.order) or "(nothing)"
        return f"linearizable: {steps}" if self.ok else f"not linearizable; the longest consistent order: {steps}"


def linearize(h: History) -> Linearization:
    """Wing & Gong's search: extend an order by any op that no unplaced acknowledged op must precede
    (one that completed strictly before this one was invoked), memoising (placed set, value) pairs that
    lead nowhere. Uncertain ops are placed or left out; of uncertain ops alike but for their invoke,
    only the earliest unplaced one is tried (any order using a later one works with the earlier)."""
    events = _events(h)
    n = len(events)
    must = sum(1 << i for i, e in enumerate(events) if e.must)
    # uncertain ops of one class (same change), by invoke: the one to try next is the first unplaced
    classes: dict[tuple[int, bool], list[int]] = {}
    for i, e in enumerate(events):
        if not e.must:
            classes.setdefault((e.amount, e.conditional), []).append(i)
    before: list[int] = [0] * n  # per uncertain op: the mask of its class that must be placed before it
    for members in classes.values():
        members.sort(key=lambda i: (events[i].lo, i))
        acc = 0
        for i in members:
            before[i] = acc
            acc |= 1 << i
    dead: set[tuple[int, int]] = set()
    path: list[int] = []
    states: list[int] = []
    best: list[tuple[int, int]] = []

    def go(mask: int, state: int) -> bool:
        if mask & must == must and state == h.final:
            return True
        if (mask, state) in dead:
            return False
        deadline = min((events[i].hi for i in range(n) if must >> i & 1 and not mask >> i & 1), default=NEVER)
        for i, e in enumerate(events):
            if mask >> i & 1 or e.lo > deadline or (before[i] & ~mask):
                continue
            new = _apply(e, state)
            if new is None:
                continue
            path.append(i)
            states.append(new)
            if len(path) > len(best):
                best[:] = list(zip(path, states, strict=True))
            if go(mask | 1 << i, new):
                return True
            path.pop()
            states.pop()
        dead.add((mask, state))
        return False

    ok = go(0, h.initial)
    found = list(zip(path, states, strict=True)) if ok else best
    order = tuple(Step(events[i].op.worker, events[i].op.id, events[i].op.kind, s) for i, s in found)
    return Linearization(ok, order, len(dead))


def linearizable(h: History) -> bool:
    return linearize(h).ok


# --- histories as real services make them ----------------------------------------------------------

@dataclass(kw_only=True)
class _Attempt:
    """One request of an op, as the network and the store treat it."""

    sent: int
    arrives: int | None  # at the store (None: lost on the way, or refused before the store)
    commit: int | None  # when the store applies it (it may be "in progress" from arrival until then)
    reply: int | None  # when the answer reaches the client (None: lost on the way back)
    fault: str | None = None  # "throttled" (before the store), "5xx-before", "5xx-after" (applied, then an error)
    answer: tuple[str, int | None] | None = None  # what the store answered: ("ok", v), ("sold-out", None), ...


@dataclass(kw_only=True)
class _Planned:
    worker: str
    id: int
    kind: OpKind
    amount: int
    invoke: int
    attempts: list[_Attempt] = field(default_factory=list)
    answered: _Attempt | None = None  # the attempt whose answer the client took
    completed: int | None = None
    returns_value: bool = True
    # the truth, as the store knows it
    status: str = "new"  # new, in-progress, done (applied, or sold out), fenced
    result: tuple[str, int | None] | None = None  # the store's answer to it, kept for retries
    first_value: int | None = None  # the value after its first application (None: never applied)
    applied_at: int | None = None  # when


@dataclass(frozen=True, kw_only=True)
class Profile:
    """How one random history is made."""

    mode: Literal["counter", "amount", "seats"]
    processes: int
    ops: int
    reads: float  # the chance that an op is a read
    retries: bool
    resolve: float  # the chance that an uncertain op is looked up after the run
    fence: bool  # the lookup fences the key: what has not landed by then never will
    values: float  # the chance that an acknowledged write returns its value
    timeout: int
    bug: str | None  # how the service (or its client) is broken, if it is
    mutation: str | None  # what is changed in a correct history, if anything


BUGS = ("lost-update", "stale-read", "dirty-read", "double-apply", "applied-after-fence", "refusal-as-fail",
        "timeout-as-fail", "replayed-write", "stale-value")
SUBTLE = {"read-ahead": 3, "read-behind": 2, "read-future": 3, "value-into-gap": 3, "time": 2, "clock-skew": 2}
_ARRIVE, _COMMIT, _REPLAY, _LOOKUP = 0, 1, 2, 3  # at one time and tie-break: an arrival before its commit
MUTATIONS = ("value", "swap-values", "final", "read", "time", "clock-skew", "outcome", "resolution", "drop-op",
             "read-ahead", "read-behind", "read-future", "value-into-gap")


def random_profile(rng: random.Random) -> Profile:
    mode = rng.choices(("counter", "amount", "seats"), weights=(60, 20, 20))[0]
    kind = rng.choices(("correct", "bug", "mutation"), weights=(35, 30, 35))[0]
    bug = rng.choice(BUGS) if kind == "bug" else None
    # the crude changes are caught by totals alone; the subtle ones (within every count) by order only
    mutation = rng.choices(MUTATIONS, weights=[SUBTLE.get(m, 1) for m in MUTATIONS])[0] if kind == "mutation" else None
    p = Profile(
        mode=mode,  # type: ignore[arg-type]
        processes=rng.randint(1, 4),
        ops=rng.randint(1, 10),
        reads=rng.choice((0.0, 0.0, 0.2, 0.35)),
        retries=rng.random() < 0.45,
        resolve=rng.choice((0.0, 0.0, 0.5, 0.9)),
        fence=rng.random() < 0.3,
        values=1.0 if rng.random() < 0.85 else rng.choice((0.0, 0.5)),
        timeout=rng.randint(4, 16),
        bug=bug,
        mutation=mutation,
    )
    # a bug (or a change) shows only where its conditions arise: make them likely
    if bug in ("stale-read", "dirty-read") or (mutation or "").startswith("read"):
        p = replace(p, reads=rng.choice((0.3, 0.5)))
    elif bug in ("double-apply", "refusal-as-fail"):
        p = replace(p, retries=True, timeout=rng.randint(3, 8))
    elif bug == "applied-after-fence":
        p = replace(p, fence=True, resolve=0.9, timeout=rng.randint(3, 8))
    elif bug == "timeout-as-fail":
        p = replace(p, timeout=rng.randint(3, 8))
    return p


def _delay(rng: random.Random) -> int:
    """A one-way network delay in µs: mostly short, sometimes long, now and then beyond any timeout."""
    x = rng.random()
    if x < 0.72:
        return rng.randint(0, 2)
    if x < 0.92:
        return rng.randint(3, 10)
    return rng.randint(12, 40)


def _attempt(rng: random.Random, sent: int, p: Profile, read: bool) -> _Attempt:
    x = rng.random()
    if not read and x < 0.04:  # throttled before the store: a quick refusal, nothing applied
        return _Attempt(sent=sent, arrives=None, commit=None, reply=sent + rng.randint(0, 1), fault="throttled")
    if x < 0.09:  # the request is lost
        return _Attempt(sent=sent, arrives=None, commit=None, reply=None)
    arrives = sent + _delay(rng)
    rmw = p.bug == "lost-update"
    # how long the store takes to apply it (in progress meanwhile): mostly at once, now and then stuck
    work = 0 if read else (rng.choice((0, 1, 2, 3)) if rmw else rng.choice((0, 0, 0, 1, 2)))
    if p.bug == "dirty-read" and not read:
        work = rng.randint(1, 10)
    if not read and rng.random() < 0.08:
        work = rng.randint(5, 15)
    commit = arrives + work
    fault = None
    if not read:
        y = rng.random()
        fault = "5xx-before" if y < 0.03 else "5xx-after" if y < 0.06 else None
        if fault == "5xx-before":
            commit = arrives
    reply = None if rng.random() < 0.06 else commit + _delay(rng)
    return _Attempt(sent=sent, arrives=arrives, commit=commit, reply=reply, fault=fault)


def _plan(rng: random.Random, p: Profile) -> list[_Planned]:
    """Every op's requests in time: each process sends its next op once the last one was answered or it
    gave up on it; a process may stop with its last op still out. (When requests land does not depend on
    the counter's values, so the store runs over them afterwards.)"""
    workers = [rng.randrange(p.processes) for _ in range(p.ops)]
    planned: list[_Planned] = []
    for w in sorted(set(workers)):
        t = rng.randint(0, 6)
        count = workers.count(w)
        for j in range(count):
            read = rng.random() < p.reads
            kind: OpKind = "read" if read else ("decr_if_positive" if p.mode == "seats" else "incr")
            amount = 0 if read else (-1 if p.mode == "seats" else (rng.randint(1, 3) if p.mode == "amount" else 1))
            o = _Planned(worker=f"w{w}", id=j, kind=kind, amount=amount, invoke=t,
                         returns_value=rng.random() < p.values)
            never = j == count - 1 and rng.random() < 0.25  # the process stops while it is out
            tries = rng.randint(2, 3) if p.retries and not read else 1
            sent = t
            for k in range(tries):
                a = _attempt(rng, sent, p, read)
                o.attempts.append(a)
                if never:
                    break
                if a.reply is not None and a.reply <= sent + p.timeout:  # answered in time
                    o.answered, o.completed = a, a.reply
                    if a.fault is None or k + 1 == tries:
                        break
                    sent = a.reply + rng.randint(0, 1)  # an error: try again
                    continue
                o.answered, o.completed = None, sent + p.timeout  # gave up on it
                sent = o.completed + rng.randint(0, 2)
            if never:
                o.answered, o.completed = None, None
            planned.append(o)
            t = (o.completed if o.completed is not None else t) + rng.choice((0, 0, 1, 2, 5))
    return planned


def _store(rng: random.Random, p: Profile, planned: list[_Planned], initial: int,
           timeline: list[tuple[int, int]]) -> tuple[int, set[int]]:
    """Runs the store over every request in arrival order: an atomic counter whose idempotency keys
    apply a retried op once (a retry of an op in progress gets 409), unless the profile's bug says
    otherwise. Returns the final value (read once everything has landed) and the ops the lookup fenced."""
    events: list[tuple[int, float, int, int, int]] = []  # (time, tie-break, phase, op, attempt)
    for i, o in enumerate(planned):
        for k, a in enumerate(o.attempts):
            if a.arrives is not None:
                tie = rng.random()
                events.append((a.arrives, tie, _ARRIVE, i, k))
                if o.kind != "read":
                    events.append((a.commit if a.commit is not None else a.arrives, tie, _COMMIT, i, k))
    ends = [o.completed for o in planned if o.completed is not None] + [o.invoke for o in planned]
    if p.fence and p.resolve:  # the lookup, after every process has stopped
        events.append((max(ends, default=0) + 1, 0.0, _LOOKUP, -1, -1))
    heapq.heapify(events)
    state = initial
    seen: list[int] = [initial]  # every value the counter held, for stale reads
    fenced: set[int] = set()
    idempotent = p.bug != "double-apply"
    claims: dict[tuple[int, int], int] = {}  # (op, attempt) applying -> what a read-modify-write store read
    replayed = False
    while events:
        at, _tie, phase, i, k = heapq.heappop(events)
        if phase == _LOOKUP:  # what has not started by now is fenced off
            fenced = {j for j, o in enumerate(planned) if o.kind != "read" and o.status == "new"}
            for j in fenced:
                planned[j].status = "fenced"
            continue
        o = planned[i]
        if o.kind == "read":
            lag = rng.randint(1, 2) if p.bug == "stale-read" and rng.random() < 0.6 else 0
            value = seen[max(0, len(seen) - 1 - lag)]
            if p.bug == "dirty-read":  # it sees the writes in progress too (some of which will abort)
                value += sum(planned[j].amount for j, _ in claims)
            o.attempts[k].answer = ("ok", value)
            continue
        if phase == _REPLAY:  # the store applies a write a second time, answering nobody
            if not (o.kind == "decr_if_positive" and state <= 0):
                state += o.amount
                seen.append(state)
                timeline.append((at, state))
            continue
        a = o.attempts[k]
        if phase == _ARRIVE:
            if a.fault == "5xx-before":
                a.answer = ("5xx", None)
            elif o.status == "fenced" and p.bug != "applied-after-fence":
                a.answer = ("gone", None)  # the fence refuses it: never applied
            elif idempotent and o.status == "done":
                a.answer = o.result
            elif idempotent and o.status == "in-progress":
                a.answer = ("in-progress", None)
            else:
                if o.status != "done":
                    o.status = "in-progress"
                claims[(i, k)] = state
            continue
        if (i, k) not in claims:  # the commit of an attempt that applied nothing
            continue
        base = claims.pop((i, k)) if p.bug == "lost-update" else state
        if p.bug == "dirty-read" and rng.random() < 0.4:  # the transaction aborts: nothing applied
            claims.pop((i, k), None)
            o.status = "new"
            a.answer = ("5xx", None)
            continue
        if o.kind == "decr_if_positive" and base <= 0:
            result: tuple[str, int | None] = ("sold-out", None)
        else:
            state = base + o.amount
            seen.append(state)
            timeline.append((at, state))
            result = ("ok", state)
            if o.first_value is None:
                o.first_value, o.applied_at = state, at
            if p.bug == "replayed-write" and not replayed and rng.random() < 0.5:
                replayed = True
                heapq.heappush(events, (at + rng.randint(0, 20), rng.random(), _REPLAY, i, k))
        claims.pop((i, k), None)
        o.status, o.result = "done", result
        a.answer = ("5xx", None) if a.fault == "5xx-after" else result
    return state, fenced


def _record(rng: random.Random, p: Profile, o: _Planned) -> Op:
    """What the client wrote down for one op."""
    tries = len(o.attempts)
    if o.completed is None:
        return Op(o.worker, o.id, KEY, o.kind, o.amount, Outcome.INDETERMINATE, None, None, o.invoke, None, tries)
    a = o.answered
    outcome, value, error = Outcome.INDETERMINATE, None, "timeout"
    if a is not None:
        answer = a.answer
        # an earlier attempt was left uncertain (a throttled one certainly did nothing)
        uncertain_before = any(b is not a and b.fault != "throttled" for b in o.attempts)
        if a.fault == "throttled":
            outcome, error = (Outcome.INDETERMINATE, "429 after an uncertain attempt") if uncertain_before else (
                Outcome.FAIL, "429 throttled")
            if uncertain_before and p.bug == "refusal-as-fail":
                outcome = Outcome.FAIL
        elif answer is None:
            raise AssertionError(f"an answered attempt without an answer: {o}")
        elif answer[0] == "ok":
            outcome, error = Outcome.OK, None
            value = answer[1] if (o.kind == "read" or o.returns_value) else None
        elif answer[0] == "sold-out":
            outcome, error = Outcome.FAIL, "409 sold out"
        elif answer[0] == "in-progress":
            outcome, error = Outcome.INDETERMINATE, "409 in progress"
            if p.bug == "refusal-as-fail":
                outcome = Outcome.FAIL
        elif answer[0] == "gone":
            outcome, error = Outcome.FAIL, "410 fenced"
        else:
            outcome, error = Outcome.INDETERMINATE, "503"
    elif p.bug == "timeout-as-fail" and rng.random() < 0.7:
        outcome, error = Outcome.FAIL, "timeout"
    if outcome is Outcome.OK and value is not None and p.bug == "stale-value" and o.kind != "read" \
            and rng.random() < 0.4:
        value -= o.amount  # a cache answers with the value before it was updated
    return Op(o.worker, o.id, KEY, o.kind, o.amount, outcome, value, error, o.invoke, o.completed, tries)


def random_history(rng: random.Random, profile: Profile | None = None) -> History:
    """One small history: a correct store and client, a broken one, or a correct history with one
    thing changed (``History.story`` says which)."""
    p = profile or random_profile(rng)
    initial = rng.randint(0, 4) if p.mode == "seats" else rng.randint(-2, 5)
    planned = _plan(rng, p)
    timeline: list[tuple[int, int]] = []
    final, fenced = _store(rng, p, planned, initial, timeline)
    ops = [_record(rng, p, o) for o in planned]
    resolved: list[tuple[str, int, int | None]] = []
    for j, (o, r) in enumerate(zip(planned, ops, strict=True)):
        if r.kind == "read" or r.outcome is not Outcome.INDETERMINATE or rng.random() >= p.resolve:
            continue
        if j in fenced:
            resolved.append((o.worker, o.id, None))  # fenced: it never applies (unless the fence is broken)
        elif p.fence and o.status == "in-progress":
            continue  # still being applied when looked up: no answer
        else:
            resolved.append((o.worker, o.id, o.first_value))
    story = f"bug:{p.bug}" if p.bug else "correct"
    h = History(ops=tuple(ops), initial=initial, final=final, resolved=tuple(resolved), story=story,
                features=_features(planned, ops, resolved), timeline=tuple(timeline))
    if p.mutation:
        h = mutate(rng, h, p.mutation)
    return h


def _features(planned: list[_Planned], ops: list[Op], resolved: list[tuple[str, int, int | None]]) -> frozenset[str]:
    """What happened in a history, for the coverage of the generator."""
    out = set()
    late = set()
    for o, r in zip(planned, ops, strict=True):
        if r.completed_us is None:
            out.add("never-completed")
            if o.applied_at is not None:
                out.add("never-completed-applied")
        elif r.outcome is Outcome.INDETERMINATE and o.applied_at is not None and o.applied_at > r.completed_us:
            out.add("late-landing")  # applied after its client gave up
            late.add((o.worker, o.id))
        if r.outcome is Outcome.OK and r.kind != "read" and o.applied_at is not None \
                and r.completed_us is not None and r.completed_us - o.applied_at >= 5:
            out.add("slow-ack")  # applied early, acknowledged much later
        if r.attempts > 1:
            out.add("retry")
        if r.error == "409 in progress":
            out.add("409-in-progress")
        if r.error and r.error.startswith("429") and r.outcome is Outcome.INDETERMINATE:
            out.add("429-after-uncertain")
        if r.kind == "read" and r.outcome is Outcome.OK:
            out.add("read")
    if any(v is not None for _, _, v in resolved):
        out.add("resolved-applied")
    if any(v is None for _, _, v in resolved):
        out.add("resolved-not-applied")
    if any((w, i) in late and v is not None for w, i, v in resolved):
        out.add("resolved-applied-late")
    stamps = Counter(t for r in ops for t in (r.invoked_us, r.completed_us) if t is not None)
    if any(n > 1 for n in stamps.values()):
        out.add("equal-times")
    return frozenset(out)


def mutate(rng: random.Random, h: History, how: str) -> History:
    """The history with one thing changed (it may still be linearizable: the oracle says)."""
    ops = list(h.ops)
    writes = [i for i, o in enumerate(ops) if o.kind != "read"]
    ok_values = [i for i in writes if ops[i].outcome is Outcome.OK and ops[i].value is not None]
    reads = [i for i, o in enumerate(ops) if o.kind == "read" and o.outcome is Outcome.OK]
    final, resolved = h.final, list(h.resolved)
    if how == "value" and ok_values:
        i = rng.choice(ok_values)
        ops[i] = replace(ops[i], value=ops[i].value + rng.choice((-2, -1, 1, 2)))  # type: ignore[operator]
    elif how == "swap-values" and len(ok_values) >= 2:
        i, j = rng.sample(ok_values, 2)
        ops[i], ops[j] = replace(ops[i], value=ops[j].value), replace(ops[j], value=ops[i].value)
    elif how == "read" and reads:
        i = rng.choice(reads)
        ops[i] = replace(ops[i], value=ops[i].value + rng.choice((-2, -1, 1, 1, 2, 3)))  # type: ignore[operator]
    elif how in ("read-ahead", "read-behind") and reads:  # a lie no count of the writes around it refutes
        i = rng.choice(reads)
        r = ops[i]
        end = NEVER if r.completed_us is None else r.completed_us
        sent = [o for o in ops if o.kind != "read" and o.outcome is not Outcome.FAIL and o.invoked_us <= end]
        done = [o for o in ops if o.kind != "read" and o.outcome is Outcome.OK and o.completed_us is not None
                and o.completed_us < r.invoked_us]
        lo = h.initial + sum(o.amount for o in done if o.amount > 0) + sum(o.amount for o in sent if o.amount < 0)
        hi = h.initial + sum(o.amount for o in done if o.amount < 0) + sum(o.amount for o in sent if o.amount > 0)
        v = r.value or 0
        choices = range(v + 1, hi + 1) if how == "read-ahead" else range(lo, v)
        ops[i] = replace(r, value=rng.choice(choices) if choices else v + (1 if how == "read-ahead" else -1))
    elif how == "read-future" and reads and h.timeline:  # a read that saw a value the counter took only later
        i = rng.choice(reads)
        r = ops[i]
        later = [v for t, v in h.timeline if r.completed_us is not None and t > r.completed_us and v != r.value]
        ops[i] = replace(r, value=rng.choice(later) if later else (r.value or 0) + 1)
    elif how == "value-into-gap" and ok_values:  # an acknowledged op given a value no acknowledged op returned
        taken = {ops[j].value for j in ok_values} | {v for _, _, v in resolved if v is not None}
        step = -1 if h.seats else 1
        walk = range(h.initial + step, final + step, step)
        gaps = [v for v in walk if v not in taken]
        i = rng.choice(ok_values)
        ops[i] = replace(ops[i], value=rng.choice(gaps) if gaps else ops[i].value + rng.choice((-1, 1)))  # type: ignore[operator]
    elif how == "time" and ops:  # one op placed elsewhere in time (both ends moved)
        i = rng.randrange(len(ops))
        ops[i] = _shifted(ops[i], rng.choice((-1, 1)) * rng.randint(3, 25))
    elif how == "clock-skew" and len({o.worker for o in ops}) > 1:  # one process's clock off
        w = rng.choice(sorted({o.worker for o in ops}))
        d = rng.choice((-1, 1)) * rng.randint(2, 20)
        ops = [_shifted(o, d) if o.worker == w else o for o in ops]
    elif how == "outcome" and writes:
        i = rng.choice(writes)
        o = ops[i]
        if o.outcome is Outcome.FAIL and o.completed_us is not None:
            ops[i] = replace(o, outcome=Outcome.OK, value=final if rng.random() < 0.5 else None)
        else:
            ops[i] = replace(o, outcome=Outcome.FAIL, value=None)
    elif how == "resolution" and resolved:
        j = rng.randrange(len(resolved))
        w, op_id, value = resolved[j]
        resolved[j] = (w, op_id, None if value is not None and rng.random() < 0.5 else
                       (value if value is not None else final) + rng.choice((-1, 0, 1)))
    elif how == "drop-op" and len(ops) > 1:
        dropped = ops.pop(rng.randrange(len(ops)))
        resolved = [r for r in resolved if (r[0], r[1]) != (dropped.worker, dropped.id)]
    else:  # nothing of that kind to change: the final value, then
        how = "final"
        final += rng.choice((-1, 1))
    return History(ops=tuple(ops), initial=h.initial, final=final, resolved=tuple(resolved),
                   story=f"mutation:{how}", features=h.features, timeline=h.timeline)


def _shifted(o: Op, d: int) -> Op:
    d = max(d, -o.invoked_us)  # times stay at or after zero
    return replace(o, invoked_us=o.invoked_us + d, completed_us=None if o.completed_us is None else o.completed_us + d)


def history_at(seed: int, i: int) -> History:
    """The ``i``-th history of a seed: each one reproducible on its own."""
    return random_history(random.Random(seed * 1_000_003 + i))


# --- counterbench's checks against the oracle ----------------------------------------------------

def judge(h: History) -> tuple[str, tuple[str, ...]]:
    """counterbench's verdict on the history by the checks its workload runs by default (the amount
    workload's leave out gaps, which is for ops of one), and the checks that failed it."""
    workload = "seats" if h.seats else "amount" if h.domain == "amounts" else "counter"
    r = run_checks(checks=default_checks(workload), ops=list(h.ops), initial={KEY: h.initial},
                   final={KEY: h.final},
                   history=Completeness(complete=True, op_signs=frozenset({-1} if h.seats else {1})),
                   returns="after", resolutions=h.resolutions())
    return r.verdict, tuple(sorted({c.name for c in r.checks if c.valid is False}))


def category(h: History, accepted: bool, verdict: str, failed: tuple[str, ...]) -> str | None:
    """How the checks disagree with the oracle (None: they do not, or not against a rule)."""
    if accepted and verdict == "fail":
        return f"false alarm [{h.domain}] by {'+'.join(failed)}"
    if not accepted and verdict != "fail" and h.domain == COMPLETE_DOMAIN:
        return f"missed [{h.domain}] {verdict}: {h.story}"
    return None


@dataclass
class Comparison:
    """Verdicts of many histories, by (domain, oracle, checks), with a few examples of each disagreement."""

    histories: int = 0
    table: Counter[tuple[str, bool, str]] = field(default_factory=Counter)
    stories: Counter[tuple[str, bool]] = field(default_factory=Counter)
    disagreements: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[History]] = field(default_factory=dict)
    oracle_s: float = 0.0
    checks_s: float = 0.0
    generate_s: float = 0.0

    def add(self, other: Comparison) -> None:
        self.histories += other.histories
        self.table.update(other.table)
        self.stories.update(other.stories)
        self.disagreements.update(other.disagreements)
        for k, v in other.examples.items():
            self.examples.setdefault(k, []).extend(v[: 3 - len(self.examples.get(k, []))])
        self.oracle_s += other.oracle_s
        self.checks_s += other.checks_s
        self.generate_s += other.generate_s

    def false_alarms(self) -> dict[str, int]:
        return {k: n for k, n in self.disagreements.items() if k.startswith("false alarm")}

    def misses(self) -> dict[str, int]:
        return {k: n for k, n in self.disagreements.items() if k.startswith("missed")}

    def describe(self, which: Iterable[str] | None = None, *, shrunk: bool = True) -> str:
        """The disagreements (all, or ``which``), each with its count and one (shrunk) example."""
        keys = sorted(self.disagreements if which is None else which, key=lambda k: -self.disagreements[k])
        parts = []
        for k in keys:
            h = self.examples[k][0]
            if shrunk:
                h = shrink(h, lambda g, k=k: _category_of(g) == k)  # type: ignore[misc]
            parts.append(f"{self.disagreements[k]} x {k}\n{h.literal()}\n# oracle: {linearize(h).explain()}")
        return "\n\n".join(parts)

    def summary(self) -> str:
        lines = [f"{self.histories} histories; oracle {self.oracle_s:.1f} s, checks {self.checks_s:.1f} s, "
                 f"generator {self.generate_s:.1f} s (CPU, summed over processes)",
                 f"{'domain':<18} {'oracle':<10} {'pass':>7} {'unknown':>8} {'fail':>7}"]
        for domain in ("unit-with-values", "amounts", "without-values", "seats"):
            for accepted in (True, False):
                row = [self.table[(domain, accepted, v)] for v in ("pass", "unknown", "fail")]
                lines.append(f"{domain:<18} {'accepts' if accepted else 'rejects':<10} "
                             f"{row[0]:>7} {row[1]:>8} {row[2]:>7}")
        lines.append("stories (accepted / rejected by the oracle):")
        for story in sorted({s for s, _ in self.stories}):
            lines.append(f"  {story:<28} {self.stories[(story, True)]:>6} / {self.stories[(story, False)]:>6}")
        return "\n".join(lines)


def _category_of(h: History) -> str | None:
    try:
        accepted = linearizable(h)
    except ValueError:
        return None
    return category(h, accepted, *judge(h))


def compare(histories: Iterable[History]) -> Comparison:
    out = Comparison()
    for h in histories:
        t0 = time.process_time()
        accepted = linearizable(h)
        t1 = time.process_time()
        verdict, failed = judge(h)
        t2 = time.process_time()
        out.oracle_s += t1 - t0
        out.checks_s += t2 - t1
        out.histories += 1
        out.table[(h.domain, accepted, verdict)] += 1
        out.stories[(h.story, accepted)] += 1
        k = category(h, accepted, verdict, failed)
        if k is not None:
            out.disagreements[k] += 1
            ex = out.examples.setdefault(k, [])
            if len(ex) < 3:
                ex.append(h)
    return out


def compare_range(args: tuple[int, int, int]) -> Comparison:
    """Histories ``start`` to ``stop`` of ``seed`` (one task of a process pool)."""
    seed, start, stop = args
    t0 = time.process_time()
    histories = [history_at(seed, i) for i in range(start, stop)]
    generated = time.process_time() - t0
    out = compare(histories)
    out.generate_s += generated
    return out


def compare_many(n: int, *, seed: int = 21, processes: int = 2, chunk: int = 2_500) -> Comparison:
    """``n`` histories compared, in ``processes`` forked processes (1: here)."""
    tasks = [(seed, s, min(n, s + chunk)) for s in range(0, n, chunk)]
    total = Comparison()
    if processes <= 1:
        for t in tasks:
            total.add(compare_range(t))
        return total
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(processes) as pool:
        for part in pool.imap_unordered(compare_range, tasks):
            total.add(part)
    return total


# --- shrinking an example ----------------------------------------------------------------------------

def shrink(h: History, keep: Callable[[History], bool], *, rounds: int = 60) -> History:
    """A smaller history for which ``keep`` still holds: ops and resolutions dropped, retries and errors
    forgotten, times pulled together and values moved toward zero, while it keeps holding."""
    for _ in range(rounds):
        smaller = next((g for g in _smaller(h) if keep(g)), None)
        if smaller is None:
            return h
        h = smaller
    return h


def _smaller(h: History) -> Iterable[History]:
    ops = list(h.ops)
    for i in range(len(ops)):
        o = ops[i]
        rest = tuple(ops[:i] + ops[i + 1:])
        yield replace(h, ops=rest, resolved=tuple(r for r in h.resolved if (r[0], r[1]) != (o.worker, o.id)))
    for j in range(len(h.resolved)):
        yield replace(h, resolved=h.resolved[:j] + h.resolved[j + 1:])
    if any(o.attempts != 1 or o.error is not None for o in ops):
        yield replace(h, ops=tuple(replace(o, attempts=1, error=None) for o in ops))
    # times to their ranks (their order and ties kept)
    stamps = sorted({t for o in ops for t in (o.invoked_us, o.completed_us) if t is not None})
    rank = {t: r for r, t in enumerate(stamps)}
    if any(rank[t] != t for t in stamps):
        yield replace(h, ops=tuple(replace(o, invoked_us=rank[o.invoked_us],
                                           completed_us=None if o.completed_us is None else rank[o.completed_us])
                                   for o in ops))
    for i, o in enumerate(ops):  # one op's completion pulled in (every step makes the times' sum smaller)
        if o.completed_us is not None and o.completed_us > o.invoked_us:
            yield replace(h, ops=(*ops[:i], replace(o, completed_us=o.completed_us - 1), *ops[i + 1:]))
    if h.initial != 0:  # every value shifted with the initial one
        d = -h.initial
        yield History(ops=tuple(replace(o, value=None if o.value is None else o.value + d) for o in ops),
                      initial=0, final=h.final + d, story=h.story,
                      resolved=tuple((w, i, None if v is None else v + d) for w, i, v in h.resolved))
    # workers renamed in order of appearance, ids from zero
    names = {w: f"w{n}" for n, w in enumerate(dict.fromkeys(o.worker for o in ops))}
    ids: dict[tuple[str, int], int] = {}
    for o in ops:
        ids[(o.worker, o.id)] = sum(1 for (w, _) in ids if w == o.worker)
    if any(names[o.worker] != o.worker or ids[(o.worker, o.id)] != o.id for o in ops):
        yield replace(h, ops=tuple(replace(o, worker=names[o.worker], id=ids[(o.worker, o.id)]) for o in ops),
                      resolved=tuple((names[w], ids[(w, i)], v) for w, i, v in h.resolved if (w, i) in ids))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    c = compare_many(args.n, seed=args.seed, processes=args.processes)
    wall = time.perf_counter() - t0
    print(c.summary())
    print(f"wall {wall:.1f} s")
    print()
    print(c.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
