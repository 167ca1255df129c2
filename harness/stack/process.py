"""Start a local server process, wait until it answers, stop it for sure."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.core.errors import StackError
from harness.core.stopping import forget, kill_group, spawn

# A port is picked when a server is built and bound when it starts, seconds later (a replica set builds
# four at once): the kernel may hand the same free port out twice meanwhile (about 1 stack in 4,000 here),
# and a server would then find another's listener on its port. So no port is handed out twice while it
# is among the last ``_RECENT`` given.
_RECENT = 2048
_given: deque[int] = deque()
_given_set: set[int] = set()
_given_lock = threading.Lock()


def free_port() -> int:
    """A free port on 127.0.0.1, none of the last few thousand this process was given."""
    with _given_lock:
        for _ in range(256):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _given_set:
                break
        _given.append(port)
        _given_set.add(port)
        if len(_given) > _RECENT:
            _given_set.discard(_given.popleft())
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on ``port`` (any local address), from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                found.add(f[9])
    return found


def group_listens(pgid: int, port: int) -> bool:
    """Whether a process of group ``pgid`` holds a socket listening on ``port``: the server answering
    there is the one we started, not another that took the port first (whose answers would make a
    server that failed to bind look ready)."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:  # fields after the name: state ppid pgrp
                continue
            if any(os.readlink(fd.path) in wanted for fd in os.scandir(Path(entry.path, "fd"))):
                return True
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return False


class LocalServer:
    """A child process with its own temporary folder; a context manager."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"counterbench-{self.name}-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._downed = False  # stopped or killed on purpose (a fault): its exit is no news

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Extra environment for the server (secrets go here, never into ``command``)."""
        return {}

    def ready(self) -> bool:
        """Whether the server answers (after ``listening``); servers with a protocol check it here."""
        return port_open(self.port)

    def listening(self) -> bool:
        """Whether the server's own process group holds the listener on its port."""
        pid = self.pid
        return pid is not None and group_listens(pid, self.port)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self, *, timeout: float = 20.0) -> None:
        self.start_process(timeout=timeout)

    def start_process(self, *, timeout: float = 20.0) -> None:
        self._downed = False
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            # a group of its own: a stop reaches the whole server (uvicorn's workers, PostgreSQL's backends)
            self._proc = spawn(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=self.dir, env={**os.environ, **self.environment()})
        except OSError as e:
            raise StackError(f"cannot start {self.name}: {e}") from e
        finally:
            log.close()
        _wait(lambda: self.listening() and self.ready(), timeout, self._proc, f"{self.name} on 127.0.0.1:{self.port}",
              self.dir / "server.log")

    def _signal(self, sig: int) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise StackError(f"{self.name} is not running")
        kill_group(self._proc, sig)

    def kill(self) -> None:
        """SIGKILL to the whole server, as a crash would; the folder stays, so a restart finds its data."""
        self._downed = True
        if self._proc is not None and self._proc.poll() is None:
            kill_group(self._proc, signal.SIGKILL)
            forget(self._proc)  # before the wait: once waited for, its pid may be another's
            self._proc.wait()

    def died(self) -> list[dict[str, Any]]:
        """If the server exited though nothing here stopped or killed it: which, how, the sentence that
        says so and its log's end (a target that dies mid-run otherwise shows only as refused connections)."""
        if self._proc is None or self._downed or self._proc.poll() is None:
            return []
        code = self._proc.returncode
        return [{"server": self.name, "port": self.port, "exit_code": code,
                 "finding": f"{self.name} on 127.0.0.1:{self.port} exited with code {code} during the run; "
                            "no fault killed it",
                 "log_tail": _tail(self.dir / "server.log").strip()}]

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def settle(self) -> None:
        """Before the final read: wait until the server serves what it will keep (a replicated one: until
        a primary is in place). One process has nothing to wait for."""

    def restart(self, *, timeout: float = 20.0) -> None:
        """Start again on the same port with the same folder (after kill)."""
        if self._proc is not None and self._proc.poll() is None:
            raise StackError(f"{self.name} is still running")
        self.start_process(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM to the server's group, SIGKILL to whatever of it is left after 10 s (or at once if the
        leader is gone: nothing of the server may outlive it)."""
        self._downed = True
        if self._proc is not None:
            if self._proc.poll() is None:
                kill_group(self._proc, signal.SIGCONT)  # a paused server cannot act on SIGTERM
                kill_group(self._proc, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=10)
            kill_group(self._proc, signal.SIGKILL)
            forget(self._proc)
            self._proc.wait()
        self._proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerGroup:
    """Several servers that stand as one (a primary and its replicas): a context manager that stops
    what it started even when starting fails half-way."""

    name = "servers"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def settle(self) -> None:
        """As ``LocalServer.settle``: before the final read, wait until a primary serves."""

    def parts(self) -> list[LocalServer]:
        raise NotImplementedError

    def died(self) -> list[dict[str, Any]]:
        """As ``LocalServer.died``, for each part."""
        return [d for part in self.parts() for d in part.died()]

    def wait_for(self, what: str, ready: Callable[[], str | None], *, timeout: float, poll: float = 0.05) -> None:
        """Until ``ready`` says nothing is missing (None); a timeout says what it saw missing last."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                missing = ready()
            except Exception as e:  # not up yet, or not answering: say so if it stays that way
                missing = f"{type(e).__name__}: {e}"
            if missing is None:
                return
            last = missing
            time.sleep(poll)
        raise StackError(f"{self.name}: timed out after {timeout:.0f} s waiting for {what}; last seen: {last}")

    def __enter__(self) -> ServerGroup:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tail(log: Path) -> str:
    """The end of a server's log: what it said last before it exited."""
    return log.read_text(errors="replace")[-600:] if log.exists() else ""


def _wait(ready: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode}:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.05)
    proc.kill()
    raise StackError(f"{what} did not answer within {timeout:.0f} s")
