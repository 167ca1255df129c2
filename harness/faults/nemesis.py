"""The nemesis: scheduled faults on local servers and on the network path, recorded in the run folder.

Faults are timed from the load's start (the first progress file the load processes write). Every
outcome is recorded (``RunFolder.record_fault``, faults.jsonl version 2), timed from that start: each
window as it opens and heals, what opening or healing one raised, and each fault that was never opened
and why (the load ended first, or never started). The judge rebuilds from that alone what became of every
planned fault (``harness.faults.outcomes``): a fault is evidence, and one that did not happen is
never silently missing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.core.errors import ConfigError
from harness.faults import FAULTS

if TYPE_CHECKING:
    from harness.core.models import FaultSpec
    from harness.core.runfolder import RunFolder
    from harness.stack.process import LocalServer
    from harness.stack.proxy import TcpProxy

OPEN, HEAL = 0, 1  # at the same instant a heal goes after an open (sort order)


class Nemesis(threading.Thread):
    def __init__(self, faults: tuple[FaultSpec, ...], *, folder: RunFolder, servers: Mapping[str, LocalServer | None],
                 proxy: TcpProxy | None, load_duration: float | None = None) -> None:
        super().__init__(name="counterbench-nemesis", daemon=True)
        for f in faults:
            if f.network and proxy is None:
                raise ConfigError("network faults need the fault proxy in front of the target")
            if not f.network and servers.get(f.server) is None:
                raise ConfigError(f"a {f.action} fault needs a local {f.server} server; a --target-url target "
                                  "cannot be killed or paused by counterbench")
        self.faults = faults  # in the scenario's order: a fault is named by its place in it
        self.folder = folder
        self.servers = servers
        self.proxy = proxy
        self.load_duration = load_duration
        self.errors: list[str] = []  # for run.json's fault_errors (faults.jsonl has each in its place)
        self._done = threading.Event()
        self._lock = threading.Lock()  # the thread and ``finish`` never switch a fault at the same time
        self._start: float | None = None  # wall clock of the load's start
        self._tried: set[int] = set()  # faults whose opening was attempted; ``finish`` records the rest not-opened
        self._open: set[int] = set()  # windows open now
        # set by ``load_over`` (from a signal handler: plain assignments only, no lock)
        self._ended_at: float | None = None
        self._stopped_by: str | None = None

    # --- recording --------------------------------------------------------------------------------

    def _record(self, event: str, index: int | None = None, *, wall: float | None = None,
                **detail: str | float | bool | None) -> None:
        """An event in faults.jsonl, timed now (or at ``wall``) and from the load's start."""
        now = time.time() if wall is None else wall
        self.folder.record_fault(event=event, wall=now, t=None if self._start is None else now - self._start,
                                 fault=index, planned=None if index is None else self.faults[index], **detail)

    def _switch(self, index: int, on: bool, *, at_load_end: bool = False) -> None:
        """Open (on) or heal (off) a fault's window and record what happened; an error is recorded, not
        raised: a fault that cannot be applied must not stop the run (the verdict says so instead)."""
        fault = self.faults[index]
        kind = FAULTS[fault.action]
        target: Any = self.proxy if kind.network else self.servers.get(fault.server)
        began = time.time()  # a window opens when the fault starts acting, not when opening it returns
        found: Mapping[str, str | None] | None = None
        try:
            if on:
                kind.open(target, fault)
            else:
                found = kind.heal(target, fault)
        except Exception as e:  # any failure of a fault is an outcome to record, and the run goes on
            error = f"{type(e).__name__}: {e}"
            self.errors.append(f"{fault.action} at {fault.at} s: {error}" if on else f"healing {fault.action}: {error}")
            self._record("open-error" if on else "heal-error", index, error=error)
            self._open.discard(index)
            return
        if on:
            self._record("begin", index, wall=began)
            self._open.add(index)
        else:
            self._record("end", index, **(found or {}), **({"at_load_end": True} if at_load_end else {}))
            self._open.discard(index)

    # --- the schedule -----------------------------------------------------------------------------

    def load_over(self, stopped_by: str | None = None) -> None:
        """The load is ending (a stop signal, or its end): no fault opens after this. Safe in a signal
        handler."""
        if self._ended_at is None:
            self._stopped_by = stopped_by
            self._ended_at = time.time()

    def _load_ended(self) -> bool:
        """Whether the load is over: told so, or past its planned end (a late nemesis opens nothing during
        the drain, when no load would see the fault)."""
        if self._ended_at is not None:
            return True
        return (self._start is not None and self.load_duration is not None
                and time.time() >= self._start + self.load_duration)

    def run(self) -> None:
        deadline = time.monotonic() + 120
        start = None
        while start is None and not self._done.is_set() and time.monotonic() < deadline:
            start = self.folder.load_started()
            self._done.wait(0.05)
        if start is None:
            return  # ``finish`` records every fault as never opened: the load never started
        with self._lock:
            self._start = start
        plan: list[tuple[float, int, int]] = []
        for i, f in enumerate(self.faults):
            plan.append((start + f.at, OPEN, i))
            if f.duration is not None:
                plan.append((start + f.at + f.duration, HEAL, i))
        for when, step, i in sorted(plan):
            if self._done.wait(max(0.0, when - time.time())):
                break
            with self._lock:
                if step == HEAL:
                    if i in self._open:  # a window that never opened (its opening raised) has nothing to heal
                        self._switch(i, False)
                elif not self._load_ended():
                    self._tried.add(i)
                    self._switch(i, True)

    def finish(self) -> None:
        """The load is over: stop scheduling, heal what is still broken (a window without a duration
        stays open: a killed server stays down only when its fault said so), and record each fault never
        opened, with why."""
        self.load_over()
        self._done.set()
        self.join(timeout=30)
        with self._lock:
            for i in sorted(self._open):
                if self.faults[i].duration is not None:
                    self._switch(i, False, at_load_end=True)
            for i in range(len(self.faults)):
                if i not in self._tried:
                    self._not_opened(i)

    def _not_opened(self, index: int) -> None:
        if self._start is None:
            self._record("not-opened", index, why="load-never-started")
            return
        ended = self._ended_at if self._ended_at is not None else time.time()
        if self.load_duration is not None:
            ended = min(ended, self._start + self.load_duration)  # a natural end is the planned one, not the drain's
        self._record("not-opened", index, why="load-ended", load_ended_s=round(ended - self._start, 3),
                     stopped_by=self._stopped_by)
