"""Targets: one module per store. Each has an admin (set up the initial state, read
the final state strongly consistently; runs outside the load) and an op client
(one per load user; never raises for an op, it returns a classified Completion)."""

from __future__ import annotations

import functools
import random
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from harness.ops import Completion


def app_work(gap: float) -> None:
    """What an unsafe variant does between its read and its write: ``gap`` seconds on average,
    varying as real work does (a fixed pause locks closed-loop users into waves, which can happen
    to end exactly on zero and hide the race). Cooperative under gevent: other users run meanwhile."""
    time.sleep(gap * (0.5 + random.random()))


class TargetAdmin(Protocol):
    def setup(self, initial: Mapping[str, int]) -> None: ...

    def read(self, keys: Sequence[str]) -> dict[str, int | None]: ...

    def close(self) -> None: ...


class OpClient(Protocol):
    def incr(self, key: str, amount: int) -> Completion: ...

    def decr_if_positive(self, key: str) -> Completion: ...

    def close(self) -> None: ...


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
