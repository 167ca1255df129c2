"""Start a local server process, wait until it answers, stop it for sure."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import StackError
from harness.stopping import kill_group, spawn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class LocalServer:
    """A child process with its own temporary folder; a context manager."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"counterbench-{self.name}-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Extra environment for the server (secrets go here, never into ``command``)."""
        return {}

    def ready(self) -> bool:
        return port_open(self.port)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self, *, timeout: float = 20.0) -> None:
        self.start_process(timeout=timeout)

    def start_process(self, *, timeout: float = 20.0) -> None:
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            # a group of its own: a stop reaches the whole server (uvicorn's workers, PostgreSQL's backends)
            self._proc = spawn(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=self.dir, env={**os.environ, **self.environment()})
        except OSError as e:
            raise StackError(f"cannot start {self.name}: {e}") from e
        finally:
            log.close()
        _wait(self.ready, timeout, self._proc, f"{self.name} on 127.0.0.1:{self.port}", self.dir / "server.log")

    def _signal(self, sig: int) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise StackError(f"{self.name} is not running")
        kill_group(self._proc, sig)

    def kill(self) -> None:
        """SIGKILL to the whole server, as a crash would; the folder stays, so a restart finds its data."""
        if self._proc is not None and self._proc.poll() is None:
            kill_group(self._proc, signal.SIGKILL)
            self._proc.wait()

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
        if self._proc is not None:
            if self._proc.poll() is None:
                kill_group(self._proc, signal.SIGCONT)  # a paused server cannot act on SIGTERM
                kill_group(self._proc, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=10)
            kill_group(self._proc, signal.SIGKILL)
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

    def __enter__(self) -> ServerGroup:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait(ready: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
            raise StackError(f"{what} exited with code {proc.returncode}:\n{tail}")
        if ready():
            return
        time.sleep(0.05)
    proc.kill()
    raise StackError(f"{what} did not answer within {timeout:.0f} s")
