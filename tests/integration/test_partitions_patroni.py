"""Partitions and split brain on PostgreSQL run by Patroni over etcd, on the real servers (the shipped
scenarios of the ``partitions`` suite): a leader cut off from etcd and its replicas, while the reference
service still reaches it, acknowledges commits until it demotes itself; with asynchronous replication the
node promoted meanwhile never had them, and they are lost. With ``synchronous_mode_strict`` Patroni promotes
only the synchronous standby, which has every commit acknowledged to a client: nothing acknowledged is lost.
Either way the old leader rejoins after the heal, rewound (pg_rewind) into a replica of the new one."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.core.errors import StackError
from tests.integration.conftest import SHIPPED, run_cli

MISSING = [name for name in ("patroni", "etcd") if shutil.which(name) is None]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(MISSING), reason=f"{' and '.join(MISSING)} not installed: these tests need Debian's "
                                             "patroni and etcd-server (`make setup` installs them)"),
]


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """The cluster as it was after the run's final read, just before it was stopped."""

    old_leader: str  # the leader the fault acted on
    leader: str | None
    rejoined: str | None  # None: the old leader streams from the leader, on its timeline; else what was missing
    timelines: dict[str, int]  # each node's, as its Patroni says (GET /patroni)


@dataclass(frozen=True, kw_only=True)
class Run:
    verdict: dict[str, Any]
    folder: Path
    cluster: Cluster


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Run]]:
    """Each scenario run once for the module (the synchronous run is compared with the asynchronous one); the
    cluster is looked at before it stops, giving the old leader up to 30 s to rejoin."""
    from harness.stack.patroni import PatroniCluster

    seen: list[Cluster] = []
    stop = PatroniCluster.stop

    def look_then_stop(self: PatroniCluster) -> None:
        old = self.isolated or self.crashed
        if old is not None:
            try:
                self.wait_for(f"{old.name} to rejoin", lambda: self.follows_leader(old), timeout=30, poll=0.3)
                rejoined = None
            except StackError as e:
                rejoined = str(e)
            leader = self.leader()
            timelines = {n.name: n.status().get("timeline") for n in self.nodes if n.pid is not None}
            seen.append(Cluster(old_leader=old.name, leader=leader.name if leader else None, rejoined=rejoined,
                                timelines=timelines))
        stop(self)

    done: dict[str, Run] = {}

    def once(scenario: str) -> Run:
        if scenario not in done:
            tmp = tmp_path_factory.mktemp(scenario)
            before = len(seen)
            code, v = run_cli(tmp, "-f", str(SHIPPED), "-s", scenario)
            assert v is not None, f"{scenario}: no verdict (exit {code})"
            assert code == {"pass": 0, "fail": 1, "unknown": 2}[v["verdict"]]
            assert len(seen) == before + 1, f"{scenario}: no fault acted on a leader"
            done[scenario] = Run(verdict=v, folder=tmp / "run", cluster=seen[-1])
        return done[scenario]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PatroniCluster, "stop", look_then_stop)
        yield once


def happened_as_planned(r: Run, action: str, *, at: float, until: float) -> None:
    (fault,) = r.verdict["faults"]
    assert (fault["action"], fault["status"], fault["happened"], fault["healed_at_load_end"]) == (
        action, "healed", True, False)
    assert at <= fault["opened_s"] < at + 0.5 and until <= fault["healed_s"] < until + 3
    if action == "partition":  # its heal found another node leading: the failover it was for happened
        assert fault["promoted"] not in (None, r.cluster.old_leader), fault


def rejoined_the_new_leader(c: Cluster) -> None:
    assert c.leader is not None and c.leader != c.old_leader, c  # another node was promoted
    assert c.rejoined is None, c.rejoined  # a replica streaming from the new leader
    assert c.timelines[c.old_leader] == c.timelines[c.leader] > 1  # rewound onto the new leader's timeline


def died(r: Run) -> list[Any]:
    return list(json.loads((r.folder / "run.json").read_text())["servers_died"])


def test_async_a_leader_cut_off_acknowledges_commits_the_new_leader_never_had(run):
    r = run("service-postgres-patroni-partition-async")
    assert r.verdict["verdict"] == "fail", r.verdict["reason"]
    t = r.verdict["totals"]
    assert t["lost"] > 0 and t["duplicate_values"] > 0  # the new leader counted on from where it was: values again
    happened_as_planned(r, "partition", at=2, until=17)
    rejoined_the_new_leader(r.cluster)  # pg_rewind threw the acknowledged commits away
    assert died(r) == []


def test_sync_strict_the_same_partition_loses_nothing_acknowledged_and_the_old_leader_rejoins(run):
    r = run("service-postgres-patroni-partition-sync")
    assert r.verdict["verdict"] == "pass", r.verdict["reason"]
    t = r.verdict["totals"]
    assert t["lost"] == 0 and t["indeterminate"] > 0  # the commits waiting on the cut-off leader: not claimed ok
    happened_as_planned(r, "partition", at=2, until=17)
    rejoined_the_new_leader(r.cluster)
    assert died(r) == []
    # it mattered: the same partition without synchronous mode loses acknowledged increments
    assert run("service-postgres-patroni-partition-async").verdict["totals"]["lost"] > 0


def test_a_crashed_leader_is_replaced_by_the_synchronous_standby_and_rejoins_after_restart(run):
    r = run("service-postgres-patroni-failover")
    assert r.verdict["verdict"] == "pass", r.verdict["reason"]
    assert r.verdict["totals"]["indeterminate"] > 0
    happened_as_planned(r, "failover", at=2, until=14)
    rejoined_the_new_leader(r.cluster)
    assert died(r) == []  # the node the fault killed is no unexpected death
