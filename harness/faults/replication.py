"""Faults on a replicated local server (a Redis primary with replicas and a Sentinel; a PostgreSQL
primary with a streaming replica): where acknowledged writes really vanish."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.config.scenario import Fault


class Replicated(Protocol):
    def failover(self) -> None: ...

    def rejoin(self) -> None: ...

    def stall_replication(self, on: bool) -> None: ...


class Failover:
    """Kill the primary, as a crash would; a replica is promoted (by the Sentinel, or by counterbench
    for PostgreSQL). With a duration, the old primary comes back after it, as a replica."""

    network = False
    needs_duration = False
    replicated = True

    def open(self, on: Replicated, fault: Fault) -> None:
        on.failover()

    def heal(self, on: Replicated, fault: Fault) -> None:
        on.rejoin()


class StallReplication:
    """The replication link delivers nothing (it goes through the fault proxy): replicas fall behind
    while the primary keeps acknowledging."""

    network = False
    needs_duration = True
    replicated = True

    def open(self, on: Replicated, fault: Fault) -> None:
        on.stall_replication(True)

    def heal(self, on: Replicated, fault: Fault) -> None:
        on.stall_replication(False)
