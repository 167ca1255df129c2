"""The nemesis: scheduled faults on local servers and on the network path, recorded in the run folder.

Faults are timed from the load's start (the first progress file the load processes write).
Each window is appended to ``faults.jsonl`` when it opens and when it closes, so reports can
shade it and count the ops and outcomes that fell inside it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from harness.config import Fault
from harness.errors import ConfigError
from harness.progress import progress_files
from harness.stack.process import LocalServer
from harness.stack.proxy import TcpProxy

# Version history of faults.jsonl: 1: first version
SCHEMA_VERSION = 1


def load_started(folder: Path) -> float | None:
    """Wall-clock start of the load, as the earliest load process reported it."""
    starts = []
    for f in progress_files(folder):
        try:
            starts.append(float(json.loads(f.read_text())["start_wall"]))
        except (OSError, ValueError, KeyError):
            continue
    return min(starts) if starts else None


class Nemesis(threading.Thread):
    def __init__(self, faults: tuple[Fault, ...], *, folder: Path, servers: dict[str, LocalServer | None],
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

    def _record(self, fault: Fault, event: str, **extra: Any) -> None:
        line = {"schema_version": SCHEMA_VERSION, "event": event, "action": fault.action, "server": fault.server,
                "at": fault.at, "duration": fault.duration, "time": time.time(), **extra}
        with open(self.folder / "faults.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def _switch(self, fault: Fault, on: bool) -> None:
        """Open (on) or heal (off) a fault's window; the constructor checked its server or proxy exists."""
        server, proxy = self.servers.get(fault.server), self.proxy
        if fault.action == "kill":
            server.kill() if on else server.restart()  # type: ignore[union-attr]
        elif fault.action == "pause":
            server.pause() if on else server.resume()  # type: ignore[union-attr]
        elif fault.action == "stall":
            proxy.stalled = on  # type: ignore[union-attr]
        elif fault.action == "drop":
            proxy.drop(on)  # type: ignore[union-attr]
        elif fault.action == "latency":
            proxy.delay = fault.delay_ms / 1000 if on else 0.0  # type: ignore[union-attr]
        self._record(fault, "begin" if on else "end")

    def _begin(self, fault: Fault) -> None:
        self._switch(fault, True)

    def _end(self, fault: Fault) -> None:
        self._switch(fault, False)

    def run(self) -> None:
        deadline = time.monotonic() + 120
        start = None
        while start is None and not self._done.is_set() and time.monotonic() < deadline:
            start = load_started(self.folder)
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
        """The load is over: stop scheduling and heal what is still broken (a killed server stays down
        only when its fault said so)."""
        self._done.set()
        self.join(timeout=10)
        for fault, _ in list(self._open):
            if fault.action == "kill" and fault.duration is None:
                continue
            try:
                self._end(fault)
            except Exception as e:
                self.errors.append(f"healing {fault.action}: {e}")
        self._open.clear()


def read_faults(folder: Path) -> list[dict[str, Any]]:
    """Fault windows of a run: action, server, start and end (wall clock; end None if never healed)."""
    path = folder / "faults.jsonl"
    if not path.exists():
        return []
    windows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["event"] == "begin":
            windows.append({"action": rec["action"], "server": rec["server"], "start": rec["time"], "end": None})
        else:
            for w in windows:
                if w["action"] == rec["action"] and w["server"] == rec["server"] and w["end"] is None:
                    w["end"] = rec["time"]
                    break
    return windows
