"""A replicated Redis on 127.0.0.1: a primary, replicas and a Sentinel (Debian's redis-server for all).

Each replica replicates through its own loopback TCP proxy (``harness.stack.proxy``), so the
nemesis can stall replication deterministically (``stall-replication``): the replica falls behind
while the primary keeps acknowledging. ``failover`` kills the current primary (its process group,
as a crash would); the Sentinel (one, quorum 1) promotes a replica and reconfigures the others.
Clients find the primary by asking the Sentinel, at ``redis+sentinel://127.0.0.1:<port>/<name>/0``.

Started like the other servers: ``with RedisReplicaSet(replicas=1) as rs: rs.url``. It is ready
only when every replica's link is up and in sync and the Sentinel knows them all: a replica still
in its first sync when the primary dies comes up empty.
"""

from __future__ import annotations

import contextlib

from harness.errors import StackError
from harness.stack.process import LocalServer, ServerGroup
from harness.stack.proxy import TcpProxy
from harness.stack.redis import Persistence, RedisServer, redis_server_binary

SERVICE = "counterbench"


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

    def __init__(self, *, primary_port: int, down_after_ms: int, failover_timeout_ms: int) -> None:
        super().__init__()
        self.primary_port = primary_port
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    def command(self) -> list[str]:
        conf = self.dir / "sentinel.conf"  # the Sentinel rewrites it with what it learns: a fresh one per run
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 1\n"
                        f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                        f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}\n"
                        f"sentinel parallel-syncs {SERVICE} 1\n")
        return [redis_server_binary(), str(conf), "--sentinel"]


class ReplicaServer(RedisServer):
    """A redis-server replicating from ``upstream_port`` (the proxy in front of the primary)."""

    name = "redis-replica"

    def __init__(self, *, upstream_port: int, persistence: Persistence, settings: dict[str, str]) -> None:
        super().__init__(persistence=persistence, settings=settings)
        self.upstream_port = upstream_port

    def command(self) -> list[str]:
        return [*super().command(), "--replicaof", "127.0.0.1", str(self.upstream_port)]


class RedisReplicaSet(ServerGroup):
    """A primary, ``replicas`` replicas (each through a proxy) and a Sentinel; a context manager."""

    name = "redis-replicated"

    def __init__(self, *, replicas: int = 1, persistence: Persistence = "none", down_after_ms: int = 1000,
                 failover_timeout_ms: int = 3000) -> None:
        if replicas < 1:
            raise StackError("a replicated Redis needs at least one replica")
        # a full sync starts at once, not after Redis's 5 s wait for more replicas: each one syncs alone
        settings = {"repl-diskless-sync-delay": "0"}
        self.primary = RedisServer(persistence=persistence, settings=settings)
        self.proxies = [TcpProxy("127.0.0.1", self.primary.port) for _ in range(replicas)]
        self.replicas = [ReplicaServer(upstream_port=p.port, persistence=persistence, settings=settings)
                         for p in self.proxies]
        self.sentinel = SentinelServer(primary_port=self.primary.port, down_after_ms=down_after_ms,
                                       failover_timeout_ms=failover_timeout_ms)
        self.servers: list[RedisServer] = [self.primary, *self.replicas]
        self._killed: RedisServer | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}/0"

    def start(self, *, timeout: float = 30.0) -> None:
        self.primary.start()
        for proxy, replica in zip(self.proxies, self.replicas, strict=True):
            proxy.start()
            replica.start()
        self.wait_for("every replica in sync", self._replicas_in_sync, timeout=timeout)
        self.sentinel.start()
        self.wait_for("the Sentinel to know every replica", self._sentinel_knows_all, timeout=timeout)

    def _replicas_in_sync(self) -> str | None:
        offset = int(_info(self.primary.port)["master_repl_offset"])
        for r in self.replicas:
            info = _info(r.port)
            link, at = info.get("master_link_status"), int(info.get("slave_repl_offset", -1))
            if link != "up" or at < offset:
                return f"the replica on port {r.port}: link {link}, offset {at} of {offset}"
        return None

    def _sentinel_knows_all(self) -> str | None:
        known = _ask(self.sentinel.port, "SENTINEL", "REPLICAS", SERVICE)
        n = len(known) if isinstance(known, list) else 0
        return None if n >= len(self.replicas) else f"the Sentinel knows {n} of {len(self.replicas)} replicas"

    def parts(self) -> list[LocalServer]:
        return [*self.servers, self.sentinel]

    def current_primary(self) -> RedisServer:
        """The server the Sentinel names primary now."""
        _host, port = _ask(self.sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)  # type: ignore[misc]
        for s in self.servers:
            if s.port == int(port):
                return s
        raise StackError(f"the Sentinel names an unknown primary on port {port}")

    def settle(self, *, timeout: float = 30.0) -> None:
        """Wait until the Sentinel names a primary that is alive and acts as one (after a failover the
        final read must go to the promoted replica, not to the dead primary)."""

        def primary_serves() -> str | None:
            p = self.current_primary()
            if p.pid is None:
                return f"the Sentinel names the dead server on port {p.port}"
            role = _info(p.port).get("role")
            return None if role == "master" else f"the server the Sentinel names (port {p.port}) is a {role}"

        self.wait_for("a live primary", primary_serves, timeout=timeout)

    # --- the nemesis's handles ----------------------------------------------------------------

    def failover(self) -> None:
        """Kill the current primary, as a crash would: the Sentinel promotes a replica."""
        victim = self.current_primary()
        victim.kill()
        self._killed = victim

    def rejoin(self) -> None:
        """Restart the killed primary on its port (no data without persistence): the Sentinel makes it a
        replica of the new primary."""
        if self._killed is not None:
            self._killed.restart()
            self._killed = None

    def stall_replication(self, on: bool) -> None:
        for proxy in self.proxies:
            proxy.stalled = on

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
        for part in (self.sentinel, *self.replicas, self.primary):
            with contextlib.suppress(Exception):
                part.stop()
        for proxy in self.proxies:
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
