"""What every part of a scenario is built on: frozen models, and the base of each backend's target model.

Outside the config package, so that targets/ can define their models without importing config (whose
scenario model is built from the targets' registry). For the same reason the registries -- backends, faults,
workloads -- read a scenario through the protocols below, never through ``harness.config.scenario``'s
classes, which satisfy them: config imports the registries, and nothing there imports config back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

Variant = Literal["atomic", "read-modify-write", "check-then-act"]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetConfig(Frozen):
    """A scenario's ``target:``, one subclass per backend (in its module of harness/targets/).

    Each subclass declares ``kind`` as a Literal (the registry's key), ``url``, ``variant`` and,
    where acknowledged ops return the value before the update, ``returns``; and answers here what
    the rest of counterbench asks of any target."""

    url: str | None = None  # where the target is; none: counterbench starts a local one
    variant: Variant = "atomic"  # atomic, or an unsafe variant meant to fail

    network_faults: ClassVar[bool] = False  # network faults can go through a TCP proxy in front of it
    reads: ClassVar[bool] = True  # its op client can read the counter during the run
    # ``variant`` is how counterbench's own client updates (Redis, DynamoDB: always meaningful), not how a
    # service counterbench did not start does (an HTTP service's own code: its variant is its own)
    client_side_variant: ClassVar[bool] = True

    @property
    def has_store(self) -> bool:
        """A store behind the target (a local service's or an API's) that faults can hit."""
        return False

    @property
    def replicated_servers(self) -> frozenset[str]:
        """The local servers (by role: "target", "store") that are replicated: failover faults act on them."""
        return frozenset()

    @property
    def spread_keys(self) -> bool:
        """Ops spread uniformly over the run's keys (write shards) rather than by the workload's skew."""
        return False

    def check(self, scenario: ScenarioSpec) -> None:
        """This kind's rules about the rest of the scenario: raise ValueError naming the conflict."""


class WorkloadSpec(Protocol):
    """What the registries read of a scenario's ``workload:`` (``harness.config.scenario.Workload``)."""

    kind: str
    initial: int
    amount: Any  # min, max
    keys: int
    skew: float
    date: str
    reads: float

    @property
    def spec(self) -> Any: ...  # the workload's registry entry (``harness.workloads.WorkloadKind``)

    @property
    def op(self) -> str: ...

    @property
    def signs(self) -> frozenset[int]: ...


class FaultSpec(Protocol):
    """What the fault registry reads of one of ``faults:`` (``harness.config.scenario.Fault``)."""

    at: float
    action: str
    duration: float | None
    server: str
    delay_ms: float
    fraction: float
    isolate: str
    clients: str

    @property
    def network(self) -> bool: ...


class ScenarioSpec(Protocol):
    """What the backends read of a scenario (``harness.config.scenario.Scenario``)."""

    name: str
    target: TargetConfig
    workload: WorkloadSpec
    load: Any
    faults: Sequence[FaultSpec]
    allow_remote: bool

    @property
    def returns(self) -> Literal["after", "before"]: ...

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any: ...
