"""A replicated Redis on 127.0.0.1: a primary, replicas and Sentinels (Debian's redis-server for all).

Every link between these servers goes through a loopback TCP proxy (``harness.stack.proxy``), so the
nemesis can cut it deterministically, without root:

- each node has a **peer proxy** in front of it, and is known to every other server by that address:
  it announces it as a replica (``replica-announce-port``), the Sentinels monitor the first primary
  there, and so name the primary, promote a replica and re-point the others by peer addresses. What a
  Sentinel or a replica sends a node after a failover goes through the node's peer proxy too;
- each replica starts replicating through a **replication proxy** of its own in front of the first
  primary, so that ``stall-replication`` makes the replicas fall behind while the Sentinels still see
  the primary (after a failover the replicas replicate through the new primary's peer proxy);
- the Sentinels talk to each other directly: in a partition they are all on the majority's side.

``partition`` (isolate the primary) stalls every proxy in front of the node that is primary when the
window opens: its peer proxy and the replication proxies leading to it. Connections stay open and
go silent in both directions, so Redis's and the Sentinels' own timeouts notice; a majority of the
Sentinels promotes a replica while the old primary, cut off and not dead, goes on answering whoever
still reaches it. The heal un-stalls the same proxies (the held bytes are delivered, as a network
that queued them would); the Sentinels find the old primary claiming to be primary and make it a replica
of the new one once it has been reachable for 8 s (about 10 s after the heal, measured), which throws
away what it acknowledged meanwhile. Nothing here waits for that: the final read goes to the primary
the Sentinels all name (``settle``).

The load never uses the peer addresses (they go silent with the servers' links). The Sentinels name
the primary by one, so the URL carries a route per node from its peer address to the load's own path
(``harness.targets.resp.Route``): the node itself, or -- when the scenario partitions -- a **client
proxy** per side (two per node): ``clients: keep`` stalls none, ``cut`` both, ``split`` the second.
Users alternate sides. The load always reaches the Sentinels; setup and the final read take side 0.

Started like the other servers: ``with RedisReplicaSet(replicas=1) as rs: rs.url``. It is ready
only when every replica's link is up and in sync and every Sentinel knows every replica and every
other Sentinel: a replica still in its first sync when the primary dies comes up empty, and a
Sentinel that knows no other cannot reach a quorum.
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass

from harness.core.errors import StackError
from harness.stack.process import LocalServer, ServerGroup
from harness.stack.proxy import TcpProxy
from harness.stack.redis import Persistence, RedisServer, redis_server_binary
from harness.targets.resp import Route, in_good_standing

SERVICE = "counterbench"
# client proxies per node when the scenario partitions: under ``split`` side 0 stays with the isolated
# node, side 1 is cut off with it
SIDES = 2


def _ask(port: int, *args: str) -> object:
    """One command to a local redis-server or Sentinel (redis-py, outside the load)."""
    import redis

    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)
    try:
        return r.execute_command(*args)
    finally:
        r.close()


class SentinelServer(LocalServer):
    name = "redis-sentinel"

    def __init__(self, *, primary_port: int, quorum: int, down_after_ms: int, failover_timeout_ms: int) -> None:
        super().__init__()
        self.primary_port = primary_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    def command(self) -> list[str]:
        conf = self.dir / "sentinel.conf"  # the Sentinel rewrites it with what it learns: a fresh one per run
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} {self.quorum}\n"
                        f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                        f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}\n"
                        f"sentinel parallel-syncs {SERVICE} 1\n")
        return [redis_server_binary(), str(conf), "--sentinel"]


class ReplicaServer(RedisServer):
    """A redis-server replicating from ``upstream_port`` (a proxy in front of the primary)."""

    name = "redis-replica"

    def __init__(self, *, upstream_port: int, persistence: Persistence) -> None:
        super().__init__(persistence=persistence)
        self.upstream_port = upstream_port

    def command(self) -> list[str]:
        return [*super().command(), "--replicaof", "127.0.0.1", str(self.upstream_port)]


@dataclass(frozen=True, kw_only=True)
class Node:
    """A redis-server and the proxies in front of it."""

    server: RedisServer
    peer: TcpProxy  # the address every other server knows it by
    clients: tuple[TcpProxy, ...]  # the load's paths to it, one per side (none: the load goes to it directly)

    def route(self) -> Route:
        """The load's route to it: from its peer address to the load's own paths (one per side)."""
        paths = [c.port for c in self.clients] or [self.server.port]
        return Route(announced=("127.0.0.1", self.peer.port), paths=tuple(("127.0.0.1", p) for p in paths))


def node_settings(*, peer_port: int, min_replicas: tuple[int, int] | None) -> dict[str, str]:
    """A node's own settings: known by its peer proxy, and the write rule every node keeps (a replica
    promoted keeps it too)."""
    settings = {
        # a full sync starts at once, not after Redis's 5 s wait for more replicas: each one syncs alone
        "repl-diskless-sync-delay": "0",
        "replica-announce-ip": "127.0.0.1",
        "replica-announce-port": str(peer_port),
    }
    if min_replicas is not None:
        settings["min-replicas-to-write"], settings["min-replicas-max-lag"] = map(str, min_replicas)
    return settings


class RedisReplicaSet(ServerGroup):
    """A primary, ``replicas`` replicas and ``sentinels`` Sentinels (quorum: a majority), every link between
    them through a proxy; a context manager."""

    name = "redis-replicated"

    def __init__(self, *, replicas: int = 1, sentinels: int = 1, persistence: Persistence = "none",
                 down_after_ms: int = 1000, failover_timeout_ms: int = 1000,
                 min_replicas: tuple[int, int] | None = None, client_proxies: bool = False) -> None:
        if replicas < 1:
            raise StackError("a replicated Redis needs at least one replica")
        if sentinels < 1:
            raise StackError("a replicated Redis needs at least one Sentinel")
        primary = RedisServer(persistence=persistence)
        # each replica's first link to the primary, for stall-replication (later links: the peer proxies)
        self.replication_proxies = [TcpProxy("127.0.0.1", primary.port) for _ in range(replicas)]
        servers = [primary, *(ReplicaServer(upstream_port=p.port, persistence=persistence)
                              for p in self.replication_proxies)]
        self.nodes = [self._node(s, min_replicas=min_replicas, client_proxies=client_proxies) for s in servers]
        self.primary = primary
        self.replicas = [n.server for n in self.nodes[1:]]
        self.servers: list[RedisServer] = [n.server for n in self.nodes]
        # a failed leader election (Sentinels asking at once, a slow machine) is retried only after twice the
        # failover timeout: at 3 s that retry comes after an 8-s partition has healed (no failover at all,
        # the likely story of a CI run where split clients saw no second primary); at 1 s, within 2 s
        self.sentinels = [SentinelServer(primary_port=self.nodes[0].peer.port, quorum=sentinels // 2 + 1,
                                         down_after_ms=down_after_ms, failover_timeout_ms=failover_timeout_ms)
                          for _ in range(sentinels)]
        self._killed: RedisServer | None = None
        self._partitioned: list[TcpProxy] = []  # the proxies the open partition stalled, to heal
        self._isolated: RedisServer | None = None  # the primary it cut off

    @staticmethod
    def _node(server: RedisServer, *, min_replicas: tuple[int, int] | None, client_proxies: bool) -> Node:
        peer = TcpProxy("127.0.0.1", server.port)
        server.settings.update(node_settings(peer_port=peer.port, min_replicas=min_replicas))
        clients = tuple(TcpProxy("127.0.0.1", server.port) for _ in range(SIDES)) if client_proxies else ()
        return Node(server=server, peer=peer, clients=clients)

    def _all_proxies(self) -> list[TcpProxy]:
        return [*self.replication_proxies, *(p for n in self.nodes for p in (n.peer, *n.clients))]

    @property
    def url(self) -> str:
        """The Sentinels, and the load's route to each node (``harness.targets.resp.Route``)."""
        sentinels = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        routes = "&".join(f"route={n.route().text()}" for n in self.nodes)
        return f"redis+sentinel://{sentinels}/{SERVICE}/0?{routes}"

    def start(self, *, timeout: float = 30.0) -> None:
        for proxy in self._all_proxies():
            proxy.start()
        for server in self.servers:
            server.start()
        self.wait_for("every replica in sync", self._replicas_in_sync, timeout=timeout)
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_for("every Sentinel to know every replica and Sentinel", self._sentinels_know_all,
                      timeout=timeout)

    def _replicas_in_sync(self) -> str | None:
        offset = int(_info(self.primary.port)["master_repl_offset"])
        for r in self.replicas:
            info = _info(r.port)
            link, at = info.get("master_link_status"), int(info.get("slave_repl_offset", -1))
            if link != "up" or at < offset:
                return f"the replica on port {r.port}: link {link}, offset {at} of {offset}"
        return None

    def _sentinels_know_all(self) -> str | None:
        for s in self.sentinels:
            known = _ask(s.port, "SENTINEL", "REPLICAS", SERVICE)
            # in good standing, as a client that asks for a replica takes one: a replica just found is
            # listed "disconnected" until the Sentinel's link to it is up
            n = sum(1 for entry in known if in_good_standing(entry)) if isinstance(known, list) else 0
            if n < len(self.replicas):
                return f"the Sentinel on port {s.port} knows {n} of {len(self.replicas)} replicas in good standing"
            # they find each other through the primary's hello channel, every 2 s
            peers = _ask(s.port, "SENTINEL", "SENTINELS", SERVICE)
            m = len(peers) if isinstance(peers, list) else 0
            if m < len(self.sentinels) - 1:
                return f"the Sentinel on port {s.port} knows {m} of the {len(self.sentinels) - 1} others"
        return None

    def parts(self) -> list[LocalServer]:
        return [*self.servers, *self.sentinels]

    def _node_at(self, peer_port: int) -> Node:
        for n in self.nodes:
            if n.peer.port == peer_port:
                return n
        raise StackError(f"a Sentinel names an unknown primary at 127.0.0.1:{peer_port}")

    def _named(self) -> list[int | None]:
        """The primary each Sentinel names (its peer port), None for a Sentinel that does not answer."""
        from redis.exceptions import RedisError

        out: list[int | None] = []
        for s in self.sentinels:
            try:
                _host, port = _ask(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)  # type: ignore[misc]
                out.append(int(port))
            except (RedisError, OSError, TypeError, ValueError):  # down, or no answer: the others decide
                out.append(None)
        return out

    def current_primary(self) -> RedisServer:
        """The server most Sentinels name primary now."""
        named = collections.Counter(p for p in self._named() if p is not None)
        if not named:
            raise StackError("no Sentinel names a primary")
        return self._node_at(named.most_common(1)[0][0]).server

    def settle(self, *, timeout: float = 30.0) -> None:
        """Wait until every Sentinel names the same primary, alive and acting as one (after a failover the
        final read must go to the promoted replica, not to the dead or cut-off primary)."""

        def primary_serves() -> str | None:
            named = self._named()
            if len(set(named)) != 1 or named[0] is None:
                return f"the Sentinels name {', '.join(str(p) for p in named)}"
            p = self._node_at(named[0]).server
            if p.pid is None:
                return f"the Sentinels name the dead server on port {p.port}"
            role = _info(p.port).get("role")
            return None if role == "master" else f"the server the Sentinels name (port {p.port}) is a {role}"

        self.wait_for("a live primary", primary_serves, timeout=timeout)

    # --- the nemesis's handles ----------------------------------------------------------------

    def failover(self) -> None:
        """Kill the current primary, as a crash would: the Sentinels promote a replica."""
        victim = self.current_primary()
        victim.kill()
        self._killed = victim

    def rejoin(self) -> None:
        """Restart the killed primary on its port (no data without persistence): the Sentinels make it a
        replica of the new primary."""
        if self._killed is not None:
            self._killed.restart()
            self._killed = None

    def stall_replication(self, on: bool) -> None:
        for proxy in self.replication_proxies:
            proxy.stalled = on

    def partition(self, on: bool, *, isolate: str, clients: str) -> str | None:
        """Cut (``on``) the node that is primary now off from every other server, silently and both ways,
        and the load's paths to it as ``clients`` says; or heal exactly what the open window cut and say
        which server the Sentinels promoted meanwhile (its port; None when they still name the isolated
        one)."""
        if not on:
            promoted: str | None = None
            if self._isolated is not None:
                with contextlib.suppress(StackError):  # no Sentinel answers: nobody is known to be promoted
                    now = self.current_primary()
                    promoted = None if now is self._isolated else f"127.0.0.1:{now.port}"
            for proxy in self._partitioned:
                proxy.stalled = False
            self._partitioned, self._isolated = [], None
            return promoted
        if isolate != "primary":
            raise StackError(f"a partition isolates the primary, not {isolate!r}")
        if self._partitioned:  # its heal would have to know which window each stalled proxy belongs to
            raise StackError("a partition is already open: one at a time")
        isolated = self.current_primary()
        cut = self.partition_proxies(isolated, clients=clients)
        for proxy in cut:
            proxy.stalled = True
        self._partitioned, self._isolated = cut, isolated
        return None

    def partition_proxies(self, isolated: RedisServer, *, clients: str) -> list[TcpProxy]:
        """The proxies a partition stalls to cut ``isolated`` off: its peer proxy (every server's link to
        it), the replication proxies leading to it (a replica's first link), and the load's paths to it
        that ``clients`` cuts (keep: none, split: side 1, cut: every side)."""
        node = next(n for n in self.nodes if n.server is isolated)
        sides = {"keep": (), "split": node.clients[1:], "cut": node.clients}[clients]
        if clients != "keep" and not node.clients:
            raise StackError(f"clients: {clients} needs the load's own proxies to each node (the stack was built "
                             "without: client_proxies)")
        leading = [p for p in self.replication_proxies if p.upstream == ("127.0.0.1", isolated.port)]
        return [node.peer, *leading, *sides]

    def kill(self) -> None:
        self.current_primary().kill()

    def pause(self) -> None:
        self.current_primary().pause()

    def resume(self) -> None:
        for s in self.servers:
            with contextlib.suppress(StackError):
                s.resume()

    def restart(self) -> None:
        for s in self.servers:
            if s.pid is None:
                s.restart()

    def stop(self) -> None:
        for part in (*self.sentinels, *self.replicas, self.primary):
            with contextlib.suppress(Exception):
                part.stop()
        for proxy in self._all_proxies():
            with contextlib.suppress(Exception):
                proxy.stop()


def _info(port: int) -> dict[str, object]:
    """INFO replication of a local redis-server, parsed."""
    import redis

    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)
    try:
        return dict(r.info("replication"))
    finally:
        r.close()

