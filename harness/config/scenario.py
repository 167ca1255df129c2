"""A scenario: target, workload, load, checks, faults -- immutable and validated once.

The target's model comes from its backend (``harness.targets.registry``), the names of checks and
faults from their registries (``harness.checks``, ``harness.faults``): a new backend, check or fault
is known here without an edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from harness.checks import CHECKS, default_checks
from harness.core.models import Frozen, TargetConfig
from harness.faults import FAULTS
from harness.targets.registry import BACKENDS
from harness.workloads import WORKLOADS, WorkloadKind

# Version history of the scenario file format:
#   1: first version (scenarios: name -> {target, workload, load, checks, ...})
SCHEMA_VERSION = 1

WorkloadName = Literal[tuple(WORKLOADS)]  # type: ignore[valid-type]
CheckName = Literal[tuple(CHECKS)]  # type: ignore[valid-type]
FaultAction = Literal[tuple(FAULTS)]  # type: ignore[valid-type]
Target = Annotated[Union[tuple(b.config for b in BACKENDS.values())],  # type: ignore[valid-type]  # noqa: UP007
                   Field(discriminator="kind")]
TARGET_KINDS = frozenset(BACKENDS)

_KEY_SAFE = re.compile(r"^[A-Za-z0-9_.:{}\-]+$")


class AmountRange(Frozen):
    min: int = 1  # the smallest amount
    max: int = 1  # the largest amount

    @model_validator(mode="after")
    def _order(self) -> AmountRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Workload(Frozen):
    kind: WorkloadName  # counter, unique-ids, amount, seats or page-views
    initial: int = Field(default=0, description="start value of every key; seats: the capacity")
    amount: AmountRange = AmountRange()  # amount: the range each increment's amount is drawn from
    keys: int = Field(default=1, ge=1, le=1_000_000, description="page-views: number of keys")
    skew: float = Field(default=1.1, ge=0, le=5, description="page-views: Zipf exponent of key popularity")
    date: str = Field(default="2026-11-27", description="page-views: the day in key names")
    reads: float = Field(default=0.0, ge=0, lt=1, description="the share of ops that read the key instead")

    @model_validator(mode="after")
    def _by_kind(self) -> Workload:
        spec = self.spec
        if spec.fixed_amount and self.amount != AmountRange():
            raise ValueError(f"workload {self.kind} has a fixed amount of 1; remove 'amount'")
        if not spec.fixed_amount and (self.amount.min <= 0 < self.amount.max or self.amount.min == 0):
            raise ValueError("amount.min and amount.max must both be positive or both negative")
        if spec.capacity and self.initial < 0:
            raise ValueError(f"{self.kind}.initial is the capacity and cannot be negative")
        if not spec.multi_key and self.keys != 1:
            raise ValueError(f"workload {self.kind} uses one key; keys is for workloads of many")
        if not _KEY_SAFE.match(self.date):
            raise ValueError("date may only hold letters, digits and - _ . :")
        return self

    @property
    def spec(self) -> WorkloadKind:
        return WORKLOADS[self.kind]

    @property
    def op(self) -> Literal["incr", "decr_if_positive"]:
        return self.spec.op

    @property
    def signs(self) -> frozenset[int]:
        """The signs of the changes this workload's ops ask for: what a missing op could have done."""
        return self.spec.signs(self)


class Step(Frozen):
    """One step of a stepped load: users (closed model) or an arrival rate (open model)."""

    duration: int = Field(ge=1, le=86400, description="seconds")
    users: int | None = Field(default=None, ge=1, le=1_000_000)  # closed model: users during the step
    rate: float | None = Field(default=None, gt=0, le=10_000_000, description="ops/s")

    @model_validator(mode="after")
    def _one(self) -> Step:
        if (self.users is None) == (self.rate is None):
            raise ValueError("a step sets exactly one of users or rate")
        return self


@dataclass(frozen=True)
class StepSpan:
    """A step on the load's timeline: seconds from the load's start."""

    index: int  # 0-based
    start: float
    end: float
    step: Step


