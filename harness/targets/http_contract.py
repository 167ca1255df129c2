"""The http target's contract: how to speak to a counter service (pure: build requests, read answers).

``HttpContract`` describes the calls (increment, decrement-if-positive, set, read, and an
idempotency lookup), ``BaseUrl`` how a base URL's path, query and credentials reach every
request, ``HttpCodec`` how a request is built and a value read back from an answer.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, model_validator

from harness.core.models import Frozen
from harness.core.ops import Completion
from harness.targets.classify import HTTP_RULES, BadReply, classify_exception, classify_http_status


class ValueSpec(Frozen):
    """Where the counter value is in an answer: exactly one of the fields."""

    json_pointer: str | None = Field(default=None, description="e.g. /value or /data/count")
    regex: str | None = Field(default=None, description="first group is the integer")
    plain: bool = False  # the whole body is the number
    header: str | None = None  # the number is in this response header

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

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]  # the HTTP method
    path: str  # with {key}, {amount}, {value} placeholders
    body: str | None = None  # the request body, same placeholders
    content_type: str = "application/json"  # of the body
    value: ValueSpec | None = None  # where the counter value is in the answer

    @model_validator(mode="after")
    def _path(self) -> HttpCall:
        if not self.path.startswith("/"):
            raise ValueError("path must start with '/'")
        if "{key}" not in self.path:
            raise ValueError("path must contain {key}")
        return self


_JSON_VALUE = ValueSpec(json_pointer="/value")


class LookupCall(Frozen):
    """After the run: was the op with this idempotency key applied? Placeholder: {token}.

    The answer must be final: a service answers "not applied" (``absent_statuses``) only when it will
    never apply that key from then on (it fences it), or a late retry could still land after the lookup.
    """

    method: Literal["GET", "POST", "PUT"] = "POST"  # the HTTP method
    path: str = "/idempotency/{token}/resolve"  # with the {token} placeholder
    value: ValueSpec = _JSON_VALUE  # where the answer says the value the op left
    absent_statuses: tuple[int, ...] = (404,)  # statuses meaning no op with that key was applied

    @model_validator(mode="after")
    def _path(self) -> LookupCall:
        if not self.path.startswith("/") or "{token}" not in self.path:
            raise ValueError("the lookup path starts with '/' and holds {token}")
        return self


class Idempotency(Frozen):
    """The service honours an idempotency key: a request repeated with the same key answers the first
    result without applying again. The client sends one key per op, the same on every retry."""

    header: str = "Idempotency-Key"  # the request header that carries each op's key
    lookup: LookupCall | None = LookupCall()  # resolve the uncertain ops after the run (None: do not)


class HttpContract(Frozen):
    """How to speak to an HTTP counter service. Defaults: the reference contract."""

    # the call that adds {amount}
    increment: HttpCall = HttpCall(
        method="POST", path="/counters/{key}/increment", body='{"amount": {amount}}', value=_JSON_VALUE
    )
    # the call that takes one if positive (seats)
    decrement: HttpCall = HttpCall(
        method="POST", path="/counters/{key}/decrement-if-positive", value=_JSON_VALUE
    )
    set: HttpCall | None = Field(
        default=HttpCall(method="PUT", path="/counters/{key}", body='{"value": {value}}'),
        description="null: the service has no setter; each key's value is read before the load and taken as "
                    "its initial value (a missing key, one of missing_statuses, counts as 0)")
    # the call that reads the counter
    read: HttpCall = HttpCall(method="GET", path="/counters/{key}", value=_JSON_VALUE)
    fail_statuses: tuple[int, ...] = (400, 404, 409, 429)  # statuses proving nothing was applied
    missing_statuses: tuple[int, ...] = (404,)  # read statuses meaning no such counter (0)
    headers: Mapping[str, str] = Field(default_factory=dict)  # headers sent with every request
    idempotency: Idempotency | None = Field(default=None, description="the service honours idempotency keys")

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
