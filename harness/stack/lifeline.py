"""counterbench's side of the reaper (``harness.stack.reaper``): started on first use, told of each
child's process group, let go at a normal exit. ``harness.core.stopping.spawn`` is its one caller for
starting children, so every server (any ``LocalServer``) and every load process is covered.

Nothing here runs on the load's hot path: one pipe write per child started or stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path

from harness.stack import reaper


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot): with the pid, a process's identity."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class Lifeline:
    """The pipe to the reaper; its write end is held by this process only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the nemesis restarts servers from its thread
        self._reset()

    def _reset(self) -> None:
        self.token = uuid.uuid4().hex
        self._fd: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._failed = False

    @property
    def pid(self) -> int | None:
        """The reaper's pid, once started."""
        return self._proc.pid if self._proc is not None else None

    def mark(self, env: Mapping[str, str] | None) -> dict[str, str]:
        """A child's environment with the token; starts the reaper first, so that it exists before the
        child does and finds it by its token even if counterbench dies before ``watch``."""
        with self._lock:
            if self._proc is None and not self._failed:
                self._start()
        return {**(os.environ if env is None else env), reaper.TOKEN_ENV: self.token}

    def watch(self, pid: int) -> None:
        """A child that leads a process group of its own (``start_new_session``) was started."""
        start = start_time(pid)  # read before anything reaps the child: until then the pid is its own
        self._send(f"+{pid} {'?' if start is None else start}\n")

    def forget(self, pid: int) -> None:
        """That child's group is stopped."""
        self._send(f"-{pid}\n")

    def _start(self) -> None:
        read, write = os.pipe()  # both close-on-exec: no child of counterbench inherits the write end
        try:
            # a session of its own: a Ctrl-C or a group signal meant for counterbench never reaches it;
            # -I -S: a bare interpreter, quick to start, that no PYTHON* variable or site file can change
            self._proc = subprocess.Popen([sys.executable, "-I", "-S", str(Path(reaper.__file__).resolve()),
                                           self.token, str(os.getpid())], stdin=read, stdout=subprocess.DEVNULL,
                                          cwd="/", start_new_session=True)
        except OSError as e:
            os.close(write)
            self._warn(f"cannot start the reaper ({e})")
            return
        finally:
            os.close(read)
        self._fd = write

    def _send(self, line: str) -> None:
        with self._lock:
            if self._fd is None:
                return
            try:
                os.write(self._fd, line.encode())  # shorter than PIPE_BUF: written whole or not at all
            except OSError as e:
                os.close(self._fd)
                self._fd = None
                self._warn(f"the reaper is gone ({e})")

    def _warn(self, why: str) -> None:
        self._failed = True
        sys.stderr.write(f"counterbench: warning: {why}: servers may outlive a killed counterbench\n")

    def close(self) -> None:
        """At a normal exit: bye, then wait until the reaper has swept (finding nothing) and exited."""
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.write(self._fd, b"bye\n")
                os.close(self._fd)
                self._fd = None
            if self._proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)

    def forked(self) -> None:
        """In a child forked without exec: the pipe is its parent's to hold (else the reaper would wait
        for this child too); its own children get a reaper of their own."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._reset()


LIFELINE = Lifeline()
atexit.register(LIFELINE.close)
os.register_at_fork(after_in_child=LIFELINE.forked)
