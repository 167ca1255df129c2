"""Live progress while the load runs: elapsed/remaining, ops/s, outcomes, current p99.

Read from the progress files the load processes refresh every second; a TTY gets
one live line (rich), anything else a plain line every few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.config import Scenario


def snapshot(folder: Path) -> dict[str, Any]:
    counts: dict[str, int] = {"ok": 0, "fail": 0, "indeterminate": 0}
    p99: float | None = None
    for f in (folder / "progress").glob("*.json"):
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
    return {**counts, "p99": p99}


def line(scenario: Scenario, elapsed: float, snap: dict[str, Any], rate: float) -> str:
    total = scenario.load.duration
    p99 = "-" if snap["p99"] is None else f"{snap['p99']:.2f} ms"
    return (f"{scenario.name}: {min(elapsed, total):4.0f}/{total} s  {rate:8.0f} ops/s  ok {snap['ok']}  "
            f"fail {snap['fail']}  indeterminate {snap['indeterminate']}  p99 {p99}")


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
    try:
        while proc.poll() is None:
            time.sleep(0.25)
            now = time.monotonic()
            snap = snapshot(folder)
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
