"""Live progress while the load runs: elapsed/remaining, ops/s, outcomes, current p99, workers.

Read from the progress files of the run folder (``RunFolder.progress``), refreshed every second
by each load process on this machine, and by the master for each worker on another machine
(from the figures the worker sends it every second), with the master's roster of workers.

A TTY gets one live line (rich), anything else a plain line every few seconds; a worker that
connects or goes away gets a line of its own, and so does each violation the online checks prove
(``harness.checks.online``, polled every half second), which the live line then counts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from harness.config.scenario import Scenario
from harness.core.runfolder import RunFolder
from harness.metrics.tags import SERVICE, Tag


def snapshot(folder: RunFolder) -> dict[str, Any]:
    """Every load process's figures summed: ops by outcome (service time of each), the worst last p99."""
    counts: dict[str, int] = {"ok": 0, "fail": 0, "indeterminate": 0}
    p99: float | None = None
    for doc in folder.progress().values():
        for tag, n in doc.get("counts", {}).items():
            t = Tag.parse(tag)
            if t.measure == SERVICE and t.outcome in counts:
                counts[t.outcome] += n
        for tag, v in doc.get("last_window_p99_ms", {}).items():
            t = Tag.parse(tag)
            if t.measure == SERVICE and t.outcome == "ok":
                p99 = v if p99 is None else max(p99, v)
    return {**counts, "p99": p99, "roster": folder.roster()}


def line(scenario: Scenario, elapsed: float, snap: dict[str, Any], rate: float,
         violations: dict[str, int] | None = None) -> str:
    total = scenario.load.duration
    p99 = "-" if snap["p99"] is None else f"{snap['p99']:.2f} ms"
    workers = ""
    if snap.get("roster"):
        r = snap["roster"]
        workers = f"  workers {len(r['connected'])}/{r['expected']}"
    found = ""
    if violations:
        found = "  VIOLATIONS " + ", ".join(f"{check} {n:,}" for check, n in violations.items())
    return (f"{scenario.name}: {min(elapsed, total):4.0f}/{total} s  {rate:8.0f} ops/s  ok {snap['ok']}  "
            f"fail {snap['fail']}  indeterminate {snap['indeterminate']}  p99 {p99}{workers}{found}")


def roster_changes(before: set[str], snap: dict[str, Any]) -> tuple[set[str], list[str]]:
    """The workers connected now, and a line for each that connected or went away since ``before``."""
    now = set((snap.get("roster") or {}).get("connected", []))
    lines = [f"worker {w} connected" for w in sorted(now - before)] + \
            [f"worker {w} is gone" for w in sorted(before - now)]
    return now, lines


ONLINE_EVERY = 0.5  # seconds between two polls of the online checks


class Finding(Protocol):
    """A violation proven while the load runs (``harness.checks.online.Violation``; given, not imported:
    the load stage does not know the checks)."""

    after_s: float

    def line(self) -> str: ...

    def doc(self) -> dict[str, Any]: ...


class Online(Protocol):
    """The online checks, as the progress loop polls them (``harness.checks.online.OnlineChecks``)."""

    counts: dict[str, int]

    def poll(self, after_s: float) -> list[Any]: ...


def watch(proc: subprocess.Popen[bytes], folder: RunFolder, scenario: Scenario, *, quiet: bool,
          online: Online | None = None, on_violation: Callable[[Finding], None] | None = None) -> int:
    """Wait for the load process, showing progress unless quiet, and polling the online checks (each
    violation they prove gets a line of its own, and goes to ``on_violation``); returns its exit code."""
    if quiet and online is None:
        return proc.wait()
    start = time.monotonic()
    last_t, last_n = start, 0
    tty = sys.stdout.isatty() and not quiet
    live: Any = None
    if tty:
        from rich.console import Console
        from rich.live import Live

        live = Live(console=Console(), refresh_per_second=4, transient=True)
        live.start()

    def say(text: str) -> None:
        if live is not None:
            live.console.print(text)
        elif not quiet:
            print(text, flush=True)

    next_plain = start + 2
    next_online = start
    connected: set[str] = set()
    try:
        while proc.poll() is None:
            time.sleep(0.25)
            now = time.monotonic()
            if online is not None and now >= next_online:
                next_online = now + ONLINE_EVERY
                for v in online.poll(now - start):
                    say(f"{scenario.name}: {v.line()}")
                    if on_violation is not None:
                        on_violation(v)
            if quiet:
                continue
            snap = snapshot(folder)
            connected, events = roster_changes(connected, snap)
            for event in events:
                say(f"{scenario.name}: {event}")
            n = snap["ok"] + snap["fail"] + snap["indeterminate"]
            if now - last_t >= 1:
                rate = (n - last_n) / (now - last_t)
                last_t, last_n = now, n
                text = line(scenario, now - start, snap, rate, online.counts if online is not None else None)
                if live is not None:
                    live.update(text)
                elif now >= next_plain:
                    print(text, flush=True)
                    next_plain = now + 2
    finally:
        if live is not None:
            live.stop()
    return proc.returncode
