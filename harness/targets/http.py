"""The http target: any counter service described by an HttpContract (``harness.targets.http_contract``).

``HttpOps`` drives the contract over a transport (in load: a keep-alive connection, see
harness/load/keepalive.py), with retries on request; ``HttpAdmin`` sets up and reads final values,
``HttpResolver`` looks uncertain ops up by idempotency key after the run -- both with the standard
library, outside the load. Without a URL, the target is the bundled reference service.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, model_validator

from harness.core.errors import TargetError, TargetUnreachable
from harness.core.models import Frozen, TargetConfig, Variant
from harness.core.ops import Completion, Outcome
from harness.core.secrets import redact_url
from harness.targets import Backend, LocalTarget, OpContext, Transport, retrying
from harness.targets.address import require_scheme
from harness.targets.classify import HTTP_RULES, BadReply, classify_exception
from harness.targets.http_contract import (
    BaseUrl,
    HttpCall,
    HttpCodec,
    HttpContract,
    Idempotency,
    LookupCall,
    Request,
    ValueSpec,
)

if TYPE_CHECKING:
    from harness.core.models import ScenarioSpec

__all__ = ["BACKEND", "BaseUrl", "HttpAdmin", "HttpCall", "HttpCodec", "HttpContract", "HttpOps", "HttpTarget",
           "Idempotency", "LookupCall", "PatroniSpec", "ServiceSpec", "Transport", "ValueSpec"]


class PatroniSpec(Frozen):
    """PostgreSQL nodes each run by Patroni over etcd (``harness.stack.patroni``); the settings are
    Patroni's own, by its names, with timings short enough for a failover in seconds."""

    nodes: int = Field(default=3, ge=2, le=5, description="PostgreSQL nodes, each run by its Patroni")
    synchronous_mode: bool = Field(default=False, description="Patroni keeps a synchronous standby and promotes "
                                                              "only it")
    synchronous_mode_strict: bool = Field(default=False, description="with no synchronous standby, commits wait "
                                                                     "rather than go asynchronous")
    ttl: int = Field(default=10, ge=2, le=300, description="s: the leader key's lease")
    loop_wait: int = Field(default=1, ge=1, le=60, description="s: between two runs of Patroni's HA loop")
    retry_timeout: int = Field(default=4, ge=1, le=120, description="s: etcd and PostgreSQL operations give up "
                                                                    "(a leader then demotes itself)")

    @model_validator(mode="after")
    def _patroni_rules(self) -> PatroniSpec:
        if self.synchronous_mode_strict and not self.synchronous_mode:
            raise ValueError("synchronous_mode_strict needs synchronous_mode: true")
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            # Patroni's own rule: a leader must notice it cannot renew its key and demote before it expires
            raise ValueError(f"loop_wait + 2 * retry_timeout ({self.loop_wait + 2 * self.retry_timeout} s) must "
                             f"not exceed ttl ({self.ttl} s)")
        return self


class ServiceSpec(Frozen):
    """The local reference service counterbench starts when an http target has no URL."""

    # where the reference service keeps its counters
    store: Literal["memory", "redis", "postgres", "dynamodb"] = "memory"
    workers: int = Field(default=1, ge=1, le=64)  # its worker processes
    replicas: int = Field(default=0, ge=0, le=1, description="postgres: a streaming replica, promoted on failover")
    synchronous: bool = Field(default=False, description="postgres replica: commits wait for it")
    patroni: PatroniSpec | None = Field(default=None, description="postgres: a cluster Patroni runs over etcd "
                                                                  "(instead of replicas)")

    @model_validator(mode="after")
    def _workers(self) -> ServiceSpec:
        if self.store == "memory" and self.workers > 1:
            raise ValueError("the memory store lives in one process: workers must be 1")
        if (self.replicas or self.synchronous) and self.store != "postgres":
            raise ValueError("replicas and synchronous are for the postgres store")
        if self.patroni is not None and self.store != "postgres":
            raise ValueError("patroni runs PostgreSQL: it is for the postgres store")
        if self.patroni is not None and (self.replicas or self.synchronous):
            raise ValueError("patroni runs its own nodes (patroni.nodes) and replication (patroni.synchronous_mode):"
                             " drop replicas and synchronous")
        if self.synchronous and not self.replicas:
            raise ValueError("synchronous replication needs a replica (replicas: 1)")
        return self

    @property
    def replicated(self) -> bool:
        return bool(self.replicas) or self.patroni is not None


