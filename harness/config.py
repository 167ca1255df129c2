"""scenarios.yaml -> immutable, validated scenario objects.

Parse once, then trust: everything downstream receives these frozen objects
and never re-validates or reads raw dicts. Every error names file, line and key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import ConfigError
from harness.yamlsrc import SourceMap, data_loc, dotted, load_yaml

# Version history of the scenario file format:
#   1: first version (scenarios: name -> {target, workload, load, checks, ...})
SCHEMA_VERSION = 1

WorkloadKind = Literal["counter", "unique-ids", "amount", "seats", "page-views"]
CheckName = Literal["bounds", "unique-values", "no-oversell"]
Variant = Literal["atomic", "read-modify-write", "check-then-act"]

DEFAULT_CHECKS: dict[str, tuple[CheckName, ...]] = {
    "counter": ("bounds", "unique-values"),
    "unique-ids": ("bounds", "unique-values"),
    "amount": ("bounds", "unique-values"),
    "seats": ("bounds", "unique-values", "no-oversell"),
    "page-views": ("bounds", "unique-values"),
}

_KEY_SAFE = re.compile(r"^[A-Za-z0-9_.:{}\-]+$")


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValueSpec(Frozen):
    """Where the counter value is in an answer: exactly one of the fields."""

    json_pointer: str | None = Field(default=None, description="e.g. /value or /data/count")
    regex: str | None = Field(default=None, description="first group is the integer")
    plain: bool = False
    header: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueSpec:
        chosen = [n for n in ("json_pointer", "regex", "header") if getattr(self, n) is not None]
        if self.plain:
            chosen.append("plain")
        if len(chosen) != 1:
            raise ValueError("give exactly one of json_pointer, regex, plain, header")
        if self.json_pointer is not None and not (self.json_pointer == "" or self.json_pointer.startswith("/")):
            raise ValueError("a JSON pointer starts with '/' (e.g. /value)")
        if self.regex is not None:
            try:
                if re.compile(self.regex).groups < 1:
                    raise ValueError("the regex needs a group around the number")
            except re.error as e:
                raise ValueError(f"invalid regex: {e}") from e
        return self


class HttpCall(Frozen):
    """One request of an HTTP counter contract. Placeholders: {key}, {amount}, {value}."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    body: str | None = None
    content_type: str = "application/json"
    value: ValueSpec | None = None

    @model_validator(mode="after")
    def _path(self) -> HttpCall:
        if not self.path.startswith("/"):
            raise ValueError("path must start with '/'")
        if "{key}" not in self.path:
            raise ValueError("path must contain {key}")
        return self


_JSON_VALUE = ValueSpec(json_pointer="/value")


