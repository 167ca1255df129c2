"""The nemesis's faults: each kind a small object (Jepsen's Nemesis shape), one registry line each.

    process.py      kill (SIGKILL, restart after the window) and pause (SIGSTOP/SIGCONT) of a local server
    network.py      stall, drop, latency, lost responses on the fault proxy between the load and the target
    replication.py  failover, stall-replication and partition of a replicated local server
    nemesis.py      the scheduler: opens and heals each window at its time, records every outcome in the run folder
    outcomes.py     what became of each planned fault (from faults.jsonl alone), and the verdict that allows

A fault kind opens its window on what it acts on and heals it; ``network`` says which that is (the
proxy, or a server of the embedded stack), ``needs_duration`` whether a window must end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from harness.faults import network, process, replication


class FaultKind(Protocol):
    network: bool  # acts on the fault proxy (else on a local server: ``Fault.server``)
    needs_duration: bool  # a window must say when it heals
    replicated: bool  # acts on a replicated server (a primary and its replicas)

    def open(self, on: Any, fault: Any) -> None: ...

    def heal(self, on: Any, fault: Any) -> Mapping[str, str | None] | None:
        """Heal; may return what it found (kept in the fault's ``end`` record)."""
        ...


FAULTS: dict[str, FaultKind] = {
    "kill": process.Kill(),
    "pause": process.Pause(),
    "stall": network.Stall(),
    "drop": network.Drop(),
    "latency": network.Latency(),
    "lose-responses": network.LoseResponses(),
    "failover": replication.Failover(),
    "stall-replication": replication.StallReplication(),
    "partition": replication.Partition(),
}
