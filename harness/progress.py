"""Live progress while the load runs: elapsed/remaining, ops/s, outcomes, current p99, workers.

Read from the progress files of the run folder, refreshed every second:

    progress/<worker>.json          by each load process on this machine, itself
    progress/remote/<worker>.json   by the master, for each worker on another machine, from the
                                    figures the worker sends it every second
    progress/master.json            by the master: the workers it expects and those connected

A TTY gets one live line (rich), anything else a plain line every few seconds; a worker that
connects or goes away gets a line of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.config import Scenario

REMOTE = "remote"
ROSTER = "master.json"


def remote_progress_file(folder: Path, worker: str) -> Path:
    """Where the master keeps a remote worker's latest figures (the name comes over the network)."""
    if not worker or "/" in worker or worker.startswith(".") or len(worker) > 200:
        raise ValueError(f"refusing a worker name {worker[:40]!r}")
    return folder / "progress" / REMOTE / f"{worker}.json"


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Atomically: readers poll these files while they are refreshed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"schema_version": 1, **doc}))
    os.replace(tmp, path)


def progress_files(folder: Path) -> list[Path]:
    """Every load process's latest figures: this machine's and, from the master, other machines'."""
    progress = folder / "progress"
    return [f for f in progress.glob("*.json") if f.name != ROSTER] + sorted((progress / REMOTE).glob("*.json"))


def roster(folder: Path) -> dict[str, Any] | None:
    """The master's view of its workers (distributed runs only)."""
    try:
        return dict(json.loads((folder / "progress" / ROSTER).read_text()))
    except (OSError, ValueError):
        return None


def snapshot(folder: Path) -> dict[str, Any]:
    counts: dict[str, int] = {"ok": 0, "fail": 0, "indeterminate": 0}
    p99: float | None = None
    for f in progress_files(folder):
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now: next time
        for tag, n in doc.get("counts", {}).items():
            parts = tag.split(".")
            if len(parts) == 2 and parts[1] in counts:
                counts[parts[1]] += n
        for tag, v in doc.get("last_window_p99_ms", {}).items():
            if tag.endswith(".ok"):
                p99 = v if p99 is None else max(p99, v)
    return {**counts, "p99": p99, "roster": roster(folder)}


def line(scenario: Scenario, elapsed: float, snap: dict[str, Any], rate: float) -> str:
    total = scenario.load.duration
    p99 = "-" if snap["p99"] is None else f"{snap['p99']:.2f} ms"
    workers = ""
    if snap.get("roster"):
        r = snap["roster"]
        workers = f"  workers {len(r['connected'])}/{r['expected']}"
    return (f"{scenario.name}: {min(elapsed, total):4.0f}/{total} s  {rate:8.0f} ops/s  ok {snap['ok']}  "
            f"fail {snap['fail']}  indeterminate {snap['indeterminate']}  p99 {p99}{workers}")


def roster_changes(before: set[str], snap: dict[str, Any]) -> tuple[set[str], list[str]]:
    """The workers connected now, and a line for each that connected or went away since ``before``."""
    now = set((snap.get("roster") or {}).get("connected", []))
    lines = [f"worker {w} connected" for w in sorted(now - before)] + \
            [f"worker {w} is gone" for w in sorted(before - now)]
    return now, lines


def watch(proc: subprocess.Popen[bytes], folder: Path, scenario: Scenario, *, quiet: bool) -> int:
    """Wait for the load process, showing progress unless quiet; returns its exit code."""
    if quiet:
        return proc.wait()
    start = time.monotonic()
    last_t, last_n = start, 0
    tty = sys.stdout.isatty()
    live: Any = None
    if tty:
        from rich.console import Console
        from rich.live import Live

        live = Live(console=Console(), refresh_per_second=4, transient=True)
        live.start()
    next_plain = start + 2
    connected: set[str] = set()
    try:
        while proc.poll() is None:
            time.sleep(0.25)
            now = time.monotonic()
            snap = snapshot(folder)
            connected, events = roster_changes(connected, snap)
            for event in events:
                if live is not None:
                    live.console.print(f"{scenario.name}: {event}")
                else:
                    print(f"{scenario.name}: {event}", flush=True)
            n = snap["ok"] + snap["fail"] + snap["indeterminate"]
            if now - last_t >= 1:
                rate = (n - last_n) / (now - last_t)
                last_t, last_n = now, n
                text = line(scenario, now - start, snap, rate)
                if live is not None:
                    live.update(text)
                elif now >= next_plain:
                    print(text, flush=True)
                    next_plain = now + 2
    finally:
        if live is not None:
            live.stop()
    return proc.returncode
