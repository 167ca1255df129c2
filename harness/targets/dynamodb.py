"""The dynamodb target: UpdateItem ADD / SET +, conditional seats, and unsafe variants.

DynamoDB counters are not idempotent, so SDK retries are off by default
(``max_attempts: 1``). When a scenario enables them, every attempt of an op is
noted as it ends (botocore's ``needs-retry`` event): refused in a way that proves
nothing was applied (a refusal code, no connection), answered 2xx, or anything
else (a timeout, a reset, a 5xx: it may have been applied). An op is then what
its last attempt says only if every earlier attempt was refused; otherwise it is
indeterminate, with its attempt count.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field

from harness.core.errors import TargetError, TargetUnreachable
from harness.core.models import TargetConfig, Variant
from harness.core.ops import Completion, Outcome
from harness.core.secrets import redact_url
from harness.targets import Backend, LocalTarget, OpContext, app_work, workload_keys
from harness.targets.address import is_loopback_host, require_scheme
from harness.targets.classify import DYNAMODB_RULES, BadReply, NotSent, classify_dynamodb_error, classify_exception

if TYPE_CHECKING:
    from harness.core.models import ScenarioSpec

_NAME = r"^[A-Za-z0-9_.\-]{1,255}$"


class DynamoTarget(TargetConfig):
    """UpdateItem on DynamoDB or any DynamoDB-compatible endpoint (dynalite locally)."""

    kind: Literal["dynamodb"]  # dynamodb
    url: str | None = Field(default=None, description="endpoint URL; default: a local dynalite")
    region: str = "us-east-1"  # the AWS region (locally: any)
    table: str = Field(default="counterbench", pattern=_NAME)  # the table
    partition_key: str = Field(default="pk", pattern=_NAME)  # its partition key
    attribute: str = Field(default="counterValue", pattern=_NAME)  # the attribute that holds the counter
    update: Literal["add", "set"] = Field(default="add", description="ADD #v :n, or SET #v = #v + :n")
    returns: Literal["after", "before"] = Field(default="after", description="UPDATED_NEW or UPDATED_OLD")
    variant: Variant = "atomic"  # atomic (SET + ADD), or an unsafe variant
    shards: int = Field(default=1, ge=1, le=1000, description="write shards: N items, the total is their sum")
    max_attempts: int = Field(default=1, ge=1, le=10, description="SDK attempts; >1 can apply an op twice")
    timeout: float = Field(default=5.0, gt=0, le=300)  # seconds before an op is given up as indeterminate
    create_table: bool = Field(default=True, description="create the table (on demand) if it is missing")
    gap: float = Field(default=0.0, ge=0, le=1, description="unsafe variants: seconds between read and write")
    consistent_reads: bool = Field(default=True, description="workload.reads: GetItem ConsistentRead (false: "
                                                             "eventually consistent)")
    dynalite_path: str | None = Field(default=None,
                                      description="the local dynalite keeps its tables on disk here (default: memory)")

    network_faults: ClassVar[bool] = True

    @property
    def spread_keys(self) -> bool:
        return self.shards > 1  # spreading writes evenly is what shards are for

    def check(self, scenario: ScenarioSpec) -> None:
        if self.shards > 1 and (scenario.workload.spec.multi_key or scenario.workload.op != "incr"):
            raise ValueError("target.shards splits one counter; it is not for seats or page-views")
        if self.gap and self.variant == "atomic":
            raise ValueError("target.gap is the read-to-write delay of the unsafe variants; atomic has none")



AttrMap = dict[str, dict[str, str]]

LOCAL_CREDENTIALS = {"aws_access_key_id": "counterbench", "aws_secret_access_key": "counterbench"}


# attempts of the op under way in this thread (a greenlet under gevent, whose patching makes this local to it):
# True applied (2xx), False certainly not (refused, never connected), None it may have been
_attempts = threading.local()


def _note_attempt(response: Any = None, caught_exception: BaseException | None = None, **_: Any) -> None:
    """botocore ``needs-retry`` handler: runs after every attempt, the last included; decides nothing."""
    log: list[bool | None] | None = getattr(_attempts, "log", None)
    if log is None:
        return
    if caught_exception is not None:
        log.append(False if classify_exception(caught_exception, DYNAMODB_RULES).outcome is Outcome.FAIL else None)
        return
    parsed = response[1] if isinstance(response, tuple) and len(response) == 2 else {}
    status = parsed.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if isinstance(status, int) and 200 <= status < 300:
        log.append(True)
        return
    code = str(parsed.get("Error", {}).get("Code", ""))
    log.append(False if classify_dynamodb_error(code, "", status).outcome is Outcome.FAIL else None)


def dynamodb_client(*, url: str | None, region: str, timeout: float, max_attempts: int = 1, pool: int = 10) -> Any:
    """A botocore DynamoDB client; credentials from the standard AWS chain.

    A loopback endpoint (dynalite) checks no signature: it gets a placeholder pair and
    the chain is never consulted -- the chain may probe the EC2 metadata address,
    and counterbench sends nothing off this machine unless a scenario allows it.
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    kwargs: dict[str, Any] = {}
    if url is not None and is_loopback_host(urlsplit(url).hostname or ""):
        kwargs.update(LOCAL_CREDENTIALS)
    config = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"}, connect_timeout=timeout,
                    read_timeout=timeout, max_pool_connections=pool)
    client = session.client("dynamodb", endpoint_url=url, region_name=region or os.environ.get("AWS_REGION"),
                            config=config, **kwargs)
    if max_attempts > 1:  # each attempt's fate decides whether a retried op can still be ok or fail
        client.meta.events.register("needs-retry.dynamodb", _note_attempt)
    return client


