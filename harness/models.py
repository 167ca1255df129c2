"""What every part of a scenario is built on: frozen models, and the base of each backend's target model.

Outside the config package, so that targets/ can define their models without importing config (whose
scenario model is built from the targets' registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from harness.config.scenario import Scenario

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

    def check(self, scenario: Scenario) -> None:
        """This kind's rules about the rest of the scenario: raise ValueError naming the conflict."""
