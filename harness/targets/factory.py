"""Build a target's admin or op client from a validated scenario and an address."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from harness.config import ApiGatewayTarget, DynamoTarget, HttpTarget, RedisTarget, Scenario
from harness.secrets import redact_url
from harness.targets import Deadlines, TargetAdmin
from harness.targets.address import is_loopback_host, require_scheme
from harness.targets.dynamodb import DynamoAdmin, DynamoOps, dynamodb_client
from harness.targets.http import HttpAdmin
from harness.targets.redis import RedisAddress, RedisAdmin, RedisOps


def make_admin(scenario: Scenario, url: str | None) -> TargetAdmin:
    t = scenario.target
    if isinstance(t, RedisTarget):
        assert url is not None
        require_scheme(url, ("redis",), "redis")
        return RedisAdmin(RedisAddress.parse(url))
    if isinstance(t, HttpTarget):
        assert url is not None
        require_scheme(url, ("http", "https"), "http")
        return HttpAdmin(url, t.contract)
    if isinstance(t, DynamoTarget):
        if url is not None:
            require_scheme(url, ("http", "https"), "dynamodb")
        client = dynamodb_client(url=url, region=t.region, timeout=10)
        return DynamoAdmin(client, table=t.table, key_of=lambda k: {t.partition_key: {"S": k}},
                           attribute=t.attribute, key_schema=[t.partition_key], create_table=t.create_table,
                           where=redact_url(url) if url else f"AWS {t.region}")
    assert isinstance(t, ApiGatewayTarget)
    item = t.item
    local = item.url is not None and is_loopback_host(urlsplit(item.url).hostname or "")
    client = dynamodb_client(url=item.url, region=item.region, timeout=10)
    key = {name: {"S": value} for name, value in item.key.items()}
    # locally the stack creates the table the templates name; in AWS `counterbench aws deploy` did
    return DynamoAdmin(client, table=item.table, key_of=lambda _k: key, attribute=item.attribute,
                       key_schema=list(item.key), create_table=local,
                       where=redact_url(item.url) if item.url else f"AWS {item.region}")


def make_redis_ops(scenario: Scenario, url: str, *, deadlines: Deadlines | None = None) -> RedisOps:
    t = scenario.target
    assert isinstance(t, RedisTarget)
    return RedisOps(RedisAddress.parse(url), variant=t.variant, timeout=t.timeout, gap=t.gap, deadlines=deadlines)


def make_dynamo_ops(scenario: Scenario, client: Any) -> DynamoOps:
    assert isinstance(scenario.target, DynamoTarget)
    return DynamoOps(scenario.target, client)
