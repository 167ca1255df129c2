"""Targets: one module per backend, and a registry (``harness.targets.registry``).

A backend module holds everything counterbench knows of one kind of target, and ends with its
``BACKEND``: the scenario's ``target:`` model, an admin (set up the initial state, read the final
state strongly consistently; outside the load), an op client (one per load user, built in the load
process; never raises for an op, it returns a classified Completion), how to start it locally
(``harness/stack/``), and the keys of a run. Adding a backend is one module here (plus its server
in stack/) and one line in the registry.
"""

from __future__ import annotations

import functools
import random
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from harness.core.ops import Completion, Outcome
from harness.workloads import key_names

if TYPE_CHECKING:
    from harness.core.models import ScenarioSpec, TargetConfig
    from harness.stack.process import LocalServer

T = TypeVar("T")

# (method, path, body, headers) -> (status, headers, body); raises on transport errors
Transport = Callable[[str, str, bytes | None, Mapping[str, str]], tuple[int, Mapping[str, str], bytes]]


def retrying(attempt: Callable[[], Completion], retries: int, *, retry: Callable[[Completion], bool],
             exactly_once: bool = False) -> Completion:
    """An op sent again while ``retry`` says its answer asks for it, up to ``retries`` more times.

    A retried op is what its last attempt says only if no earlier attempt can have been applied
    (each was a refusal: ``fail``). After an uncertain attempt it is ``ok`` only if ``exactly_once``
    (an idempotency key the target honours makes the repeats one op) and the last attempt was
    acknowledged (the key's first answer, replayed). A refusal then -- 409 "in progress" while the
    first attempt still works, 429, a connection refused -- proves only that *that* attempt did not
    apply: the op is ``indeterminate``, with its attempt count, for the lookup to resolve."""
    done = attempt()
    refused: list[bool] = []
    while retry(done) and len(refused) < retries:
        refused.append(done.outcome is Outcome.FAIL)
        done = attempt()
    attempts = len(refused) + 1
    if attempts == 1:
        return done
    if (all(refused) and done.outcome is not Outcome.INDETERMINATE) or (exactly_once and done.outcome is Outcome.OK):
        return done._replace(attempts=attempts)
    reason = f"{attempts} attempts; last: {done.outcome.value}{': ' + done.error if done.error else ''}"
    return Completion(Outcome.INDETERMINATE, None, reason[:200], attempts)


def app_work(gap: float) -> None:
    """What an unsafe variant does between its read and its write: ``gap`` seconds on average,
    varying as real work does (a fixed pause locks closed-loop users into waves, which can happen
    to end exactly on zero and hide the race). Cooperative under gevent: other users run meanwhile."""
    time.sleep(gap * (0.5 + random.random()))


class TargetAdmin(Protocol):
    def setup(self, initial: Mapping[str, int]) -> Mapping[str, int] | None:
        """Set each key to its initial value; returns the values the keys start from when they are not
        those (a target without a setter reports what it holds), else None."""
        ...

    def read(self, keys: Sequence[str]) -> dict[str, int | None]: ...

    def close(self) -> None: ...


class OpClient(Protocol):
    """An op client may say ``tokens = True`` (none: False): it sends each op's idempotency key
    (``token``), so the session gives the op its id before it is sent. Others ignore ``token``."""

    def incr(self, key: str, amount: int, *, token: str | None = None) -> Completion: ...

    def decr_if_positive(self, key: str, *, token: str | None = None) -> Completion: ...

    def read(self, key: str) -> Completion:
        """The counter's value now, through the target's read path (``workload.reads``)."""
        ...

    def close(self) -> None: ...


class OpContext(Protocol):
    """What the load process lends a backend to build an op client (``harness.load.context``)."""

    @property
    def deadlines(self) -> Deadlines | None: ...

    def http(self, base_url: str, *, timeout: float) -> Transport:
        """A keep-alive HTTP transport to ``base_url`` (its path and query go on every request)."""
        ...

    def shared(self, name: str, build: Callable[[], T]) -> T:
        """One ``build()`` per load process (a heavy client the users share)."""
        ...


@dataclass(frozen=True, kw_only=True)
class LocalTarget:
    """A target counterbench started on 127.0.0.1 (stopped when the run's ExitStack closes)."""

    scenario: ScenarioSpec  # now pointing at what was started (an API's item URL, say)
    url: str
    servers: Mapping[str, LocalServer | None]  # by role, for the nemesis: "target", "store"


def workload_keys(scenario: ScenarioSpec, run_id: str) -> list[str]:
    """A run's keys as the workload names them (most backends)."""
    return key_names(scenario.workload, run_id)


class Resolver(Protocol):
    """After the run, by an op's idempotency key (``harness.core.ops.op_token``): was it applied?"""

    def resolve(self, token: str) -> int | None:
        """The value the op left (applied), or None: not applied, and never will be from now on.
        Raises TargetError when it cannot tell."""
        ...

    def close(self) -> None: ...


def no_resolver(scenario: ScenarioSpec, url: str) -> Resolver | None:
    return None


@dataclass(frozen=True, kw_only=True)
class Backend:
    """One kind of target, as the registry lists it."""

    kind: str
    config: type[TargetConfig]  # the scenario's ``target:`` model (``kind`` is its Literal)
    admin: Callable[[ScenarioSpec, str | None], TargetAdmin]
    ops: Callable[[ScenarioSpec, str, OpContext], OpClient]
    local: Callable[[ScenarioSpec, ExitStack], LocalTarget]
    keys: Callable[[ScenarioSpec, str], list[str]] = workload_keys
    # resolves uncertain ops after the run by their idempotency keys (None when the target cannot)
    resolver: Callable[[ScenarioSpec, str], Resolver | None] = no_resolver


class Deadlines(Protocol):
    """Times out a blocked call from outside (the load side's one watchdog per process) instead of
    a timer per socket wait; without one, op clients use socket timeouts."""

    def arm(self, timeout: float) -> None: ...

    def disarm(self) -> None: ...


def readiness_wait(sock: socket.socket) -> Callable[[], None] | None:
    """Under gevent, a call that parks until ``sock`` is readable, without trying a read first.

    A gevent read that finds nothing fails a syscall and raises EWOULDBLOCK before it parks the
    greenlet; right after a request is sent its answer is never there yet, and that failed read
    was about a third of a Redis round trip's CPU. gevent's sockets keep that wait (``_wait``)
    and their read watcher (``_read_event``) as private attributes: without them (a plain
    socket, another gevent) this is None and reads simply block.
    """
    wait = getattr(sock, "_wait", None)
    event = getattr(sock, "_read_event", None)
    if wait is None or event is None:
        return None
    return functools.partial(wait, event)
