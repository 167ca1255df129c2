"""PostgreSQL with a streaming replica on 127.0.0.1, promoted when the primary dies.

The replica is built with ``pg_basebackup -R`` and streams from the primary through its own
loopback TCP proxy, so the nemesis can stall replication (``stall-replication``): the primary keeps
committing, the replica falls behind. ``failover`` kills the primary (its process group, as a crash
would) and promotes the replica (``pg_ctl promote``). With ``synchronous`` the primary waits for the
replica before a commit returns (``synchronous_standby_names = '*'``, ``synchronous_commit = on``).

Clients connect to both hosts and take the one that accepts writes: the URL is a libpq/asyncpg
multi-host URL with ``target_session_attrs=read-write``.
"""

from __future__ import annotations

import contextlib

from harness.core.errors import StackError
from harness.stack.postgres import PostgresServer
from harness.stack.process import LocalServer, ServerGroup
from harness.stack.proxy import TcpProxy


class PostgresStandby(PostgresServer):
    """A streaming replica of ``upstream_port``: its data is a base backup of the primary."""

    name = "postgres-replica"

    def __init__(self, *, upstream_port: int) -> None:
        super().__init__()
        self.upstream_port = upstream_port

    def start(self, *, timeout: float = 60.0) -> None:
        proc = self.run_tool("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.upstream_port), "-U", "postgres",
                             "-D", str(self._data), "-R", "-X", "stream", "--no-sync")
        if proc.returncode != 0:
            raise StackError(f"pg_basebackup failed: {proc.stderr.strip()[-600:]}")
        super(PostgresServer, self).start(timeout=timeout)  # no initdb: the backup is the data

    def promote(self, *, timeout: float = 30.0) -> None:
        proc = self.run_tool("pg_ctl", "promote", "-D", str(self._data), "-w", "-t", str(int(timeout)))
        if proc.returncode != 0:
            raise StackError(f"pg_ctl promote failed: {proc.stderr.strip()[-600:]}")


class PostgresReplicaSet(ServerGroup):
    """A primary and one streaming replica (through a proxy); a context manager."""

    name = "postgres-replicated"

    def __init__(self, *, synchronous: bool = False) -> None:
        self.synchronous = synchronous
        settings = {"synchronous_standby_names": "*", "synchronous_commit": "on"} if synchronous else {}
        self.primary = PostgresServer(settings={"wal_level": "replica", **settings})
        self.proxy = TcpProxy("127.0.0.1", self.primary.port)
        self.replica = PostgresStandby(upstream_port=self.proxy.port)
        self._failed_over = False

    @property
    def url(self) -> str:
        return (f"postgresql://postgres@127.0.0.1:{self.primary.port},127.0.0.1:{self.replica.port}/postgres"
                "?target_session_attrs=read-write")

    def start(self, *, timeout: float = 60.0) -> None:
        """The primary, the replica from its base backup, until it streams (a failover promotes at once:
        there is nothing to settle)."""
        self.primary.start()
        self.proxy.start()
        self.replica.start()
        want = "sync" if self.synchronous else "async"

        def streams() -> str | None:
            seen = self.primary.sql("SELECT state || ' ' || sync_state FROM pg_stat_replication")
            return None if seen == f"streaming {want}" else seen or "no replica connected"

        self.wait_for(f"the replica to stream ({want})", streams, timeout=timeout, poll=0.1)

    def parts(self) -> list[LocalServer]:
        return [self.primary, self.replica]

    # --- the nemesis's handles ----------------------------------------------------------------

    def failover(self) -> None:
        """Kill the primary, as a crash would, and promote the replica."""
        self.primary.kill()
        self.replica.promote()
        self._failed_over = True

    def rejoin(self) -> None:
        raise StackError("the old PostgreSQL primary does not rejoin (it would need pg_rewind): give the failover "
                         "no duration")

    def stall_replication(self, on: bool) -> None:
        self.proxy.stalled = on

    def kill(self) -> None:
        (self.replica if self._failed_over else self.primary).kill()

    def pause(self) -> None:
        (self.replica if self._failed_over else self.primary).pause()

    def resume(self) -> None:
        for s in (self.primary, self.replica):
            with contextlib.suppress(StackError):
                s.resume()

    def restart(self) -> None:
        (self.replica if self._failed_over else self.primary).restart()

    def stop(self) -> None:
        for part in (self.replica, self.primary):
            with contextlib.suppress(Exception):
                part.stop()
        with contextlib.suppress(Exception):
            self.proxy.stop()