class Load(Frozen):
    users: int = Field(default=32, ge=1, le=1_000_000, description="closed model: users; open model: the pool")
    spawn_rate: float = Field(default=32, gt=0)  # users started per second
    duration: int = Field(default=10, ge=1, le=7 * 86400, description="seconds")
    drain: int = Field(default=10, ge=0, le=3600, description="seconds in-flight ops get to finish")
    wait: float = Field(default=0, ge=0, le=3600, description="seconds each user waits between ops")
    rate: float | None = Field(default=None, gt=0, le=10_000_000,
                               description="open model: target arrival rate in ops/s")
    steps: tuple[Step, ...] = Field(default=(), description="stepped load; its total is the duration")

    @model_validator(mode="before")
    @classmethod
    def _steps_set_duration(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("steps"):
            try:
                total = sum(int(s["duration"]) for s in data["steps"])
            except (TypeError, KeyError, ValueError, OverflowError):
                return data  # the steps' own validation names what is wrong
            if "duration" in data and data["duration"] != total:
                raise ValueError(f"duration ({data['duration']}) differs from the sum of the steps ({total})")
            data = {**data, "duration": total}
        return data

    @model_validator(mode="after")
    def _model(self) -> Load:
        if self.steps:
            kinds = {"rate" if s.rate is not None else "users" for s in self.steps}
            if len(kinds) > 1:
                raise ValueError("steps are all users (closed model) or all rate (open model)")
            if self.rate is not None:
                raise ValueError("give rate or steps of rates, not both")
        if self.open_model and self.wait:
            raise ValueError("wait is for the closed model; the open model paces by rate")
        return self

    @property
    def open_model(self) -> bool:
        return self.rate is not None or any(s.rate is not None for s in self.steps)

    def timeline(self) -> tuple[StepSpan, ...]:
        """The steps with their start and end (the one definition of where steps begin)."""
        spans, t = [], 0.0
        for i, s in enumerate(self.steps):
            spans.append(StepSpan(i, t, t + s.duration, s))
            t += s.duration
        return tuple(spans)

    def step_at(self, t: float) -> tuple[int, Step | None]:
        """The step in force t seconds into the load (the last one after the end)."""
        spans = self.timeline()
        for span in spans:
            if t < span.end:
                return span.index, span.step
        return (spans[-1].index, spans[-1].step) if spans else (0, None)

    def rate_at(self, t: float) -> float | None:
        _, step = self.step_at(t)
        return step.rate if step is not None and step.rate is not None else self.rate

    def users_at(self, t: float) -> int:
        _, step = self.step_at(t)
        return step.users if step is not None and step.users is not None else self.users


class Slo(Frozen):
    """A service-level objective for capacity planning: a step meets it or not."""

    p99_ms: float | None = Field(default=None, gt=0)  # p99 of acknowledged ops at or below this (ms)
    p50_ms: float | None = Field(default=None, gt=0)  # p50 at or below this (ms)
    max_error_rate: float = Field(default=0.001, ge=0, le=1, description="(fail + indeterminate) / ops")


class Fault(Frozen):
    """A scheduled fault (the nemesis): a window of trouble on a local server or the network path."""

    at: float = Field(ge=0, le=7 * 86400, description="seconds after the load starts")
    action: FaultAction  # what the fault does (see the faults page)
    duration: float | None = Field(default=None, gt=0, le=86400,
                                   description="kill: restart after it (none: stay down); others: the window")
    server: Literal["target", "store"] = Field(default="target", description="kill/pause: which local server")
    delay_ms: float = Field(default=100, gt=0, le=60_000, description="latency: added to each chunk")
    fraction: float = Field(default=0.1, gt=0, le=1, description="lose-responses: the share of answers reset")
    isolate: Literal["primary"] = Field(default="primary", description="partition: the node cut off from the "
                                                                         "other servers (the primary at the time)")
    clients: Literal["keep", "split", "cut"] = Field(
        default="keep", description="partition: the load's side -- keep: the isolated node's (its connections "
                                    "stay up), split: half the users on each side, cut: the others' (its path to "
                                    "the isolated node goes silent too; a client that can, follows the failover)")

    @model_validator(mode="after")
    def _window(self) -> Fault:
        if FAULTS[self.action].needs_duration and self.duration is None:
            raise ValueError(f"{self.action} needs a duration")
        return self

    @property
    def network(self) -> bool:
        """It acts on the network path (through the fault proxy), not on a server."""
        return FAULTS[self.action].network


class Scenario(Frozen):
    name: str  # the scenario's name (its key under scenarios:)
    description: str = ""  # one line, shown by counterbench list and in reports
    target: Target  # what is loaded: one of the target sections below, by kind
    workload: Workload  # what the ops do, to which keys
    load: Load = Load()  # how many users or ops per second, for how long
    checks: tuple[CheckName, ...] = ()  # the checks that judge the run (default: the workload's)
    allow_remote: bool = False  # allow a target that is not on loopback (refused otherwise)
    expect: Literal["pass", "fail"] = Field(default="pass", description="the verdict this scenario should get")
    slo: Slo | None = None  # a service-level objective each step of the load meets or not
    faults: tuple[Fault, ...] = ()  # faults the nemesis opens while the load runs
    stop_on_violation: bool = Field(
        default=False, description="end the load at the first violation the online checks prove (then drain, "
                                   "read the final state and judge, as at the end of the duration)")

    def late_faults(self) -> tuple[tuple[int, Fault], ...]:
        """Faults planned at or after the load's end, each with its place in the list: no run of the scenario
        could see them happen, so none could pass. Refused where a scenario is read (``harness.config.files``,
        naming the fault's line and ``--duration``), not by a validator here: a run folder recorded before
        the rule must still be judged (as unknown), and a validator's error could not point at the line."""
        return tuple((i, f) for i, f in enumerate(self.faults) if f.at >= self.load.duration)

    @property
    def returns(self) -> Literal["after", "before"]:
        """Whether acknowledged ops return the value after the update or before it."""
        return getattr(self.target, "returns", "after")  # type: ignore[no-any-return]

    @model_validator(mode="before")
    @classmethod
    def _default_checks(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("checks"):
            kind = data.get("workload", {}).get("kind") if isinstance(data.get("workload"), dict) else None
            if kind is not None:
                data = {**data, "checks": default_checks(kind)}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        target: TargetConfig = self.target
        decrements = self.workload.op == "decr_if_positive"
        if decrements and target.variant == "read-modify-write":
            raise ValueError("target.variant read-modify-write is for increments; seats use check-then-act")
        if not decrements and target.variant == "check-then-act":
            raise ValueError("target.variant check-then-act is for the seats workload")
        if any(f.network for f in self.faults) and not type(target).network_faults:
            kinds = ", ".join(k for k, b in BACKENDS.items() if b.config.network_faults)
            raise ValueError(f"network faults go through a TCP proxy in front of a {kinds} target")
        if self.workload.reads and not type(target).reads:
            raise ValueError(f"a {target.kind} target cannot read its counter during the run: workload.reads")
        if any(f.server == "store" for f in self.faults) and not target.has_store:
            raise ValueError("server: store is the store behind a local service or API")
        for f in self.faults:
            if FAULTS[f.action].replicated and f.server not in target.replicated_servers:
                raise ValueError(f"a {f.action} fault needs a replicated {f.server} (redis: target.replicas; "
                                 "a service over postgres: target.service.replicas or target.service.patroni)")
        target.check(self)
        for name in self.checks:
            if not CHECKS[name].applies_to(self.workload.kind):
                raise ValueError(f"check {name} is not for the {self.workload.kind} workload")
        return self


class ScenarioFile(Frozen):
    schema_version: int
    scenarios: dict[str, dict[str, Any]]
    suites: dict[str, list[str]] = Field(default_factory=dict, description="name -> scenarios run in order")

    @model_validator(mode="before")
    @classmethod
    def _version_first(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("schema_version") not in (None, SCHEMA_VERSION):
            raise ValueError(f"schema_version {data['schema_version']!r} is not supported (this is {SCHEMA_VERSION})")
        # top-level x-* keys hold YAML anchors to share, as in docker compose files
        return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
