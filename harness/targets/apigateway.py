"""The apigateway target: POST to a stage URL whose integration calls DynamoDB.

The answer is the plain number the seed article's response template produces.
A 200 without a number (API Gateway's answer to an unmapped DynamoDB error) is
indeterminate, never ok. Setup and final reads go to DynamoDB directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field

from harness.core.models import Frozen, TargetConfig
from harness.core.ops import Completion
from harness.core.secrets import redact_url
from harness.core.shipped import locate
from harness.targets import Backend, LocalTarget, OpContext, Transport
from harness.targets.address import is_loopback_host
from harness.targets.classify import HTTP_RULES, BadReply, classify_exception, classify_http_status
from harness.targets.dynamodb import _NAME, DynamoAdmin, dynamodb_client
from harness.targets.http import HttpCodec, ValueSpec

if TYPE_CHECKING:
    from harness.core.models import ScenarioSpec


class DynamoItem(Frozen):
    """The one item an API's templates update, for setup and final reads."""

    table: str = Field(pattern=_NAME)  # the table
    key: Mapping[str, str] = Field(description="attribute -> string value, as in the template's Key")
    attribute: str = Field(pattern=_NAME)  # the attribute that holds the counter
    region: str = "us-east-1"  # the AWS region
    url: str | None = Field(default=None, description="DynamoDB endpoint; default: the local dynalite")


class ApiGatewayTarget(TargetConfig):
    """HTTP POST to a REST API whose integration calls DynamoDB (the seed article's design)."""

    kind: Literal["apigateway"]  # apigateway
    url: str | None = Field(default=None, description="stage URL; default: the local API Gateway emulator")
    api: str = Field(default="apigateway/counter-api.yaml", description="the REST API definition")
    path: str = Field(default="/counter", pattern=r"^/")  # the API's resource path
    item: DynamoItem  # the item the API updates (setup, final read)
    returns: Literal["after", "before"] = "before"  # the value before the update (UPDATED_OLD) or after
    api_key_env: str | None = Field(default=None, description="environment variable holding an x-api-key")
    sigv4: bool = Field(default=False, description="sign requests with the standard AWS credential chain")
    timeout: float = Field(default=5.0, gt=0, le=300)  # seconds before a request is given up as indeterminate
    variant: Literal["atomic"] = "atomic"  # always atomic: the API's own UpdateItem
    fail_statuses: tuple[int, ...] = (400, 403, 404, 409, 429)  # statuses proving nothing was applied

    network_faults: ClassVar[bool] = True
    reads: ClassVar[bool] = False  # the API's methods update; reading goes to DynamoDB, not through the API

    @property
    def has_store(self) -> bool:
        return True  # DynamoDB behind the API

    def check(self, scenario: ScenarioSpec) -> None:
        if scenario.workload.spec.multi_key or not scenario.workload.spec.fixed_amount:
            raise ValueError("an API's templates update one fixed item by a fixed amount: use counter, "
                             "unique-ids or seats")



PLAIN = ValueSpec(plain=True)

# (method, url, body, headers) -> headers with SigV4 added
Signer = Callable[[str, str, bytes, Mapping[str, str]], dict[str, str]]


def sigv4_signer(region: str) -> Signer:
    """Sign for execute-api with the standard AWS credential chain (IAM-authorised APIs)."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    creds = botocore.session.get_session().get_credentials()
    if creds is None:
        from harness.core.errors import ConfigError

        raise ConfigError("sigv4: no AWS credentials in the standard chain (environment, profile, role)")

    def sign(method: str, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(creds.get_frozen_credentials(), "execute-api", region).add_auth(req)
        return dict(req.headers.items())

    return sign


class ApiGatewayOps:
    tokens = False  # it sends no idempotency key: ``token`` is ignored

    def __init__(self, target: ApiGatewayTarget, base_url: str, transport: Transport,
                 signer: Signer | None = None) -> None:
        self._t = target
        self._send = transport
        self._url = base_url.rstrip("/") + target.path
        self._path = urlsplit(self._url).path
        self._sign = signer
        self._headers = {"Content-Type": "application/json"}
        if target.api_key_env:
            self._headers["x-api-key"] = os.environ.get(target.api_key_env, "")

    def _post(self) -> Completion:
        body = b"{}"
        headers = self._sign("POST", self._url, body, self._headers) if self._sign else self._headers
        try:
            status, resp_headers, answer = self._send("POST", self._path, body, headers)
        except Exception as e:
            return classify_exception(e, HTTP_RULES)
        by_status = classify_http_status(status, self._t.fail_statuses)
        if by_status is not None:
            return by_status
        try:
            return Completion.ok(HttpCodec.value(PLAIN, resp_headers, answer))
        except BadReply as e:
            return classify_exception(e, HTTP_RULES)

    def incr(self, key: str, amount: int, *, token: str | None = None) -> Completion:
        # the method's template fixes the item and the amount (+1); key and amount are for the history
        return self._post()

    def decr_if_positive(self, key: str, *, token: str | None = None) -> Completion:
        return self._post()

    def read(self, key: str) -> Completion:
        return Completion.fail("the API has no read method (the scenario check refuses workload.reads)")

    def close(self) -> None:
        pass


def _admin(scenario: ScenarioSpec, url: str | None) -> DynamoAdmin:
    """Setup and final reads go to the item in DynamoDB directly, not through the API."""
    t = scenario.target
    assert isinstance(t, ApiGatewayTarget)
    item = t.item
    local = item.url is not None and is_loopback_host(urlsplit(item.url).hostname or "")
    client = dynamodb_client(url=item.url, region=item.region, timeout=10)
    key = {name: {"S": value} for name, value in item.key.items()}
    # locally the stack creates the table the templates name; in AWS `counterbench aws deploy` did
    return DynamoAdmin(client, table=item.table, key_of=lambda _k: key, attribute=item.attribute,
                       key_schema=list(item.key), create_table=local,
                       where=redact_url(item.url) if item.url else f"AWS {item.region}")


def _ops(scenario: ScenarioSpec, url: str, ctx: OpContext) -> ApiGatewayOps:
    t = scenario.target
    assert isinstance(t, ApiGatewayTarget)
    parts = urlsplit(url)
    signer = sigv4_signer(t.item.region) if t.sigv4 else None
    return ApiGatewayOps(t, url, ctx.http(f"{parts.scheme}://{parts.netloc}", timeout=t.timeout), signer)


def _local(scenario: ScenarioSpec, stack: ExitStack) -> LocalTarget:
    """dynalite, and the emulator executing the API definition against it."""
    from harness.stack.apigateway.server import ApiGatewayEmulator
    from harness.stack.dynalite import Dynalite

    t = scenario.target
    assert isinstance(t, ApiGatewayTarget)
    store = stack.enter_context(Dynalite())
    server = stack.enter_context(ApiGatewayEmulator(definition=locate(t.api), dynamodb_url=store.url,
                                                    region=t.item.region))
    pointed = t.model_copy(update={"item": t.item.model_copy(update={"url": store.url})})
    return LocalTarget(scenario=scenario.model_copy(update={"target": pointed}), url=server.url,
                       servers={"target": server, "store": store})


def _keys(scenario: ScenarioSpec, run_id: str) -> list[str]:
    """The API's templates update one fixed item."""
    t = scenario.target
    assert isinstance(t, ApiGatewayTarget)
    return [f"{t.item.table}:" + ":".join(t.item.key.values())]


BACKEND = Backend(kind="apigateway", config=ApiGatewayTarget, admin=_admin, ops=_ops, local=_local, keys=_keys)
