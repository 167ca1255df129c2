"""One Patroni node: its configuration, and every process of it (Patroni, the PostgreSQL it runs, that
PostgreSQL's backends) for a crash, a pause or a stop.

As root, where the kernel allows it, a node runs in a PID namespace of its own, as in a container:
Patroni starts PostgreSQL in a session of its own (it must outlive a Patroni restart), which would
otherwise escape the node's process group -- in the namespace, SIGKILL to the node (``failover``, a
reaper, a second Ctrl-C) takes Patroni and its PostgreSQL down together, as a crashed machine. Without
a namespace (not root, or a container that forbids it) the node's PostgreSQL is found by its
``postmaster.pid`` and killed with it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import StackError
from harness.stack.postgres import pg_bindir
from harness.stack.process import LocalServer, free_port

# Patroni's HA loop; it refuses ``loop_wait + 2 * retry_timeout > ttl``
TTL, LOOP_WAIT, RETRY_TIMEOUT = 10, 1, 4
PASSWORD = "counterbench"  # Patroni wants one per role; pg_hba trusts loopback, so nothing checks it


def patroni_binary() -> str:
    found = shutil.which("patroni")
    if found is None:
        raise StackError("Patroni is not installed: run `make setup` (it installs Debian's patroni and etcd-server)")
    return found


@functools.cache
def _namespace_command() -> tuple[str, ...]:
    """The command that runs a node in a PID namespace of its own, or none where that cannot be (not root,
    or a kernel or container that forbids it: tried once)."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return ()
    command = (unshare, "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL")
    probe = subprocess.run([*command, "true"], capture_output=True, check=False)
    return command if probe.returncode == 0 else ()


@dataclass(frozen=True, kw_only=True)
class PatroniSettings:
    """The cluster-wide settings Patroni keeps in etcd (``bootstrap.dcs``), by Patroni's names."""

    synchronous_mode: bool = False
    synchronous_mode_strict: bool = False
    ttl: int = TTL
    loop_wait: int = LOOP_WAIT
    retry_timeout: int = RETRY_TIMEOUT

    def dcs(self) -> dict[str, Any]:
        return {
            "ttl": self.ttl, "loop_wait": self.loop_wait, "retry_timeout": self.retry_timeout,
            "maximum_lag_on_failover": 1048576,  # Patroni's default: a replica further behind is not promoted
            "synchronous_mode": self.synchronous_mode, "synchronous_mode_strict": self.synchronous_mode_strict,
            "failsafe_mode": False,  # a leader cut off from etcd demotes itself, as documented by default
            "postgresql": {
                "use_pg_rewind": True,  # the old leader rejoins by rewinding, as in production
                "use_slots": True,
                "parameters": {
                    "max_connections": 300, "wal_level": "replica", "hot_standby": "on",
                    "max_wal_senders": 10, "max_replication_slots": 10,
                    "wal_log_hints": "on",  # pg_rewind needs it (Patroni sets it anyway); and full_page_writes on
                    "synchronous_commit": "on",
                    # a standby retries a failed stream after 1 s, not 5: it follows a new leader (whose slot
                    # for it may not exist yet) and, in synchronous mode, lets it commit again that much sooner
                    "wal_retrieve_retry_interval": "1s",
                    "fsync": "off",  # counterbench kills processes, never the machine: the page cache survives
                },
            },
        }


def patroni_config(*, name: str, scope: str, folder: Path, bin_dir: Path, rest_port: int, pg_port: int,
                   rest_link: int, pg_link: int, etcd_link: int, settings: PatroniSettings) -> dict[str, Any]:
    """One node's Patroni configuration: it listens on its own ports and advertises its links' (so the
    other nodes reach it only through them) and reaches etcd through its etcd link only."""
    return {
        "scope": scope, "namespace": "/counterbench/", "name": name,
        "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
        "restapi": {"listen": f"127.0.0.1:{rest_port}", "connect_address": f"127.0.0.1:{rest_link}"},
        # use_proxies: no discovery -- etcd's member list names etcd's own address, which bypasses the link
        "etcd3": {"hosts": [f"127.0.0.1:{etcd_link}"], "protocol": "http", "use_proxies": True},
        "bootstrap": {"dcs": settings.dcs(), "initdb": [{"encoding": "UTF8"}, "no-locale"]},
        "postgresql": {
            "listen": f"127.0.0.1:{pg_port}", "connect_address": f"127.0.0.1:{pg_link}",
            "data_dir": str(folder / "data"), "bin_dir": str(bin_dir), "pgpass": str(folder / "pgpass"),
            "authentication": {"superuser": {"username": "postgres", "password": PASSWORD},
                               "replication": {"username": "replicator", "password": PASSWORD}},
            "pg_hba": ["local all all trust", "host all all 127.0.0.1/32 trust",
                       "host replication all 127.0.0.1/32 trust"],
            "parameters": {"unix_socket_directories": str(folder)},
        },
        "watchdog": {"mode": "off"},
    }