def _number(attrs: Mapping[str, Any] | None, name: str) -> int | None:
    if not attrs or name not in attrs:
        return None
    raw = attrs[name].get("N") if isinstance(attrs[name], dict) else None
    if raw is None:
        raise BadReply(f"{name} is not a number: {attrs[name]!r:.60}")
    try:
        return int(raw)
    except ValueError as e:
        raise BadReply(f"{name} is not an integer: {raw!r:.40}") from e


def _attempts_of(meta_source: Mapping[str, Any]) -> int:
    return int(meta_source.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1


class DynamoOps:
    """An op client for one load user (the botocore client is shared by the process)."""

    tokens = False  # it sends no idempotency key: ``token`` is ignored

    def __init__(self, target: DynamoTarget, client: Any) -> None:
        self._t = target
        self._c = client
        self._names = {"#v": target.attribute}
        self._return = "UPDATED_NEW" if target.returns == "after" else "UPDATED_OLD"

    def _key(self, key: str) -> AttrMap:
        return {self._t.partition_key: {"S": key}}

    def _call(self, fn: Callable[[], dict[str, Any]], value: Callable[[dict[str, Any]], int | None]) -> Completion:
        from botocore.exceptions import ClientError

        log: list[bool | None] = []
        _attempts.log = log
        try:
            resp = fn()
            attempts = _attempts_of(resp)
            done = Completion.ok(value(resp))
        except ClientError as e:
            err = e.response.get("Error", {})
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            attempts = _attempts_of(e.response)
            done = classify_dynamodb_error(str(err.get("Code", "")), str(err.get("Message", "")), status)
        except Exception as e:
            attempts = 1
            done = classify_exception(e, DYNAMODB_RULES)
        finally:
            _attempts.log = None
        attempts = max(attempts, len(log))
        if attempts > 1:
            earlier = log[:attempts - 1] if len(log) == attempts else [None]  # unnoted: may have been applied
            if all(a is False for a in earlier):
                return done._replace(attempts=attempts)  # only the last attempt can have reached the table
            # an earlier attempt may have been applied as well: the op's effect is unknown
            reason = f"{attempts} attempts; last: {done.outcome.value}{': ' + done.error if done.error else ''}"
            return Completion(Outcome.INDETERMINATE, None, reason[:200], attempts)
        return done

    def _read(self, key: str) -> int:
        """The read of a read-modify-write; a failure here means nothing was written."""
        try:
            resp = self._c.get_item(TableName=self._t.table, Key=self._key(key), ConsistentRead=True)
            return _number(resp.get("Item"), self._t.attribute) or 0
        except Exception as e:
            raise NotSent(f"read before write failed: {e}") from e

    def incr(self, key: str, amount: int, *, token: str | None = None) -> Completion:
        t = self._t
        if t.variant == "read-modify-write":
            # deliberately unsafe: another user may write between the GetItem and the PutItem
            try:
                before = self._read(key)
            except NotSent as e:
                return classify_exception(e, DYNAMODB_RULES)
            if t.gap:
                app_work(t.gap)
            after = before + amount
            item = {**self._key(key), t.attribute: {"N": str(after)}}
            return self._call(lambda: self._c.put_item(TableName=t.table, Item=item),
                              lambda _: after if t.returns == "after" else before)
        expr = "ADD #v :n" if t.update == "add" else "SET #v = #v + :n"
        return self._call(
            lambda: self._c.update_item(TableName=t.table, Key=self._key(key), UpdateExpression=expr,
                                        ExpressionAttributeNames=self._names,
                                        ExpressionAttributeValues={":n": {"N": str(amount)}},
                                        ReturnValues=self._return),
            lambda r: _number(r.get("Attributes"), t.attribute))

    def read(self, key: str) -> Completion:
        """GetItem, strongly or eventually consistent as the target says."""
        try:
            resp = self._c.get_item(TableName=self._t.table, Key=self._key(key),
                                    ConsistentRead=self._t.consistent_reads)
            return Completion.ok(_number(resp.get("Item"), self._t.attribute) or 0)
        except Exception as e:
            from botocore.exceptions import ClientError

            if isinstance(e, ClientError):
                err = e.response.get("Error", {})
                return classify_dynamodb_error(str(err.get("Code", "")), str(err.get("Message", "")),
                                               e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
            return classify_exception(e, DYNAMODB_RULES)

    def decr_if_positive(self, key: str, *, token: str | None = None) -> Completion:
        t = self._t
        values = {":one": {"N": "1"}}
        condition: dict[str, Any] = {}
        if t.variant == "check-then-act":
            # deliberately unsafe: the seat may be gone between the GetItem and the UpdateItem
            try:
                current = self._read(key)
            except NotSent as e:
                return classify_exception(e, DYNAMODB_RULES)
            if current <= 0:
                return Completion.fail("sold out")
            if t.gap:
                app_work(t.gap)
        else:
            condition = {"ConditionExpression": "#v > :zero"}
            values[":zero"] = {"N": "0"}
        return self._call(
            lambda: self._c.update_item(TableName=t.table, Key=self._key(key), UpdateExpression="SET #v = #v - :one",
                                        ExpressionAttributeNames=self._names, ExpressionAttributeValues=values,
                                        ReturnValues=self._return, **condition),
            lambda r: _number(r.get("Attributes"), t.attribute))

    def close(self) -> None:
        pass


class DynamoAdmin:
    """Setup and strongly consistent final reads of counter items."""

    def __init__(self, client: Any, *, table: str, key_of: Callable[[str], AttrMap], attribute: str,
                 key_schema: Sequence[str], create_table: bool, where: str) -> None:
        self._c = client
        self._table = table
        self._key_of = key_of
        self._attr = attribute
        self._schema = list(key_schema)
        self._create = create_table
        self._where = where

    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return fn()
        except EndpointConnectionError as e:
            raise TargetUnreachable(f"DynamoDB at {self._where} is unreachable: {e}") from e
        except (ClientError, BotoCoreError) as e:
            raise TargetError(f"DynamoDB at {self._where}: {what} failed: {e}") from e

    def _ensure_table(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._c.describe_table(TableName=self._table)
            return
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException" or not self._create:
                raise
        types = ["HASH", "RANGE"]
        self._c.create_table(
            TableName=self._table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": n, "KeyType": types[i]} for i, n in enumerate(self._schema)],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in self._schema])
        self._c.get_waiter("table_exists").wait(TableName=self._table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    def setup(self, initial: Mapping[str, int]) -> None:
        self._guard("creating the table", self._ensure_table)
        items = [{"PutRequest": {"Item": {**self._key_of(k), self._attr: {"N": str(v)}}}} for k, v in initial.items()]
        for i in range(0, len(items), 25):
            chunk = {self._table: items[i:i + 25]}
            while chunk:
                resp = self._guard("setting the initial values",
                                   lambda c=chunk: self._c.batch_write_item(RequestItems=c))  # type: ignore[misc]
                chunk = resp.get("UnprocessedItems") or {}

    def read(self, keys: Sequence[str]) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for key in keys:
            resp = self._guard("reading the final values", lambda k=key: self._c.get_item(  # type: ignore[misc]
                TableName=self._table, Key=self._key_of(k), ConsistentRead=True))
            try:
                out[key] = _number(resp.get("Item"), self._attr)
            except BadReply as e:
                raise TargetError(f"DynamoDB at {self._where}: {key}: {e}") from e
        return out

    def close(self) -> None:
        pass


def _admin(scenario: ScenarioSpec, url: str | None) -> DynamoAdmin:
    t = scenario.target
    assert isinstance(t, DynamoTarget)
    if url is not None:
        require_scheme(url, ("http", "https"), "dynamodb")
    client = dynamodb_client(url=url, region=t.region, timeout=10)
    return DynamoAdmin(client, table=t.table, key_of=lambda k: {t.partition_key: {"S": k}},
                       attribute=t.attribute, key_schema=[t.partition_key], create_table=t.create_table,
                       where=redact_url(url) if url else f"AWS {t.region}")


def _ops(scenario: ScenarioSpec, url: str, ctx: OpContext) -> DynamoOps:
    t = scenario.target
    assert isinstance(t, DynamoTarget)
    # one botocore client per load process: heavy to build, safe to share
    client = ctx.shared("dynamodb", lambda: dynamodb_client(
        url=url or None, region=t.region, timeout=t.timeout, max_attempts=t.max_attempts,
        pool=max(10, scenario.load.users)))
    return DynamoOps(t, client)


def _local(scenario: ScenarioSpec, stack: ExitStack) -> LocalTarget:
    from harness.stack.dynalite import Dynalite

    t = scenario.target
    assert isinstance(t, DynamoTarget)
    path = Path(t.dynalite_path) if t.dynalite_path else None
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    server = stack.enter_context(Dynalite(path=path))
    return LocalTarget(scenario=scenario, url=server.url, servers={"target": server, "store": None})


def _keys(scenario: ScenarioSpec, run_id: str) -> list[str]:
    """Write shards: N items per counter, the total their sum."""
    t = scenario.target
    keys = workload_keys(scenario, run_id)
    if isinstance(t, DynamoTarget) and t.shards > 1:
        return [f"{k}#{i}" for k in keys for i in range(t.shards)]
    return keys


BACKEND = Backend(kind="dynamodb", config=DynamoTarget, admin=_admin, ops=_ops, local=_local, keys=_keys)
