"""The nemesis: scheduled faults on local servers and on the network path, recorded in the run folder.

Faults are timed from the load's start (the first progress file the load processes write).
Each window is recorded (``RunFolder.record_fault``) when it opens and when it heals, so reports
can shade it and count the ops and outcomes that fell inside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.faults import FAULTS

if TYPE_CHECKING:
    from harness.config.scenario import Fault
    from harness.runfolder import RunFolder
    from harness.stack.process import LocalServer
    from harness.stack.proxy import TcpProxy


class Nemesis(threading.Thread):
    def __init__(self, faults: tuple[Fault, ...], *, folder: RunFolder, servers: Mapping[str, LocalServer | None],
                 proxy: TcpProxy | None) -> None:
        super().__init__(name="counterbench-nemesis", daemon=True)
        for f in faults:
            if f.network and proxy is None:
                raise ConfigError("network faults need the fault proxy in front of the target")
            if not f.network and servers.get(f.server) is None:
                raise ConfigError(f"a {f.action} fault needs a local {f.server} server; a --target-url target "
                                  "cannot be killed or paused by counterbench")
        self.faults = sorted(faults, key=lambda f: f.at)
        self.folder = folder
        self.servers = servers
        self.proxy = proxy
        self._done = threading.Event()
        self._open: list[tuple[Fault, float]] = []
        self.errors: list[str] = []

    def _switch(self, fault: Fault, on: bool) -> None:
        """Open (on) or heal (off) a fault's window; the constructor checked its server or proxy exists."""
        kind = FAULTS[fault.action]
        target: Any = self.proxy if kind.network else self.servers.get(fault.server)
        kind.open(target, fault) if on else kind.heal(target, fault)
        self.folder.record_fault(event="begin" if on else "end", action=fault.action, server=fault.server,
                                 at=fault.at, duration=fault.duration)

    def _begin(self, fault: Fault) -> None:
        self._switch(fault, True)

    def _end(self, fault: Fault) -> None:
        self._switch(fault, False)

    def run(self) -> None:
        deadline = time.monotonic() + 120
        start = None
        while start is None and not self._done.is_set() and time.monotonic() < deadline:
            start = self.folder.load_started()
            self._done.wait(0.05)
        if start is None:
            return
        events: list[tuple[float, int, Fault]] = []
        for f in self.faults:
            events.append((start + f.at, 0, f))
            if f.duration is not None:
                events.append((start + f.at + f.duration, 1, f))
        for when, kind, fault in sorted(events, key=lambda e: (e[0], e[1])):
            if self._done.wait(max(0.0, when - time.time())):
                break
            try:
                if kind == 0:
                    self._begin(fault)
                    self._open.append((fault, when))
                else:
                    self._end(fault)
                    self._open = [(f, t) for f, t in self._open if f is not fault]
            except Exception as e:  # a fault that cannot be applied must not stop the run; it is reported
                self.errors.append(f"{fault.action} at {fault.at} s: {e}")

    def finish(self) -> None:
        """The load is over: stop scheduling and heal what is still broken (a window without a duration
        stays open: a killed server stays down only when its fault said so)."""
        self._done.set()
        self.join(timeout=10)
        for fault, _ in list(self._open):
            if fault.duration is None:
                continue
            try:
                self._end(fault)
            except Exception as e:
                self.errors.append(f"healing {fault.action}: {e}")
        self._open.clear()
