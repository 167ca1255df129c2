"""A partitioned Redis stack: which proxies a partition stalls, and how the load finds its own path to the
primary a Sentinel names by its inter-server (peer proxy) address."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from harness.config import load_scenarios
from harness.core.errors import ConfigError, SafetyError, StackError
from harness.stack.redis_sentinel import RedisReplicaSet
from harness.targets.redis import BACKEND
from harness.targets.resp import RedisAddress, Route

T = TypeVar("T")

URL = ("redis+sentinel://127.0.0.1:26001,127.0.0.1:26002/cb/0"
       "?route=127.0.0.1:7000>127.0.0.1:8000|127.0.0.1:9000&route=127.0.0.1:7001>127.0.0.1:8001|127.0.0.1:9001")


# --- routes in the URL -------------------------------------------------------------------------------

def test_a_route_reads_and_writes_the_same_text():
    r = Route.parse("127.0.0.1:7000>127.0.0.1:8000|127.0.0.1:9000")
    assert r.announced == ("127.0.0.1", 7000) and r.paths == (("127.0.0.1", 8000), ("127.0.0.1", 9000))
    assert Route.parse(r.text()) == r


@pytest.mark.parametrize("text", ["127.0.0.1:7000", "127.0.0.1:7000>", "7000>127.0.0.1:8000", "a:b>c:1"])
def test_a_malformed_route_is_a_configuration_error(text):
    with pytest.raises(ConfigError, match="redis target URL"):
        RedisAddress.parse(f"redis+sentinel://127.0.0.1:26001/cb/0?route={text}")


def test_without_routes_a_client_goes_where_the_sentinel_says():
    a = RedisAddress.parse("redis+sentinel://127.0.0.1:26001/cb/0")
    assert a.routes == () and a.sides == 1 and a.reach("127.0.0.1", 7000) == ("127.0.0.1", 7000)


def test_each_side_takes_its_own_path_to_the_server_the_sentinel_names():
    a = RedisAddress.parse(URL)
    assert a.sides == 2 and a.side == 0  # setup and the final read: side 0
    assert a.reach("127.0.0.1", 7001) == ("127.0.0.1", 8001)
    assert a.on_side(1).reach("127.0.0.1", 7001) == ("127.0.0.1", 9001)
    assert a.on_side(4).reach("127.0.0.1", 7000) == ("127.0.0.1", 8000)  # users alternate: modulo the sides


def test_a_server_without_a_route_is_refused_not_reached_by_the_servers_own_link():
    with pytest.raises(ConnectionError, match=r"no route to 127.0.0.1:7002, which the Sentinel named"):
        RedisAddress.parse(URL).reach("127.0.0.1", 7002)


def test_a_route_must_lead_to_a_loopback_address_too():
    a = RedisAddress.parse("redis+sentinel://127.0.0.1:26001/cb/0?route=127.0.0.1:7000>10.0.0.9:8000")
    with pytest.raises(SafetyError, match=r"10\.0\.0\.9:8000"):
        a.reach("127.0.0.1", 7000)


class _Context:
    """What a load process lends the op clients it builds (only what the redis backend uses)."""

    def __init__(self) -> None:
        self._shared: dict[str, object] = {}
        self.deadlines = None

    def shared(self, name: str, build: Callable[[], T]) -> T:
        if name not in self._shared:
            self._shared[name] = build()
        return self._shared[name]  # type: ignore[return-value]


def test_users_of_a_load_process_alternate_between_the_sides(tmp_path):
    scenario = _scenario(tmp_path, "[{at: 1, action: partition, duration: 2, clients: split}]")
    ctx = _Context()
    ops = [BACKEND.ops(scenario, URL, ctx) for _ in range(4)]
    try:
        assert [o._conn._addr.side for o in ops] == [0, 1, 0, 1]
    finally:
        for o in ops:
            o.close()


# --- the stack: the routes it hands the load, the proxies a partition stalls --------------------------

@pytest.fixture
def stack() -> Iterator[RedisReplicaSet]:
    rs = RedisReplicaSet(replicas=2, sentinels=3, client_proxies=True)  # built, not started
    try:
        yield rs
    finally:
        rs.stop()


def test_every_node_is_known_to_the_others_by_its_peer_proxy(stack):
    for node in stack.nodes:
        assert node.peer.upstream == ("127.0.0.1", node.server.port)
        assert node.server.settings["replica-announce-port"] == str(node.peer.port)
    assert {s.primary_port for s in stack.sentinels} == {stack.nodes[0].peer.port}
    assert {s.quorum for s in stack.sentinels} == {2}  # a majority of three
    # the replicas' first links: each through its own replication proxy in front of the first primary
    assert [r.upstream_port for r in stack.replicas] == [p.port for p in stack.replication_proxies]
    assert {p.upstream for p in stack.replication_proxies} == {("127.0.0.1", stack.primary.port)}


def test_the_load_gets_a_route_per_node_from_its_peer_address_to_its_client_proxies(stack):
    a = RedisAddress.parse(stack.url)
    assert a.sentinels == tuple(("127.0.0.1", s.port) for s in stack.sentinels)
    for node in stack.nodes:
        assert [a.on_side(i).reach("127.0.0.1", node.peer.port) for i in (0, 1)] == \
            [("127.0.0.1", c.port) for c in node.clients]
        assert {c.upstream for c in node.clients} == {("127.0.0.1", node.server.port)}


def test_without_partitions_the_load_goes_to_each_node_directly():
    rs = RedisReplicaSet(replicas=1)
    try:
        a = RedisAddress.parse(rs.url)
        assert a.sides == 1
        assert [a.reach("127.0.0.1", n.peer.port) for n in rs.nodes] == [("127.0.0.1", n.server.port)
                                                                           for n in rs.nodes]
        assert all(n.clients == () for n in rs.nodes)
        with pytest.raises(StackError, match="clients: cut needs the load's own proxies"):
            rs.partition_proxies(rs.primary, clients="cut")
    finally:
        rs.stop()


def test_min_replicas_is_set_on_every_node_so_a_promoted_replica_keeps_it():
    rs = RedisReplicaSet(replicas=2, min_replicas=(1, 2))
    try:
        assert {(s.settings["min-replicas-to-write"], s.settings["min-replicas-max-lag"]) for s in rs.servers} \
            == {("1", "2")}
    finally:
        rs.stop()


@pytest.mark.parametrize(("clients", "sides"), [("keep", []), ("split", [1]), ("cut", [0, 1])])
def test_a_partition_of_the_first_primary_stalls_every_link_to_it_and_the_load_paths_clients_says(
        stack, clients, sides):
    node = stack.nodes[0]
    expected = [node.peer, *stack.replication_proxies, *(node.clients[i] for i in sides)]
    assert stack.partition_proxies(stack.primary, clients=clients) == expected


def test_a_partition_of_a_promoted_replica_stalls_its_peer_proxy_only(stack):
    # after a failover the others replicate from it through its peer proxy; the first links lead elsewhere
    node = stack.nodes[2]
    assert stack.partition_proxies(node.server, clients="cut") == [node.peer, *node.clients]


def test_the_heal_unstalls_exactly_what_the_partition_stalled(stack, monkeypatch):
    monkeypatch.setattr(stack, "current_primary", lambda: stack.primary)
    every = stack._all_proxies()
    stack.partition(True, isolate="primary", clients="split")
    cut = {id(p) for p in stack.partition_proxies(stack.primary, clients="split")}
    assert {id(p) for p in every if p.stalled} == cut
    stack.partition(False, isolate="primary", clients="split")
    assert not any(p.stalled for p in every)


def test_one_partition_at_a_time(stack, monkeypatch):
    monkeypatch.setattr(stack, "current_primary", lambda: stack.primary)
    stack.partition(True, isolate="primary", clients="keep")
    with pytest.raises(StackError, match="a partition is already open"):
        stack.partition(True, isolate="primary", clients="cut")
    stack.partition(False, isolate="primary", clients="keep")
    assert not any(p.stalled for p in stack._all_proxies())


# --- configuration --------------------------------------------------------------------------------

def _scenario(tmp_path: Path, faults: str, target: str = "{kind: redis, replicas: 2, sentinels: 3}"):
    p = tmp_path / "s.yaml"
    p.write_text(f"schema_version: 1\nscenarios:\n  s:\n    target: {target}\n    workload: {{kind: counter}}\n"
                 f"    faults: {faults}\n")
    return load_scenarios(p)["s"]


PARTITION = "[{at: 1, action: partition, duration: 2}]"


@pytest.mark.parametrize(("target", "faults", "error"), [
    ("{kind: redis}", PARTITION, "a partition fault needs a replicated target"),
    ("{kind: redis, replicas: 1, url: 'redis+sentinel://127.0.0.1:26379/cb/0'}", PARTITION,
     "a partition cuts the links between the servers counterbench starts"),
    ("{kind: redis, sentinels: 3}", "[]", "target.sentinels watch replicas: set target.replicas too"),
    ("{kind: redis, min_replicas: {to_write: 1}}", "[]", "target.min_replicas configures the local Redis's replicas"),
    ("{kind: redis, replicas: 1, min_replicas: {to_write: 2}}", "[]", "the primary would refuse every write"),
    ("{kind: redis, replicas: 1}", "[{at: 1, action: partition, duration: 2, isolate: replica}]",
     "Input should be 'primary'"),
    ("{kind: redis, replicas: 1}", "[{at: 1, action: partition}]", "partition needs a duration"),
])
def test_a_partition_needs_the_local_replicas_and_sentinels(tmp_path, target, faults, error):
    with pytest.raises(ConfigError, match=error):
        _scenario(tmp_path, faults, target)


def test_the_shipped_partitions_are_the_production_shape():
    root = Path(__file__).resolve().parents[2]
    scenarios = load_scenarios(root / "scenarios.yaml")
    for name in ("redis-sentinel-partition", "redis-sentinel-partition-min-replicas", "redis-sentinel-partition-wait"):
        t, (f,) = scenarios[name].target, scenarios[name].faults
        assert (t.replicas, t.sentinels, f.action, f.isolate, f.clients) == (2, 3, "partition", "primary", "keep")
    assert scenarios["redis-sentinel-partition-min-replicas"].target.min_replicas.model_dump() == \
        {"to_write": 1, "max_lag": 2}