class HttpTarget(TargetConfig):
    kind: Literal["http"]  # http
    url: str | None = Field(default=None, description="base URL; default: the local reference service")
    variant: Variant = Field(default="atomic", description="of the local reference service")
    timeout: float = Field(default=5.0, gt=0, le=300)  # seconds before a request is given up as indeterminate
    contract: HttpContract = HttpContract()  # how to speak to the service (default: the reference contract)
    service: ServiceSpec = ServiceSpec()  # the local reference service (without a url)
    retries: int = Field(default=0, ge=0, le=10, description="resend an op whose outcome is unknown (a retried "
                                                              "op is indeterminate unless an idempotency key "
                                                              "makes it exactly-once)")

    network_faults: ClassVar[bool] = True
    client_side_variant: ClassVar[bool] = False  # the reference service's, when counterbench starts it

    @model_validator(mode="after")
    def _keys_where_kept(self) -> HttpTarget:
        if self.url is None and self.contract.idempotency is not None and self.service.store == "dynamodb":
            raise ValueError("the reference service keeps no idempotency keys over DynamoDB (it would need "
                             "TransactWriteItems, which the embedded DynamoDB lacks): use the memory, redis or "
                             "postgres store")
        return self

    @property
    def has_store(self) -> bool:
        return self.service.store != "memory"

    @property
    def replicated_servers(self) -> frozenset[str]:
        return frozenset({"store"}) if self.service.replicated else frozenset()

    def check(self, scenario: ScenarioSpec) -> None:
        if self.contract.set is None and scenario.workload.initial != 0:  # (0: the default, which it replaces)
            raise ValueError("contract.set is null (the service has no setter): each key starts from the value the "
                             "service holds, read before the load, so workload.initial cannot be chosen; remove it")
        for f in scenario.faults:
            if f.action != "partition" or self.url is not None:
                continue
            if self.service.patroni is None:
                raise ValueError("a partition needs a cluster manager that notices it and promotes another node: "
                                 "service.patroni (with replicas alone nothing would)")
            if f.clients == "split":
                raise ValueError("clients: split puts half the load on each side, but the reference service is one "
                                 "client with one connection pool: use keep (its path to the isolated primary "
                                 "stays up) or cut (that path goes silent too)")




class HttpOps:
    """An op client for one load user over a transport.

    With ``retries``, an op whose answer leaves its outcome unknown (a timeout, a reset, a 5xx) is
    sent again, up to that many times. A retried op is indeterminate -- an earlier attempt may have
    been applied too -- unless the contract's idempotency key makes the repeat harmless: then the
    service's answer to a retry is the op's one outcome."""

    def __init__(self, contract: HttpContract, transport: Transport, *, retries: int = 0) -> None:
        self._codec = HttpCodec(contract)
        self._send = transport
        self._retries = retries
        self._idempotency = contract.idempotency
        self.tokens = contract.idempotency is not None  # the session hands each op its key

    def _attempt(self, call: HttpCall, key: str, amount: int, token: str | None) -> Completion:
        req = self._codec.build(call, key=key, amount=amount)
        headers = req.headers
        if token is not None and self._idempotency is not None:
            headers = {**headers, self._idempotency.header: token}
        try:
            status, answer_headers, body = self._send(req.method, req.path, req.body, headers)
        except Exception as e:
            return classify_exception(e, HTTP_RULES)
        return self._codec.completion(call, status, answer_headers, body)

    def _do(self, call: HttpCall, key: str, amount: int, token: str | None) -> Completion:
        return retrying(lambda: self._attempt(call, key, amount, token), self._retries,
                        retry=lambda done: done.outcome is Outcome.INDETERMINATE,  # a refusal is final
                        exactly_once=self._idempotency is not None and token is not None)

    def incr(self, key: str, amount: int, *, token: str | None = None) -> Completion:
        return self._do(self._codec.contract.increment, key, amount, token)

    def decr_if_positive(self, key: str, *, token: str | None = None) -> Completion:
        return self._do(self._codec.contract.decrement, key, -1, token)

    def read(self, key: str) -> Completion:
        return self._attempt(self._codec.contract.read, key, 0, None)

    def close(self) -> None:
        close = getattr(self._send, "close", None)  # a connection-owning transport
        if close is not None:
            close()


def exchange(url: BaseUrl, method: str, path: str, body: bytes | None, headers: Mapping[str, str], *,
             timeout: float) -> tuple[int, Mapping[str, str], bytes]:
    """One request with urllib, outside the load (no gevent): any status is an answer; no answer raises
    (urllib.error.URLError, OSError)."""
    r = urllib.request.Request(url.origin + url.path(path), data=body, method=method,
                               headers=dict(url.headers(headers)))
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


