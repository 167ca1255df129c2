"""Faults on a replicated local server (a Redis primary with replicas and a Sentinel; a PostgreSQL
primary with a streaming replica): where acknowledged writes really vanish."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.core.models import FaultSpec


class Replicated(Protocol):
    def failover(self) -> None: ...

    def rejoin(self) -> None: ...

    def stall_replication(self, on: bool) -> None: ...

    def partition(self, on: bool, *, isolate: str, clients: str) -> str | None:
        """Cut (``on``) or heal the links between the node ``isolate`` names (``primary``: the one that is
        primary when the window opens) and every other server of the group, in both directions and
        silently (connections stay open and deliver nothing); ``clients`` says which side the load is on
        (``keep``: the isolated node's, ``split``: half on each, ``cut``: the others', following the
        failover). A heal returns the node promoted while the window was open, as the group names its
        primary just before the links come back (None: nobody was)."""
        ...


class Failover:
    """Kill the primary, as a crash would; a replica is promoted (by the Sentinel, or by counterbench
    for PostgreSQL). With a duration, the old primary comes back after it, as a replica."""

    network = False
    needs_duration = False
    replicated = True

    def open(self, on: Replicated, fault: FaultSpec) -> None:
        on.failover()

    def heal(self, on: Replicated, fault: FaultSpec) -> None:
        on.rejoin()


class StallReplication:
    """The replication link delivers nothing (it goes through the fault proxy): replicas fall behind
    while the primary keeps acknowledging."""

    network = False
    needs_duration = True
    replicated = True

    def open(self, on: Replicated, fault: FaultSpec) -> None:
        on.stall_replication(True)

    def heal(self, on: Replicated, fault: FaultSpec) -> None:
        on.stall_replication(False)


class Partition:
    """The primary cut off, not dead: every link between it and the other servers goes silent both ways
    (through the proxies every link between servers counterbench starts goes through), so the systems'
    own timeouts notice, and another node may be promoted while clients on its side are still answered.
    Heals after the window; what the old primary acknowledged meanwhile may then be thrown away."""

    network = False
    needs_duration = True
    replicated = True

    def open(self, on: Replicated, fault: FaultSpec) -> None:
        on.partition(True, isolate=fault.isolate, clients=fault.clients)

    def heal(self, on: Replicated, fault: FaultSpec) -> dict[str, str | None]:
        # what the partition was for: without a promotion nothing the old primary acknowledged is thrown away
        return {"promoted": on.partition(False, isolate=fault.isolate, clients=fault.clients)}
