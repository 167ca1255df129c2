"""Faults on a local server of the embedded stack (its whole process group)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.core.models import FaultSpec
    from harness.stack.process import LocalServer


class Kill:
    """SIGKILL, as a crash would; restarted (same port, same data folder) when the window heals.
    Without a duration the server stays down."""

    network = False
    needs_duration = False
    replicated = False

    def open(self, on: LocalServer, fault: FaultSpec) -> None:
        on.kill()

    def heal(self, on: LocalServer, fault: FaultSpec) -> None:
        on.restart()


class Pause:
    """SIGSTOP, SIGCONT when the window heals: a GC pause, a VM freeze."""

    network = False
    needs_duration = True
    replicated = False

    def open(self, on: LocalServer, fault: FaultSpec) -> None:
        on.pause()

    def heal(self, on: LocalServer, fault: FaultSpec) -> None:
        on.resume()
