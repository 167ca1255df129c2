"""PostgreSQL run by Patroni: the scenario's settings are checked where they are read, each node's Patroni is
configured so that every link goes through its proxy, and a partition silences exactly the leader's links."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.config import load_scenarios
from harness.config.scenario import Scenario
from harness.core.errors import ConfigError
from harness.stack.patroni_node import PatroniSettings, patroni_config

SCENARIO = """schema_version: 1
scenarios:
  s:
    target: {{kind: http, service: {service}}}
    workload: {{kind: counter}}
    load: {{duration: 20}}
    faults: {faults}
"""
PARTITION = "[{at: 2, action: partition, duration: 10, server: store, clients: %s}]"


def load(tmp_path: Path, service: str, faults: str = "[]") -> Scenario:
    p = tmp_path / "s.yaml"
    p.write_text(SCENARIO.format(service=service, faults=faults))
    return load_scenarios(p)["s"]


def test_a_patroni_cluster_is_a_replicated_store_that_a_partition_and_a_failover_can_act_on(tmp_path):
    s = load(tmp_path, "{store: postgres, patroni: {nodes: 3, synchronous_mode: true, synchronous_mode_strict: true}}",
             PARTITION % "keep")
    patroni = s.target.service.patroni
    assert (patroni.nodes, patroni.synchronous_mode, patroni.synchronous_mode_strict) == (3, True, True)
    assert (patroni.ttl, patroni.loop_wait, patroni.retry_timeout) == (10, 1, 4)  # a failover in seconds
    assert s.target.replicated_servers == frozenset({"store"})
    assert load(tmp_path, "{store: postgres, patroni: {}}", PARTITION % "cut").faults[0].clients == "cut"
    assert load(tmp_path, "{store: postgres, patroni: {}}",
                "[{at: 2, action: failover, duration: 5, server: store}]").faults[0].action == "failover"


@pytest.mark.parametrize(("service", "faults", "error"), [
    ("{store: redis, patroni: {}}", "[]", "patroni runs PostgreSQL: it is for the postgres store"),
    ("{store: postgres, replicas: 1, patroni: {}}", "[]", "patroni runs its own nodes"),
    ("{store: postgres, patroni: {synchronous_mode_strict: true}}", "[]",
     "synchronous_mode_strict needs synchronous_mode: true"),
    ("{store: postgres, patroni: {ttl: 8, retry_timeout: 4}}", "[]",
     r"loop_wait \+ 2 \* retry_timeout \(9 s\) must not exceed ttl \(8 s\)"),
    ("{store: postgres, patroni: {nodes: 1}}", "[]", "greater than or equal to 2"),
    ("{store: postgres, replicas: 1}", PARTITION % "keep",
     "a partition needs a cluster manager that notices it and promotes another node: service.patroni"),
    ("{store: postgres, patroni: {}}", PARTITION % "split",
     "the reference service is one client with one connection pool: use keep"),
])
def test_patroni_settings_and_partitions_are_checked_where_the_scenario_is_read(tmp_path, service, faults, error):
    with pytest.raises(ConfigError, match=error):
        load(tmp_path, service, faults)


def config(**settings: bool) -> dict:
    return patroni_config(name="patroni1", scope="cb", folder=Path("/tmp/node"), bin_dir=Path("/usr/lib/pg/bin"),
                          rest_port=8001, pg_port=5001, rest_link=9001, pg_link=6001, etcd_link=7001,
                          settings=PatroniSettings(**settings))


def test_a_node_listens_on_its_ports_and_advertises_its_links_so_peers_reach_it_only_through_them():
    c = config()
    assert c["restapi"] == {"listen": "127.0.0.1:8001", "connect_address": "127.0.0.1:9001"}
    assert (c["postgresql"]["listen"], c["postgresql"]["connect_address"]) == ("127.0.0.1:5001", "127.0.0.1:6001")


def test_a_node_reaches_etcd_through_its_own_link_and_never_discovers_etcds_address():
    assert config()["etcd3"] == {"hosts": ["127.0.0.1:7001"], "protocol": "http", "use_proxies": True}


def test_the_old_leader_rejoins_by_pg_rewind_and_a_leader_cut_off_from_etcd_demotes_itself():
    dcs = config()["bootstrap"]["dcs"]
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"  # pg_rewind needs it
    assert dcs["failsafe_mode"] is False
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (10, 1, 4)


@pytest.mark.parametrize(("sync", "strict"), [(False, False), (True, False), (True, True)])
def test_the_synchronous_settings_reach_patroni_by_its_own_names(sync, strict):
    dcs = config(synchronous_mode=sync, synchronous_mode_strict=strict)["bootstrap"]["dcs"]
    assert (dcs["synchronous_mode"], dcs["synchronous_mode_strict"]) == (sync, strict)


needs_patroni = pytest.mark.skipif(
    shutil.which("patroni") is None or shutil.which("etcd") is None or not list(Path("/usr/lib/postgresql").glob("*")),
    reason="Patroni, etcd or PostgreSQL is not installed (Debian's patroni, etcd-server, postgresql: `make setup`)")


@needs_patroni
@pytest.mark.parametrize("clients", ["keep", "cut"])
def test_a_partition_silences_the_leaders_etcd_link_and_every_link_into_it_and_heals_them(monkeypatch, clients):
    from harness.stack.patroni import PatroniCluster

    cluster = PatroniCluster(nodes=3)  # built, not started: the links are what is under test
    try:
        leader = cluster.nodes[1]
        monkeypatch.setattr(cluster, "leader", lambda: leader)
        cluster.partition(True, isolate="primary", clients=clients)
        silenced = {(i, name) for i, links in enumerate(cluster.links)
                    for name in ("etcd", "postgres", "rest", "client") if getattr(links, name).stalled}
        assert silenced == {(1, "etcd"), (1, "postgres"), (1, "rest"), *([(1, "client")] if clients == "cut" else [])}
        assert cluster.isolated is leader
        cluster.partition(False, isolate="primary", clients=clients)
        assert not any(p.stalled for links in cluster.links for p in links.all())
    finally:
        cluster.stop()


@needs_patroni
def test_a_partition_with_no_leader_to_isolate_says_so(monkeypatch):
    from harness.core.errors import StackError
    from harness.stack.patroni import PatroniCluster

    cluster = PatroniCluster(nodes=2)
    try:
        monkeypatch.setattr(cluster, "leader", lambda: None)
        with pytest.raises(StackError, match="no leader now"):
            cluster.partition(True, isolate="primary", clients="keep")
    finally:
        cluster.stop()
