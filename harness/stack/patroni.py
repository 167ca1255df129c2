"""PostgreSQL under a real HA manager: Patroni nodes over etcd on 127.0.0.1, every link between the servers
through its own loopback proxy.

::

    Patroni i ── etcd link i ──────────────────► etcd            (the leader key, its lease, the members)
    peers ────── postgres link i ──────────────► PostgreSQL i    (replication, pg_basebackup, pg_rewind)
    peers ────── REST link i ──────────────────► Patroni i       (a leader race asks the others' positions)
    the service ─ client link i ───────────────► PostgreSQL i    (asyncpg, multi-host, read-write)

Each node is Debian's ``patroni`` (the system Python, run as the ``postgres`` user when counterbench is
root: PostgreSQL refuses root) with a PostgreSQL 15 of its own that Patroni initialises, starts,
promotes, demotes and rewinds. A node advertises its links' addresses (``connect_address``), so every
connection another node opens to it goes through them; Patroni reaches etcd through its own link only
(``use_proxies``: no discovery of etcd's own address). The timings are short (``ttl`` 10 s, ``loop_wait``
1 s, ``retry_timeout`` 4 s): a leader that cannot renew its key demotes itself within ``retry_timeout``,
the key expires after ``ttl`` and another node is promoted, all in seconds.

``partition`` silences (TCP stays up, nothing is delivered, both ways) the leader's etcd link and every
link into it; with ``clients: cut`` the service's link to it too. The leader makes no connection of its
own to the other nodes meanwhile: cut off from etcd it neither learns a new leader to follow nor, with
``failsafe_mode`` off (Patroni's default, set here), asks the others' REST APIs whether it may stay
leader -- so those links are all there is to cut.

Each node's own processes: ``harness.stack.patroni_node``.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from harness.core.errors import StackError
from harness.stack.etcd import EtcdServer
from harness.stack.patroni_node import PatroniNode, PatroniSettings
from harness.stack.process import LocalServer, ServerGroup
from harness.stack.proxy import TcpProxy

__all__ = ["NodeLinks", "PatroniCluster", "PatroniNode", "PatroniSettings"]


@dataclass(frozen=True, kw_only=True)
class NodeLinks:
    """The proxies between one node and the rest; each forwards to the node (or, ``etcd``, from it)."""

    etcd: TcpProxy  # Patroni -> etcd
    postgres: TcpProxy  # the other nodes -> its PostgreSQL (the address it advertises)
    rest: TcpProxy  # the other nodes -> its REST API
    client: TcpProxy  # the reference service -> its PostgreSQL

    def all(self) -> list[TcpProxy]:
        return [self.etcd, self.postgres, self.rest, self.client]


class PatroniCluster(ServerGroup):
    """etcd and ``nodes`` Patroni nodes, each link between them through its proxy; a context manager.

    Started when a leader runs and every other node streams from it (in synchronous mode: one of them
    synchronously). Clients use ``url``: every node, through its client link, ``read-write``."""

    name = "postgres-patroni"

    def __init__(self, *, nodes: int = 3, settings: PatroniSettings | None = None) -> None:
        if nodes < 2:
            raise StackError("a Patroni cluster needs at least two nodes")
        self.settings = settings or PatroniSettings()
        self.etcd = EtcdServer()
        scope = f"counterbench-{uuid.uuid4().hex[:8]}"
        self.nodes: list[PatroniNode] = []
        self.links: list[NodeLinks] = []
        for i in range(nodes):
            etcd_link = TcpProxy("127.0.0.1", self.etcd.port)
            node = PatroniNode(index=i, scope=scope, etcd_port=etcd_link.port, settings=self.settings)
            links = NodeLinks(etcd=etcd_link, postgres=TcpProxy("127.0.0.1", node.pg_port),
                              rest=TcpProxy("127.0.0.1", node.port), client=TcpProxy("127.0.0.1", node.pg_port))
            node.advertise(postgres=links.postgres.port, rest=links.rest.port)
            self.nodes.append(node)
            self.links.append(links)
        self._killed: list[PatroniNode] = []  # by failover, not restarted yet
        self._silenced: list[TcpProxy] = []  # by the open partition
        self._stalled: TcpProxy | None = None  # by the open replication stall
        self.crashed: PatroniNode | None = None  # the leader the last failover killed
        self.isolated: PatroniNode | None = None  # the leader the last partition cut off

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{links.client.port}" for links in self.links)
        return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"

    def start(self, *, timeout: float = 90.0) -> None:
        self.etcd.start()
        for links in self.links:
            for proxy in links.all():
                proxy.start()
        for node in self.nodes:  # the first bootstraps the cluster (initdb) while the others start
            node.start()
        self.wait_for("a leader with every other node streaming from it", self._healthy, timeout=timeout, poll=0.2)

    def _healthy(self) -> str | None:
        leader = self.leader()
        if leader is None:
            return "no leader yet"
        for node in self.nodes:
            if node is not leader and (missing := self.follows_leader(node)) is not None:
                return missing
        if self.settings.synchronous_mode:
            syncs = [r for r in leader.status().get("replication", []) if r.get("sync_state") == "sync"]
            if not syncs:
                return f"{leader.name} leads; no synchronous standby yet"
        return None

    def follows_leader(self, node: PatroniNode) -> str | None:
        """None when ``node`` is a replica streaming from the leader on the leader's timeline (an old leader
        has rejoined); else what is missing."""
        leader = self.leader()
        if leader is None:
            return "no leader"
        if node is leader:
            return f"{node.name} is the leader"
        ours, theirs = node.status(), leader.status()
        streams = {r.get("application_name"): r.get("state") for r in theirs.get("replication", [])}
        if streams.get(node.name) != "streaming":
            return f"{node.name} does not stream from the leader {leader.name} ({streams.get(node.name)})"
        if (ours.get("role"), ours.get("timeline")) != ("replica", theirs.get("timeline")):
            return (f"{node.name} is a {ours.get('role')} on timeline {ours.get('timeline')}, the leader "
                    f"{leader.name} on {theirs.get('timeline')}")
        return None

    def leader(self) -> PatroniNode | None:
        """The node whose Patroni holds the leader key and runs the primary (asked directly, not through
        the links)."""
        for node in self.nodes:
            if node.pid is not None and node.is_leader():
                return node
        return None

    def parts(self) -> list[LocalServer]:
        return [self.etcd, *self.nodes]

    def settle(self, *, timeout: float = 60.0) -> None:
        """Wait for a leader that serves writes: the final read must not meet a cluster between leaders."""

        def serves() -> str | None:
            leader = self.leader()
            if leader is None:
                return "no node holds the leader key and runs the primary"
            status = leader.status()
            ok = status.get("state") == "running" and status.get("role") in ("master", "primary")
            return None if ok else f"{leader.name} leads but is {status.get('role')}, {status.get('state')}"

        self.wait_for("a leader that serves", serves, timeout=timeout, poll=0.2)

    def _current_leader(self) -> PatroniNode:
        leader = self.leader()
        if leader is None:
            raise StackError(f"{self.name}: no leader now (between two?); the fault has nothing to act on")
        return leader

    # --- the nemesis's handles ----------------------------------------------------------------

    def failover(self) -> None:
        """SIGKILL the leader's Patroni and PostgreSQL: its key expires after ``ttl``, another is elected."""
        victim = self._current_leader()
        victim.kill()
        self._killed.append(victim)
        self.crashed = victim

    def rejoin(self) -> None:
        """Start the killed nodes again on their data: Patroni rewinds each and makes it follow the leader."""
        while self._killed:
            self._killed.pop().restart()

    def stall_replication(self, on: bool) -> None:
        """Replication from the leader stops (its postgres link: every standby streams through it), or resumes.
        Patroni promotes no standby more than ``maximum_lag_on_failover`` (1 MB) behind the position the
        leader last wrote to etcd: a long stall before a failover may leave the cluster with no leader."""
        if on:
            self._stalled = self.links[self.nodes.index(self._current_leader())].postgres
            self._stalled.stalled = True
        elif self._stalled is not None:
            self._stalled.stalled = False
            self._stalled = None

    def partition(self, on: bool, *, isolate: str, clients: str) -> str | None:
        """Cut the leader off: its etcd link and every link into it go silent (``clients: cut``: the
        service's too); ``keep`` leaves the service on the leader's side. Heals what it cut, and says which
        other node leads by then (None: none does)."""
        if not on:
            promoted = next((n.name for n in self.nodes if n is not self.isolated and n.pid is not None
                             and n.is_leader()), None)
            for proxy in self._silenced:
                proxy.stalled = False
            self._silenced = []
            return promoted
        if isolate != "primary":
            raise StackError(f"partition: cannot isolate {isolate!r} (only the primary)")
        if clients not in ("keep", "cut"):
            raise StackError(f"partition: clients {clients!r} is not for a Patroni cluster (keep or cut)")
        victim = self._current_leader()
        links = self.links[self.nodes.index(victim)]
        self._silenced = [links.etcd, links.postgres, links.rest, *([links.client] if clients == "cut" else [])]
        for proxy in self._silenced:
            proxy.stalled = True
        self.isolated = victim
        return None

    def kill(self) -> None:
        self.failover()

    def restart(self) -> None:
        self.rejoin()

    def pause(self) -> None:
        self._current_leader().pause()

    def resume(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(StackError):
                node.resume()

    def stop(self) -> None:
        for part in (*self.nodes, self.etcd):
            with contextlib.suppress(Exception):
                part.stop()
        for links in self.links:
            for proxy in links.all():
                with contextlib.suppress(Exception):
                    proxy.stop()
