"""Faults on the network path: the loopback TCP proxy between the load and the target."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.core.models import FaultSpec
    from harness.stack.proxy import TcpProxy


class Stall:
    """The path delivers nothing (bytes are held, connections stay open)."""

    network = True
    needs_duration = True
    replicated = False

    def open(self, on: TcpProxy, fault: FaultSpec) -> None:
        on.stalled = True

    def heal(self, on: TcpProxy, fault: FaultSpec) -> None:
        on.stalled = False


class Drop:
    """Every connection, and every new one, is reset."""

    network = True
    needs_duration = True
    replicated = False

    def open(self, on: TcpProxy, fault: FaultSpec) -> None:
        on.drop(True)

    def heal(self, on: TcpProxy, fault: FaultSpec) -> None:
        on.drop(False)


class Latency:
    """``delay_ms`` added to every chunk in either direction."""

    network = True
    needs_duration = True
    replicated = False

    def open(self, on: TcpProxy, fault: FaultSpec) -> None:
        on.delay = fault.delay_ms / 1000

    def heal(self, on: TcpProxy, fault: FaultSpec) -> None:
        on.delay = 0.0


class LoseResponses:
    """A ``fraction`` of the target's answers is replaced by a reset: the request arrived and was done,
    the client cannot know (what makes a retrying client apply an increment twice)."""

    network = True
    needs_duration = True
    replicated = False

    def open(self, on: TcpProxy, fault: FaultSpec) -> None:
        on.lose_responses = fault.fraction

    def heal(self, on: TcpProxy, fault: FaultSpec) -> None:
        on.lose_responses = 0.0