class HttpContract(Frozen):
    """How to speak to an HTTP counter service. Defaults: the reference contract."""

    increment: HttpCall = HttpCall(
        method="POST", path="/counters/{key}/increment", body='{"amount": {amount}}', value=_JSON_VALUE
    )
    decrement: HttpCall = HttpCall(
        method="POST", path="/counters/{key}/decrement-if-positive", value=_JSON_VALUE
    )
    set: HttpCall = HttpCall(method="PUT", path="/counters/{key}", body='{"value": {value}}')
    read: HttpCall = HttpCall(method="GET", path="/counters/{key}", value=_JSON_VALUE)
    fail_statuses: tuple[int, ...] = (400, 404, 409, 429)
    missing_statuses: tuple[int, ...] = (404,)
    headers: Mapping[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _values(self) -> HttpContract:
        for name in ("increment", "decrement", "read"):
            if getattr(self, name).value is None:
                raise ValueError(f"{name}.value is required: where the counter value is in the answer")
        for s in (*self.fail_statuses, *self.missing_statuses):
            if not 100 <= s <= 599:
                raise ValueError(f"{s} is not an HTTP status")
        if any(200 <= s < 300 for s in self.fail_statuses):
            raise ValueError("a 2xx status cannot mean fail")
        return self


class RedisTarget(Frozen):
    kind: Literal["redis"]
    url: str | None = Field(default=None, description="redis://host:port/db; default: a local redis-server")
    variant: Variant = "atomic"
    timeout: float = Field(default=5.0, gt=0, le=300)
    gap: float = Field(default=0.0, ge=0, le=1,
                       description="unsafe variants: seconds of app work between the read and the write")
    persistence: Literal["none", "everysec", "always"] = Field(
        default="none", description="the local redis-server: no persistence, or AOF fsynced every second/write")
    pipeline: int = Field(default=1, ge=1, le=1000,
                          description="increments per round trip; each is still its own op in the history")


class ServiceSpec(Frozen):
    """The local reference service counterbench starts when an http target has no URL."""

    store: Literal["memory", "redis", "postgres", "dynamodb"] = "memory"
    workers: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _workers(self) -> ServiceSpec:
        if self.store == "memory" and self.workers > 1:
            raise ValueError("the memory store lives in one process: workers must be 1")
        return self


class HttpTarget(Frozen):
    kind: Literal["http"]
    url: str | None = Field(default=None, description="base URL; default: the local reference service")
    variant: Variant = Field(default="atomic", description="of the local reference service")
    timeout: float = Field(default=5.0, gt=0, le=300)
    contract: HttpContract = HttpContract()
    service: ServiceSpec = ServiceSpec()


_NAME = r"^[A-Za-z0-9_.\-]{1,255}$"


class DynamoTarget(Frozen):
    """UpdateItem on DynamoDB or any DynamoDB-compatible endpoint (dynalite locally)."""

    kind: Literal["dynamodb"]
    url: str | None = Field(default=None, description="endpoint URL; default: a local dynalite")
    region: str = "us-east-1"
    table: str = Field(default="counterbench", pattern=_NAME)
    partition_key: str = Field(default="pk", pattern=_NAME)
    attribute: str = Field(default="counterValue", pattern=_NAME)
    update: Literal["add", "set"] = Field(default="add", description="ADD #v :n, or SET #v = #v + :n")
    returns: Literal["after", "before"] = Field(default="after", description="UPDATED_NEW or UPDATED_OLD")
    variant: Variant = "atomic"
    shards: int = Field(default=1, ge=1, le=1000, description="write shards: N items, the total is their sum")
    max_attempts: int = Field(default=1, ge=1, le=10, description="SDK attempts; >1 can apply an op twice")
    timeout: float = Field(default=5.0, gt=0, le=300)
    create_table: bool = Field(default=True, description="create the table (on demand) if it is missing")
    gap: float = Field(default=0.0, ge=0, le=1, description="unsafe variants: seconds between read and write")
    dynalite_path: str | None = Field(default=None,
                                      description="the local dynalite keeps its tables on disk here (default: memory)")


class DynamoItem(Frozen):
    """The one item an API's templates update, for setup and final reads."""

    table: str = Field(pattern=_NAME)
    key: Mapping[str, str] = Field(description="attribute -> string value, as in the template's Key")
    attribute: str = Field(pattern=_NAME)
    region: str = "us-east-1"
    url: str | None = Field(default=None, description="DynamoDB endpoint; default: the local dynalite")


class ApiGatewayTarget(Frozen):
    """HTTP POST to a REST API whose integration calls DynamoDB (the seed article's design)."""

    kind: Literal["apigateway"]
    url: str | None = Field(default=None, description="stage URL; default: the local API Gateway emulator")
    api: str = Field(default="apigateway/counter-api.yaml", description="the REST API definition")
    path: str = Field(default="/counter", pattern=r"^/")
    item: DynamoItem
    returns: Literal["after", "before"] = "before"
    api_key_env: str | None = Field(default=None, description="environment variable holding an x-api-key")
    sigv4: bool = Field(default=False, description="sign requests with the standard AWS credential chain")
    timeout: float = Field(default=5.0, gt=0, le=300)
    variant: Literal["atomic"] = "atomic"
    fail_statuses: tuple[int, ...] = (400, 403, 404, 409, 429)


Target = Annotated[RedisTarget | HttpTarget | DynamoTarget | ApiGatewayTarget, Field(discriminator="kind")]
TARGET_KINDS = frozenset({"redis", "http", "dynamodb", "apigateway"})


class AmountRange(Frozen):
    min: int = 1
    max: int = 1

    @model_validator(mode="after")
    def _order(self) -> AmountRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Workload(Frozen):
    kind: WorkloadKind
    initial: int = Field(default=0, description="start value of every key; seats: the capacity")
    amount: AmountRange = AmountRange()
    keys: int = Field(default=1, ge=1, le=1_000_000, description="page-views: number of keys")
    skew: float = Field(default=1.1, ge=0, le=5, description="page-views: Zipf exponent of key popularity")
    date: str = Field(default="2026-11-27", description="page-views: the day in key names")

    @model_validator(mode="after")
    def _by_kind(self) -> Workload:
        if self.kind in ("counter", "unique-ids", "seats") and self.amount != AmountRange():
            raise ValueError(f"workload {self.kind} has a fixed amount of 1; remove 'amount'")
        if self.kind == "amount" and (self.amount.min <= 0 < self.amount.max or self.amount.min == 0):
            raise ValueError("amount.min and amount.max must both be positive or both negative")
        if self.kind == "seats" and self.initial < 0:
            raise ValueError("seats.initial is the capacity and cannot be negative")
        if self.kind != "page-views" and self.keys != 1:
            raise ValueError("only page-views uses several keys")
        if not _KEY_SAFE.match(self.date):
            raise ValueError("date may only hold letters, digits and - _ . :")
        return self

    @property
    def op(self) -> Literal["incr", "decr_if_positive"]:
        return "decr_if_positive" if self.kind == "seats" else "incr"

    @property
    def signs(self) -> frozenset[int]:
        """The signs of the changes this workload's ops ask for: what a missing op could have done."""
        if self.kind == "seats" or self.amount.max < 0:
            return frozenset({-1})
        return frozenset({1})


class Step(Frozen):
    """One step of a stepped load: users (closed model) or an arrival rate (open model)."""

    duration: int = Field(ge=1, le=86400, description="seconds")
    users: int | None = Field(default=None, ge=1, le=1_000_000)
    rate: float | None = Field(default=None, gt=0, le=10_000_000, description="ops/s")

    @model_validator(mode="after")
    def _one(self) -> Step:
        if (self.users is None) == (self.rate is None):
            raise ValueError("a step sets exactly one of users or rate")
        return self


class Load(Frozen):
    users: int = Field(default=32, ge=1, le=1_000_000, description="closed model: users; open model: the pool")
    spawn_rate: float = Field(default=32, gt=0)
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

    def step_at(self, t: float) -> tuple[int, Step | None]:
        """The step in force t seconds into the load (the last one after the end)."""
        end = 0
        for i, s in enumerate(self.steps):
            end += s.duration
            if t < end:
                return i, s
        return (len(self.steps) - 1, self.steps[-1]) if self.steps else (0, None)

    def rate_at(self, t: float) -> float | None:
        _, step = self.step_at(t)
        return step.rate if step is not None and step.rate is not None else self.rate

    def users_at(self, t: float) -> int:
        _, step = self.step_at(t)
        return step.users if step is not None and step.users is not None else self.users


class Slo(Frozen):
    """A service-level objective for capacity planning: a step meets it or not."""

    p99_ms: float | None = Field(default=None, gt=0)
    p50_ms: float | None = Field(default=None, gt=0)
    max_error_rate: float = Field(default=0.001, ge=0, le=1, description="(fail + indeterminate) / ops")


class Fault(Frozen):
    """A scheduled fault (the nemesis): a window of trouble on a local server or the network path."""

    at: float = Field(ge=0, le=7 * 86400, description="seconds after the load starts")
    action: Literal["kill", "pause", "stall", "drop", "latency"]
    duration: float | None = Field(default=None, gt=0, le=86400,
                                   description="kill: restart after it (none: stay down); others: the window")
    server: Literal["target", "store"] = Field(default="target", description="kill/pause: which local server")
    delay_ms: float = Field(default=100, gt=0, le=60_000, description="latency: added to each chunk")

    @model_validator(mode="after")
    def _window(self) -> Fault:
        if self.action != "kill" and self.duration is None:
            raise ValueError(f"{self.action} needs a duration")
        return self

    @property
    def network(self) -> bool:
        return self.action in ("stall", "drop", "latency")


class Scenario(Frozen):
    name: str
    description: str = ""
    target: Target
    workload: Workload
    load: Load = Load()
    checks: tuple[CheckName, ...] = ()
    allow_remote: bool = False
    expect: Literal["pass", "fail"] = Field(default="pass", description="the verdict this scenario should get")
    slo: Slo | None = None
    faults: tuple[Fault, ...] = ()

    @property
    def returns(self) -> Literal["after", "before"]:
        """Whether acknowledged ops return the value after the update or before it."""
        return getattr(self.target, "returns", "after")

    @model_validator(mode="before")
    @classmethod
    def _default_checks(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("checks"):
            kind = data.get("workload", {}).get("kind") if isinstance(data.get("workload"), dict) else None
            if kind in DEFAULT_CHECKS:
                data = {**data, "checks": DEFAULT_CHECKS[kind]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        seats = self.workload.kind == "seats"
        if seats and self.target.variant == "read-modify-write":
            raise ValueError("target.variant read-modify-write is for increments; seats use check-then-act")
        if not seats and self.target.variant == "check-then-act":
            raise ValueError("target.variant check-then-act is for the seats workload")
        if any(f.network for f in self.faults) and self.target.kind not in ("redis", "http", "apigateway"):
            raise ValueError("network faults go through a TCP proxy in front of a redis, http or apigateway target")
        if any(f.server == "store" for f in self.faults) and not (
                (isinstance(self.target, HttpTarget) and self.target.service.store != "memory")
                or isinstance(self.target, ApiGatewayTarget)):
            raise ValueError("server: store is the store behind a local service or API")
        if isinstance(self.target, DynamoTarget) and self.target.shards > 1 and self.workload.kind in (
                "page-views", "seats"):
            raise ValueError("target.shards splits one counter; it is not for seats or page-views")
        if isinstance(self.target, ApiGatewayTarget) and self.workload.kind in ("page-views", "amount"):
            raise ValueError("an API's templates update one fixed item by a fixed amount: use counter, "
                             "unique-ids or seats")
        if isinstance(self.target, RedisTarget) and self.target.pipeline > 1 and (
                self.target.variant != "atomic" or self.workload.kind == "seats"):
            raise ValueError("target.pipeline is for atomic increments (an unsafe variant must wait for its read)")
        if isinstance(self.target, RedisTarget | DynamoTarget) and self.target.gap and self.target.variant == "atomic":
            raise ValueError("target.gap is the read-to-write delay of the unsafe variants; atomic has none")
        if "no-oversell" in self.checks and not seats:
            raise ValueError("check no-oversell is for the seats workload")
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


def _format_errors(err: ValidationError, data: Any, smap: SourceMap, prefix: str = "") -> str:
    lines = []
    for e in err.errors(include_url=False):
        loc = data_loc(data, tuple(e["loc"]), TARGET_KINDS)
        line = smap.line_of(loc)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif not isinstance(e.get("input"), dict | list) and "input" in e:
            msg = f"{msg} (got {e['input']!r})"
        where = f"{smap.path}:{line}" if line is not None else str(smap.path)
        name = f"{prefix}{dotted(loc)}" if loc else (prefix.rstrip(".") or dotted(loc))
        lines.append(f"{where}: {name}: {msg}")
    return "\n".join(lines)


def load_scenarios(path: str | Path) -> dict[str, Scenario]:
    """All scenarios of a file, validated; raises ConfigError naming file:line:key."""
    path = Path(path)
    data, smap = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping with schema_version and scenarios")
    try:
        parsed = ScenarioFile.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, data, smap)) from None
    out: dict[str, Scenario] = {}
    problems: list[str] = []
    for name, body in parsed.scenarios.items():
        if not re.fullmatch(r"[a-z0-9][a-z0-9\-_.]*", str(name)):
            line = smap.line_of(("scenarios", name))
            problems.append(f"{path}:{line}: scenarios.{name}: names use a-z, 0-9, '-', '_', '.'")
            continue
        if "name" in body:
            problems.append(f"{path}:{smap.line_of(('scenarios', name, 'name'))}: scenarios.{name}.name: "
                            "unknown key (the name is the mapping key)")
            continue
        try:
            out[name] = Scenario.model_validate({**body, "name": name})
        except ValidationError as e:
            sub = _sub_map(smap, ("scenarios", name))
            problems.append(_format_errors(e, body, sub, prefix=f"scenarios.{name}."))
    for suite, names in parsed.suites.items():
        for i, n in enumerate(names):
            if n not in parsed.scenarios:
                line = smap.line_of(("suites", suite, i))
                problems.append(f"{path}:{line}: suites.{suite}.{i}: no scenario named {n!r}")
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def load_suite(path: str | Path, name: str) -> list[str]:
    """The scenario names of a suite (the file is validated as a whole)."""
    load_scenarios(path)
    data, _ = load_yaml(Path(path))
    suites = data.get("suites") or {}
    if name not in suites:
        raise ConfigError(f"{path}: no suite named {name!r}; known: {', '.join(sorted(suites)) or '(none)'}")
    return list(suites[name])


def _sub_map(smap: SourceMap, root: tuple[str, ...]) -> SourceMap:
    sub = SourceMap(path=smap.path)
    sub.lines[()] = smap.lines.get(root, 1)
    for loc, line in smap.lines.items():
        if loc[: len(root)] == root:
            sub.lines[loc[len(root):]] = line
    return sub


def get_scenario(path: str | Path, name: str) -> Scenario:
    scenarios = load_scenarios(path)
    if name not in scenarios:
        known = ", ".join(sorted(scenarios)) or "(none)"
        raise ConfigError(f"{path}: no scenario named {name!r}; known: {known}")
    return scenarios[name]


def with_overrides(
    scenario: Scenario,
    *,
    users: int | None = None,
    spawn_rate: float | None = None,
    duration: int | None = None,
    target_url: str | None = None,
    store_url: str | None = None,
) -> Scenario:
    """The scenario with command-line overrides applied, validated again."""
    load = scenario.load.model_dump()
    for key, value in (("users", users), ("spawn_rate", spawn_rate), ("duration", duration)):
        if value is not None:
            load[key] = value
    target = scenario.target.model_dump()
    if target_url is not None:
        target["url"] = target_url
    if store_url is not None and "item" in target:
        target["item"] = {**target["item"], "url": store_url}
    raw = {**scenario.model_dump(), "load": load, "target": target}
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"] if p not in TARGET_KINDS)
        flag = {"load.users": "--users", "load.spawn_rate": "--spawn-rate", "load.duration": "--duration",
                "target.url": "--target-url"}.get(loc, loc)
        raise ConfigError(f"{flag}: {first['msg'].removeprefix('Value error, ')}") from None