class HttpAdmin:
    """Setup and final reads with urllib (no gevent needed)."""

    def __init__(self, base_url: str, contract: HttpContract, *, timeout: float = 10.0) -> None:
        self._url = BaseUrl.parse(base_url)
        self._base = redact_url(base_url.rstrip("/"))  # as messages show it
        self._codec = HttpCodec(contract)
        self._timeout = timeout

    def _call(self, req: Request) -> tuple[int, Mapping[str, str], bytes]:
        try:
            return exchange(self._url, req.method, req.path, req.body, req.headers, timeout=self._timeout)
        except (urllib.error.URLError, OSError) as e:
            raise TargetUnreachable(f"{self._base} is unreachable: {getattr(e, 'reason', e)}") from e

    def setup(self, initial: Mapping[str, int]) -> Mapping[str, int] | None:
        spec = self._codec.contract.set
        if spec is None:  # no setter: each key starts from what the service holds (missing: 0)
            return {key: 0 if value is None else value for key, value in self.read(list(initial)).items()}
        for key, value in initial.items():
            status, _, body = self._call(self._codec.build(spec, key=key, value=value))
            if not 200 <= status < 300:
                raise TargetError(f"setting {key} to {value} ({spec.method} {spec.path}) at {self._base} answered "
                                  f"{status}: {body[:200]!r}")
        return None

    def read(self, keys: Sequence[str]) -> dict[str, int | None]:
        spec = self._codec.contract.read
        out: dict[str, int | None] = {}
        for key in keys:
            status, headers, body = self._call(self._codec.build(spec, key=key))
            if status in self._codec.contract.missing_statuses:
                out[key] = None
                continue
            if not 200 <= status < 300:
                raise TargetError(f"reading {key} ({spec.method} {spec.path}) at {self._base} answered {status}: "
                                  f"{body[:200]!r}")
            assert spec.value is not None
            try:
                out[key] = HttpCodec.value(spec.value, headers, body)
            except BadReply as e:
                raise TargetError(f"reading {key} ({spec.method} {spec.path}) at {self._base}: {e}") from e
        return out

    def close(self) -> None:
        pass


class HttpResolver:
    """The contract's idempotency lookup, after the run (urllib, outside the load)."""

    def __init__(self, base_url: str, lookup: LookupCall, headers: Mapping[str, str], *, timeout: float = 10.0) -> None:
        self._url = BaseUrl.parse(base_url)
        self._base = redact_url(base_url.rstrip("/"))
        self._lookup = lookup
        self._headers = dict(headers)
        self._timeout = timeout

    def resolve(self, token: str) -> int | None:
        path = self._lookup.path.replace("{token}", quote(token, safe=""))
        try:
            status, headers, body = exchange(self._url, self._lookup.method, path,
                                             b"" if self._lookup.method != "GET" else None, self._headers,
                                             timeout=self._timeout)
        except (urllib.error.URLError, OSError) as e:
            raise TargetUnreachable(f"{self._base} is unreachable: {getattr(e, 'reason', e)}") from e
        if status in self._lookup.absent_statuses:
            return None
        if not 200 <= status < 300:
            raise TargetError(f"looking up {token} at {self._base} answered {status}: {body[:200]!r}")
        try:
            return HttpCodec.value(self._lookup.value, headers, body)
        except BadReply as e:
            raise TargetError(f"looking up {token} at {self._base}: {e}") from e

    def close(self) -> None:
        pass


def _resolver(scenario: ScenarioSpec, url: str) -> HttpResolver | None:
    t = scenario.target
    assert isinstance(t, HttpTarget)
    idem = t.contract.idempotency
    if idem is None or idem.lookup is None:
        return None
    return HttpResolver(url, idem.lookup, t.contract.headers)


def _admin(scenario: ScenarioSpec, url: str | None) -> HttpAdmin:
    assert url is not None and isinstance(scenario.target, HttpTarget)
    require_scheme(url, ("http", "https"), "http")
    return HttpAdmin(url, scenario.target.contract)


def _ops(scenario: ScenarioSpec, url: str, ctx: OpContext) -> HttpOps:
    t = scenario.target
    assert isinstance(t, HttpTarget)
    return HttpOps(t.contract, ctx.http(url, timeout=t.timeout), retries=t.retries)


def _local(scenario: ScenarioSpec, stack: ExitStack) -> LocalTarget:
    """The reference service, over the store the scenario names (started first, stopped last)."""
    from harness.stack.service import ReferenceService

    t = scenario.target
    assert isinstance(t, HttpTarget)
    store: Any = None
    if t.service.store == "redis":
        from harness.stack.redis import RedisServer

        store = stack.enter_context(RedisServer())
    elif t.service.store == "postgres" and t.service.patroni is not None:
        from harness.stack.patroni import PatroniCluster, PatroniSettings

        p = t.service.patroni
        store = stack.enter_context(PatroniCluster(nodes=p.nodes, settings=PatroniSettings(
            synchronous_mode=p.synchronous_mode, synchronous_mode_strict=p.synchronous_mode_strict, ttl=p.ttl,
            loop_wait=p.loop_wait, retry_timeout=p.retry_timeout)))
    elif t.service.store == "postgres" and t.service.replicas:
        from harness.stack.postgres_replica import PostgresReplicaSet

        store = stack.enter_context(PostgresReplicaSet(synchronous=t.service.synchronous))
    elif t.service.store == "postgres":
        from harness.stack.postgres import PostgresServer

        store = stack.enter_context(PostgresServer())
    elif t.service.store == "dynamodb":
        from harness.stack.dynalite import Dynalite

        store = stack.enter_context(Dynalite())
    server = stack.enter_context(ReferenceService(variant=t.variant, store=t.service.store,
                                                  store_url=store.url if store else None, workers=t.service.workers))
    return LocalTarget(scenario=scenario, url=server.url, servers={"target": server, "store": store})


BACKEND = Backend(kind="http", config=HttpTarget, admin=_admin, ops=_ops, local=_local, resolver=_resolver)
