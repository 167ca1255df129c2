"""Build a target's admin or op client from a validated scenario and an address."""

from __future__ import annotations

from harness.config import HttpTarget, RedisTarget, Scenario
from harness.targets import TargetAdmin
from harness.targets.address import require_scheme
from harness.targets.http import HttpAdmin
from harness.targets.redis import RedisAddress, RedisAdmin, RedisOps


def make_admin(scenario: Scenario, url: str) -> TargetAdmin:
    t = scenario.target
    if isinstance(t, RedisTarget):
        require_scheme(url, ("redis",), "redis")
        return RedisAdmin(RedisAddress.parse(url))
    assert isinstance(t, HttpTarget)
    require_scheme(url, ("http", "https"), "http")
    return HttpAdmin(url, t.contract)


def make_redis_ops(scenario: Scenario, url: str) -> RedisOps:
    t = scenario.target
    assert isinstance(t, RedisTarget)
    return RedisOps(RedisAddress.parse(url), variant=t.variant, timeout=t.timeout, gap=t.gap)
