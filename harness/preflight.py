"""Before the load: one set, one op and one read through the load's own op client and classification,
so a target whose answers cannot be read stops the run with the reason -- before anything is sent at
load rate -- instead of a run of ``indeterminate`` ops and a verdict of ``unknown``.

What it proves is that answers can be *read*, not that the target is correct: an increment the target
acknowledges and loses passes here (finding that is the run's job). It checks, on the run's first key:

1. the key, just set to its initial value, reads back as that value (a ``set`` that does not set is a
   configuration problem, not "an increment nobody sent");
2. one op of the workload (an increment, or a decrement-if-positive for seats) is answered, and the
   answer read -- the value where the contract says it is; an answer that arrived and could not be
   read, or a refusal (404 on the increment's path), stops the run; an answer the load would read as
   the target's state (a timeout, a 5xx, a WAIT short of its replicas) is inconclusive: recorded, said,
   and the run goes on;
3. with ``workload.reads``, one read through the load's read path, likewise;

then sets the key back to its initial value and reads it back again (a target without a setter,
``contract.set: null``, is read instead: the key starts the load where the preflight's op left it).
Each op gets up to ``ATTEMPTS`` tries (a target that answers garbage to one request in twenty is the
run's business, not a setup error). Pure of gevent: an HTTP target is spoken to with urllib.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from harness.config.scenario import Scenario
from harness.core.errors import TargetError
from harness.core.ops import Completion, Outcome
from harness.targets import OpClient, TargetAdmin, Transport
from harness.targets.classify import DYNAMODB_RULES, HTTP_RULES, REDIS_RULES, BadReply
from harness.targets.registry import BACKENDS
from harness.workloads import WORKLOADS

ATTEMPTS = 3
# answers that arrived and could not be read -- what the preflight is for -- by the reasons the classifier
# gives them; a timeout, a 5xx or a WAIT short of its replicas is the target's state, the run's business
_UNREADABLE = tuple(sorted({r.reason for rules in (HTTP_RULES, REDIS_RULES, DYNAMODB_RULES) for r in rules
                            if r.match in (BadReply, "HTTPParseError")}))
_NAMES = {"incr": "increment", "decr_if_positive": "decrement-if-positive", "read": "read"}
T = TypeVar("T")


class PreflightFailed(TargetError):
    """The target's answers to the preflight's set, op or read could not be read: no load was sent."""


class _Context:
    """An ``OpContext`` outside the load: no watchdog, urllib for HTTP, nothing shared across users."""

    deadlines = None

    def __init__(self) -> None:
        self._shared: dict[str, Any] = {}
        self.last: str | None = None  # the last HTTP answer, as a message shows it

    def shared(self, name: str, build: Callable[[], T]) -> T:
        if name not in self._shared:
            self._shared[name] = build()
        return self._shared[name]  # type: ignore[no-any-return]

    def http(self, base_url: str, *, timeout: float) -> Transport:
        from harness.targets.http import BaseUrl, exchange

        base = BaseUrl.parse(base_url)

        def send(method: str, path: str, body: bytes | None,
                 headers: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
            try:
                answer = exchange(base, method, path, body, headers, timeout=timeout)
            except urllib.error.URLError as e:  # no answer: classified as the load's transport errors are
                self.last = None
                raise e.reason if isinstance(e.reason, BaseException) else ConnectionError(str(e.reason)) from e
            self.last = f"{answer[0]} {answer[2][:200]!r}"
            return answer

        return send


def _call(scenario: Scenario, op: str) -> str:
    """How the op is sent, for a message: an HTTP contract's method and path, else the op's name."""
    contract = getattr(scenario.target, "contract", None)
    call = getattr(contract, {"incr": "increment", "decr_if_positive": "decrement"}.get(op, op), None)
    if call is None:
        return f"the {_NAMES.get(op, op)}"
    return f"the {_NAMES.get(op, op)} ({call.method} {call.path})"


def _tries(do: Callable[[], Completion]) -> list[Completion]:
    """Up to ``ATTEMPTS`` tries, until one is answered ok."""
    out = []
    for _ in range(ATTEMPTS):
        done = do()
        out.append(done)
        if done.outcome is Outcome.OK:
            break
    return out


def _readable(tries: list[Completion], what: str, url: str, answer: str | None, *,
              refusal_expected: bool = False) -> dict[str, Any]:
    """What the tries say: an ok, or an answer the load would read as the target's state (a timeout, a 5xx,
    a WAIT short of its replicas: inconclusive, the run's business); raises when the answer arrived and
    could not be read, or the op was refused (``refusal_expected``: a sold-out seat is a refusal read well)."""
    last = tries[-1]
    done: dict[str, Any] = {"sent": what, "tries": len(tries), "value": last.value}
    if last.outcome is Outcome.OK:
        return done
    unread = next((t for t in tries if (t.error or "").startswith(_UNREADABLE)), None)
    if last.outcome is Outcome.INDETERMINATE and unread is None:
        return {**done, "inconclusive": last.error or last.outcome.value}
    if last.outcome is Outcome.FAIL and refusal_expected:
        return {**done, "refused": last.error or last.outcome.value}
    shown = unread or last
    why = shown.error or shown.outcome.value
    if answer is not None and answer.split(" ", 1)[1] not in why:  # the status and body it got, once
        why += f" (the answer: {answer})"
    raise PreflightFailed(f"preflight: {what} at {url} was answered {shown.outcome.value} {len(tries)} times out "
                          f"of {len(tries)}, last: {why}. Its answers cannot be read as the contract says: "
                          "no load was sent (fix the target's contract, or the target)")


def _read_back(admin: TargetAdmin, key: str, want: int, url: str, *, after: str) -> None:
    try:
        got = admin.read([key]).get(key)
    except PreflightFailed:
        raise
    except TargetError as e:  # the read's answer cannot be read either: said as the preflight's finding
        raise PreflightFailed(f"preflight: after {after}, {e}: no load was sent") from e
    if got != want:
        raise PreflightFailed(f"preflight: after {after}, reading {key} at {url} gives {got!r}, not {want}: the set "
                              "does not set (or the read does not read what it set): no load was sent")


def preflight(scenario: Scenario, url: str, *, key: str, initial: int, admin: TargetAdmin,
              shown_url: str) -> dict[str, Any]:
    """The checks above on ``key`` (already set to ``initial``), through a new op client; what was sent
    and answered, for run.json. Raises PreflightFailed with the reason (``shown_url``: as messages show
    the target)."""
    _read_back(admin, key, initial, shown_url, after=f"setting it to {initial}")
    kind = WORKLOADS[scenario.workload.kind]
    ctx = _Context()
    client: OpClient = BACKENDS[scenario.target.kind].ops(scenario, url, ctx)
    try:
        if kind.op == "decr_if_positive":
            tried = _tries(lambda: client.decr_if_positive(key))
        else:
            amount = scenario.workload.amount.min
            tried = _tries(lambda: client.incr(key, amount))
        op = _readable(tried, _call(scenario, kind.op), shown_url, ctx.last,
                       refusal_expected=kind.op == "decr_if_positive" and initial <= 0)
        read = _readable(_tries(lambda: client.read(key)), _call(scenario, "read"), shown_url, ctx.last) \
            if scenario.workload.reads else None
    finally:
        client.close()
    # back to where it started; a target without a setter stays where the op left it, read as the new start
    initial = (admin.setup({key: initial}) or {key: initial})[key]
    _read_back(admin, key, initial, shown_url, after=f"setting it back to {initial}")
    return {"key": key, "op": op, "read": read, "initial": initial}
