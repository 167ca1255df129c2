"""The http target: any counter service described by an HttpContract.

``HttpCodec`` is pure (build requests, read values from answers); ``HttpOps``
drives it over a transport (in load: a keep-alive connection, see keepalive.py); ``HttpAdmin``
sets up and reads final values with the standard library, outside the load.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, model_validator

from harness.errors import TargetError, TargetUnreachable
from harness.models import Frozen, TargetConfig, Variant
from harness.ops import Completion
from harness.secrets import redact_url
from harness.targets import Backend, LocalTarget, OpContext, Transport
from harness.targets.address import require_scheme
from harness.targets.classify import HTTP_RULES, BadReply, classify_exception, classify_http_status

if TYPE_CHECKING:
    from harness.config.scenario import Scenario

__all__ = ["BACKEND", "BaseUrl", "HttpAdmin", "HttpCall", "HttpCodec", "HttpContract", "HttpOps", "HttpTarget",
           "ServiceSpec", "Transport", "ValueSpec"]


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


class ServiceSpec(Frozen):
    """The local reference service counterbench starts when an http target has no URL."""

    store: Literal["memory", "redis", "postgres", "dynamodb"] = "memory"
    workers: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _workers(self) -> ServiceSpec:
        if self.store == "memory" and self.workers > 1:
            raise ValueError("the memory store lives in one process: workers must be 1")
        return self


class HttpTarget(TargetConfig):
    kind: Literal["http"]
    url: str | None = Field(default=None, description="base URL; default: the local reference service")
    variant: Variant = Field(default="atomic", description="of the local reference service")
    timeout: float = Field(default=5.0, gt=0, le=300)
    contract: HttpContract = HttpContract()
    service: ServiceSpec = ServiceSpec()

    network_faults: ClassVar[bool] = True

    @property
    def has_store(self) -> bool:
        return self.service.store != "memory"




@dataclass(frozen=True, kw_only=True)
class BaseUrl:
    """A service's base URL, split for building requests: ``http://u:p@host:port/prefix?api_key=...``.

    Each request goes to ``prefix + call path``, with the base URL's query after the call's own (an
    API key in the query reaches every request), and a user and password become Basic auth.
    """

    origin: str  # scheme://host[:port]
    prefix: str  # the base path, without a trailing "/"
    query: str
    authorization: str | None

    @staticmethod
    def parse(url: str) -> BaseUrl:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
        auth = None
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
            auth = "Basic " + base64.b64encode(pair).decode()
        return BaseUrl(origin=f"{parts.scheme}://{netloc}", prefix=parts.path.rstrip("/"), query=parts.query,
                       authorization=auth)

    def path(self, call_path: str) -> str:
        path = self.prefix + call_path
        if not self.query:
            return path
        return path + ("&" if "?" in path else "?") + self.query

    def headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        if self.authorization is None or any(k.lower() == "authorization" for k in headers):
            return headers
        return {**headers, "Authorization": self.authorization}


@dataclass(frozen=True, kw_only=True)
class Request:
    method: str
    path: str
    body: bytes | None
    headers: Mapping[str, str]


class HttpCodec:
    def __init__(self, contract: HttpContract) -> None:
        self.contract = contract

    def build(self, call: HttpCall, *, key: str, amount: int = 0, value: int = 0) -> Request:
        path = call.path.replace("{key}", quote(key, safe=":")).replace("{amount}", str(amount))
        body = None
        headers = dict(self.contract.headers)
        if call.body is not None:
            text = call.body.replace("{key}", key).replace("{amount}", str(amount)).replace("{value}", str(value))
            body = text.encode()
            headers.setdefault("Content-Type", call.content_type)
        return Request(method=call.method, path=path, body=body, headers=headers)

    @staticmethod
    def value(spec: ValueSpec, headers: Mapping[str, str], body: bytes) -> int:
        """The counter value in an answer; BadReply when it is not there."""
        if spec.header is not None:
            raw: Any = _header(headers, spec.header)
            if raw is None:
                raise BadReply(f"no {spec.header} header")
        elif spec.json_pointer is not None:
            try:
                raw = _pointer(json.loads(body), spec.json_pointer)
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise BadReply(f"no integer at JSON pointer {spec.json_pointer}: {body[:60]!r}") from e
        elif spec.regex is not None:
            m = re.search(spec.regex, body.decode("utf-8", "replace"))
            if m is None:
                raise BadReply(f"regex did not match: {body[:60]!r}")
            raw = m.group(1)
        else:
            raw = body.decode("utf-8", "replace").strip()
        return _to_int(raw)

    def completion(self, call: HttpCall, status: int, headers: Mapping[str, str], body: bytes) -> Completion:
        """Classify an answer: a 2xx must carry a value, or the op is indeterminate."""
        by_status = classify_http_status(status, self.contract.fail_statuses)
        if by_status is not None:
            return by_status
        assert call.value is not None  # the contract validates it
        try:
            return Completion.ok(self.value(call.value, headers, body))
        except BadReply as e:
            return classify_exception(e, HTTP_RULES)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


def _pointer(doc: Any, pointer: str) -> Any:
    for part in pointer.split("/")[1:] if pointer else []:
        part = part.replace("~1", "/").replace("~0", "~")
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _to_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise BadReply(f"not an integer: {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
        return int(raw)
    raise BadReply(f"not an integer: {raw!r:.60}")


class HttpOps:
    """An op client for one load user over a transport."""

    def __init__(self, contract: HttpContract, transport: Transport) -> None:
        self._codec = HttpCodec(contract)
        self._send = transport

    def _do(self, call: HttpCall, key: str, amount: int) -> Completion:
        req = self._codec.build(call, key=key, amount=amount)
        try:
            status, headers, body = self._send(req.method, req.path, req.body, req.headers)
        except Exception as e:
            return classify_exception(e, HTTP_RULES)
        return self._codec.completion(call, status, headers, body)

    def incr(self, key: str, amount: int) -> Completion:
        return self._do(self._codec.contract.increment, key, amount)

    def decr_if_positive(self, key: str) -> Completion:
        return self._do(self._codec.contract.decrement, key, -1)

    def close(self) -> None:
        close = getattr(self._send, "close", None)  # a connection-owning transport
        if close is not None:
            close()


class HttpAdmin:
    """Setup and final reads with urllib (no gevent needed)."""

    def __init__(self, base_url: str, contract: HttpContract, *, timeout: float = 10.0) -> None:
        self._url = BaseUrl.parse(base_url)
        self._base = redact_url(base_url.rstrip("/"))  # as messages show it
        self._codec = HttpCodec(contract)
        self._timeout = timeout

    def _call(self, req: Request) -> tuple[int, Mapping[str, str], bytes]:
        r = urllib.request.Request(self._url.origin + self._url.path(req.path), data=req.body, method=req.method,
                                   headers=dict(self._url.headers(req.headers)))
        try:
            with urllib.request.urlopen(r, timeout=self._timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read()
        except (urllib.error.URLError, OSError) as e:
            raise TargetUnreachable(f"{self._base} is unreachable: {getattr(e, 'reason', e)}") from e

    def setup(self, initial: Mapping[str, int]) -> None:
        for key, value in initial.items():
            status, _, body = self._call(self._codec.build(self._codec.contract.set, key=key, value=value))
            if not 200 <= status < 300:
                raise TargetError(f"setting {key} to {value} at {self._base} answered {status}: {body[:200]!r}")

    def read(self, keys: Sequence[str]) -> dict[str, int | None]:
        spec = self._codec.contract.read
        out: dict[str, int | None] = {}
        for key in keys:
            status, headers, body = self._call(self._codec.build(spec, key=key))
            if status in self._codec.contract.missing_statuses:
                out[key] = None
                continue
            if not 200 <= status < 300:
                raise TargetError(f"reading {key} at {self._base} answered {status}: {body[:200]!r}")
            assert spec.value is not None
            try:
                out[key] = HttpCodec.value(spec.value, headers, body)
            except BadReply as e:
                raise TargetError(f"reading {key} at {self._base}: {e}") from e
        return out

    def close(self) -> None:
        pass


def _admin(scenario: Scenario, url: str | None) -> HttpAdmin:
    assert url is not None and isinstance(scenario.target, HttpTarget)
    require_scheme(url, ("http", "https"), "http")
    return HttpAdmin(url, scenario.target.contract)


def _ops(scenario: Scenario, url: str, ctx: OpContext) -> HttpOps:
    t = scenario.target
    assert isinstance(t, HttpTarget)
    return HttpOps(t.contract, ctx.http(url, timeout=t.timeout))


def _local(scenario: Scenario, stack: ExitStack) -> LocalTarget:
    """The reference service, over the store the scenario names (started first, stopped last)."""
    from harness.stack.service import ReferenceService

    t = scenario.target
    assert isinstance(t, HttpTarget)
    store: Any = None
    if t.service.store == "redis":
        from harness.stack.redis import RedisServer

        store = stack.enter_context(RedisServer())
    elif t.service.store == "postgres":
        from harness.stack.postgres import PostgresServer

        store = stack.enter_context(PostgresServer())
    elif t.service.store == "dynamodb":
        from harness.stack.dynalite import Dynalite

        store = stack.enter_context(Dynalite())
    server = stack.enter_context(ReferenceService(variant=t.variant, store=t.service.store,
                                                  store_url=store.url if store else None, workers=t.service.workers))
    return LocalTarget(scenario=scenario, url=server.url, servers={"target": server, "store": store})


BACKEND = Backend(kind="http", config=HttpTarget, admin=_admin, ops=_ops, local=_local)
