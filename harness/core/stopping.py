"""Stopping cleanly: every child in a process group of its own, and SIGTERM as the end of the duration.

What CI timeouts, systemd and Kubernetes send is SIGTERM; a person at a terminal presses Ctrl-C.
While ``counterbench run`` or ``worker`` runs (``StopSignals``):

    first SIGTERM or SIGINT   ``requested`` is set and the registered actions run: the load process
                              gets SIGTERM, which Locust treats as the end of the run (users stop
                              and drain, histories get their footers). counterbench then reads the
                              final state, judges, writes verdict.json, stops every server it
                              started and exits with the verdict's code. A run whose load had not
                              started yet starts none.
    a second one              every child's process group is SIGKILLed at once, then
                              ``Interrupted`` unwinds the stack (temporary folders are removed).

Children are started by ``spawn``: each leads a new session, so a terminal's Ctrl-C reaches only
counterbench (which decides), and a group signal reaches the whole of a child: uvicorn's workers,
PostgreSQL's backends, Locust's forked workers. No process is ever found by name.

A SIGKILLed counterbench handles nothing: for that, ``spawn`` also tells the reaper
(``harness.stack.reaper``), a small process that SIGKILLs every child's group once counterbench is
gone, whatever ended it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from harness.stack.lifeline import LIFELINE


class Interrupted(BaseException):
    """A second stop signal: every child was killed; unwind without a verdict (not an Exception, so
    nothing on the way catches it by accident)."""


class _Children:
    """Every child process counterbench started and that may still run (leaders of their groups)."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()  # the nemesis thread restarts servers

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs = {p for p in self._procs if p.poll() is None} | {proc}

    def kill_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            kill_group(p, signal.SIGKILL)


CHILDREN = _Children()


def spawn(cmd: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` in a new session (its own process group), registered for a stop at once
    and with the reaper (its environment marked first), which kills it if counterbench dies."""
    popen["env"] = LIFELINE.mark(popen.get("env"))
    proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, start_new_session=True, **popen)
    LIFELINE.watch(proc.pid)
    CHILDREN.add(proc)
    return proc


def forget(proc: subprocess.Popen[bytes]) -> None:
    """The child's group is stopped: the reaper lets it go. Said before waiting for a SIGKILLed child
    where possible (once waited for, its pid is free for another program)."""
    LIFELINE.forget(proc.pid)


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal every process of the child's group (it leads it: its pid is the group's id)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class StopSignals:
    """SIGTERM and SIGINT handling for a command that starts children (a context manager)."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.requested: str | None = None
        self._actions: list[Callable[[], None]] = []
        self._quiet = quiet
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            CHILDREN.kill_all()
            raise Interrupted(f"{name} again: stopped at once; every child process was killed")
        self.requested = name
        if not self._quiet:
            sys.stderr.write(f"\ncounterbench: {name}: stopping the load as at the end of its duration "
                             "(draining, then the final read and the verdict); a second signal stops at once\n")
        for action in list(self._actions):
            action()

    @contextlib.contextmanager
    def on_stop(self, action: Callable[[], None]) -> Iterator[None]:
        """Run ``action`` if a stop is requested while the block runs (at once if it already was)."""
        if self.requested is not None:
            action()
        self._actions.append(action)
        try:
            yield
        finally:
            self._actions.remove(action)