class PatroniNode(LocalServer):
    """One Patroni and the PostgreSQL it runs. ``port`` is its REST API, ``pg_port`` its PostgreSQL; the
    configuration names the addresses it advertises (``advertise``, before ``start``)."""

    def __init__(self, *, index: int, scope: str, etcd_port: int, settings: PatroniSettings) -> None:
        self.name = f"patroni{index}"  # the member's name in Patroni, and the server's in messages
        super().__init__()
        self.pg_port = free_port()
        self.scope, self.etcd_port, self.settings = scope, etcd_port, settings
        self._advertised: tuple[int, int] | None = None  # (postgres, REST) ports the other nodes use
        self._patroni = patroni_binary()
        self._bin = pg_bindir()
        self._namespace = _namespace_command()
        self._as: list[str] = []
        if os.geteuid() == 0:  # Patroni runs PostgreSQL as itself, and PostgreSQL refuses root
            runuser = shutil.which("runuser")
            if runuser is None:
                raise StackError("running as root needs `runuser` to start Patroni as the postgres user")
            self._as = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres")

    def advertise(self, *, postgres: int, rest: int) -> None:
        self._advertised = (postgres, rest)

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def config(self) -> dict[str, Any]:
        if self._advertised is None:
            raise StackError(f"{self.name}: no advertised addresses (call advertise before start)")
        pg_link, rest_link = self._advertised
        return patroni_config(name=self.name, scope=self.scope, folder=self.dir, bin_dir=self._bin,
                              rest_port=self.port, pg_port=self.pg_port, rest_link=rest_link, pg_link=pg_link,
                              etcd_link=self.etcd_port, settings=self.settings)

    def command(self) -> list[str]:
        conf = self.dir / "patroni.yml"
        conf.write_text(json.dumps(self.config(), indent=1))  # JSON is YAML
        patroni = [*self._as, self._patroni, str(conf)]
        if not self._namespace:
            return patroni
        # the namespace's first process must reap what is orphaned in it (PostgreSQL, once Patroni's
        # starter exits): Patroni waits for a stopped postmaster to vanish, and a zombie never does
        return [*self._namespace, "sh", "-c", '"$@" & wait $!', self.name, *patroni]

    def environment(self) -> dict[str, str]:
        # Patroni is Debian's, on the system Python: none of counterbench's Python may leak into it (an empty
        # value is as good as unset to Python)
        return {"PYTHONPATH": "", "PYTHONHOME": ""}

    def ready(self) -> bool:
        return rest(self.port, "/liveness") is not None  # Patroni answers; the cluster waits for the rest

    def status(self) -> dict[str, Any]:
        """Patroni's view of this node (``GET /patroni``): role, state, timeline, replication."""
        answer = rest(self.port, "/patroni")
        if answer is None:
            raise StackError(f"{self.name}: Patroni's REST API on port {self.port} does not answer")
        return answer[1]

    def is_leader(self) -> bool:
        """Whether Patroni holds the leader key and runs PostgreSQL as the primary (``GET /primary``)."""
        answer = rest(self.port, "/primary")
        return answer is not None and answer[0] == 200

    # --- every process of the node ----------------------------------------------------------------

    def pids(self) -> set[int]:
        """Patroni, the PostgreSQL it started and that PostgreSQL's backends."""
        leader = self.pid
        if leader is None:
            return set()
        if self._namespace:
            with contextlib.suppress(OSError):
                ns = os.readlink(f"/proc/{leader}/ns/pid_for_children")
                return {leader, *_in_namespace(ns)}
            return {leader}
        return {*_proc_where(lambda fields: int(fields[2]) == leader), *self._postmaster()}

    def _postmaster(self) -> set[int]:
        """Without a namespace: the node's postmaster by its pid file, if that process is this node's, and its
        children (each backend leads a session of its own: no group holds them all)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            ours = str(self.data_dir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
            return {pid, *_proc_where(lambda fields: int(fields[1]) == pid)} if ours else set()
        except (OSError, ValueError, IndexError):
            return set()

    def _signal_all(self, sig: int) -> None:
        pids = self.pids()
        if not pids:
            raise StackError(f"{self.name} is not running")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL to Patroni and its PostgreSQL at once, as a crash of the machine would."""
        with contextlib.suppress(StackError):
            self._signal_all(signal.SIGKILL)
        super().kill()

    def pause(self) -> None:
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def stop(self) -> None:
        """Killed, not shut down: its data is thrown away with its folder, nothing needs to be kept."""
        self.kill()
        super().stop()


def rest(port: int, path: str, *, timeout: float = 2.0) -> tuple[int, dict[str, Any]] | None:
    """A GET to a Patroni REST API: its status and JSON body (Patroni answers 503 with a body too), or
    None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except OSError:
        return None
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    return status, parsed if isinstance(parsed, dict) else {}


def _in_namespace(ns: str) -> set[int]:
    """Every process whose PID namespace is ``ns`` (a ``pid:[inode]`` link)."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"{entry.path}/ns/pid") == ns:
                    found.add(int(entry.name))
    return found


def _proc_where(match: Callable[[list[str]], bool]) -> set[int]:
    """Every process whose /proc stat fields after its name (state, ppid, pgrp, ...) ``match``."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if match(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()):
                    found.add(int(entry.name))
    return found
