"""The live recorder: one set of histograms per 1 s window and tag, written as an interval log."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

from harness.metrics.hdr import WINDOW_NS, WINDOW_S, MergedHistogram, window_histogram


class LatencyRecorder:
    """Per-process recorder of latency windows, keyed by the ``time.monotonic_ns()`` an op completed at.

    ``add`` takes values in bulk (every op's latency, handed over by the history writer, see
    harness.metrics.latencies); ``record`` takes one (open-model extras). Values are bucketed per window when
    it closes. ``tick`` closes the windows the clock has passed: feed every op completed so far first.
    """

    def __init__(self, path: Path, *, cpu: Path | None = None, start_wall: float | None = None,
                 progress: Path | None = None) -> None:
        self.path = path
        self.start_wall = time.time() if start_wall is None else start_wall
        self._mono0 = time.monotonic_ns()
        self._window = 0  # the oldest window still open
        # window -> tag -> chunks of values in microseconds (numpy arrays, or a list of floats)
        self._pending: dict[int, dict[str, list[Any]]] = {}
        self._counts: dict[str, int] = {}
        self._last_ms: dict[str, dict[str, float]] = {}  # the last closed window's percentiles, by tag
        self._cpu_start = time.process_time()
        self._cpu_last = 0.0  # share of one core in the last closed window
        self._progress = progress
        path.parent.mkdir(parents=True, exist_ok=True)
        if progress is not None:
            progress.parent.mkdir(parents=True, exist_ok=True)
            self._write_progress()  # at once: the nemesis times its faults from the load's start
        self._f: IO[str] = open(path, "x", encoding="utf-8")  # noqa: SIM115 - lives with the recorder
        self._f.write("#[counterbench latency histograms, values in microseconds]\n")
        self._f.write(f"#[StartTime: {self.start_wall:.3f} (seconds since epoch)]\n")
        self._f.write('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"\n')
        # the load generator's own CPU per window: a saturated generator's latencies include its queueing
        self._cpu = open(cpu or path.with_suffix(".cpu.csv"), "x", encoding="utf-8")  # noqa: SIM115
        self._cpu.write("window_start_s,cpu_s\n")
        self._cpu0 = time.process_time()

    def _window_of(self, t_ns: int) -> int:
        # a value for a window already written goes into the oldest open one rather than being lost
        return max(self._window, (t_ns - self._mono0) // WINDOW_NS)

    def add(self, tag: str, completed_ns: Any, values_us: Any) -> None:
        """Values (microseconds, a numpy array) of ops completed at ``completed_ns`` (monotonic ns)."""
        if not len(values_us):
            return
        windows = np.maximum((np.asarray(completed_ns) - self._mono0) // WINDOW_NS, self._window)
        lo, hi = int(windows.min()), int(windows.max())
        if lo == hi:  # the usual case: a block of 200 ms rarely spans two windows
            self._pending.setdefault(lo, {}).setdefault(tag, []).append(values_us)
            return
        for w in range(lo, hi + 1):  # a block spans a window or two (np.unique's first call costs 20 ms)
            in_w = windows == w
            if in_w.any():
                self._pending.setdefault(w, {}).setdefault(tag, []).append(values_us[in_w])

    def record(self, tag: str, value_us: float, now_ns: int | None = None) -> None:
        """One value, of an op completed at ``now_ns`` (``time.monotonic_ns()``; read here when None)."""
        w = self._window_of(time.monotonic_ns() if now_ns is None else now_ns)
        chunks = self._pending.setdefault(w, {}).setdefault(tag, [])
        if not chunks or not isinstance(chunks[-1], list):
            chunks.append([])
        chunks[-1].append(value_us)

    def tick(self, now_ns: int | None = None) -> None:
        """Close every window the clock has passed (about every 200 ms while the load runs)."""
        w = (time.monotonic_ns() if now_ns is None else now_ns) - self._mono0
        if w // WINDOW_NS > self._window:
            self._close_windows(w // WINDOW_NS)

    def _close_windows(self, before: int | None) -> None:
        """Write the windows before ``before`` (all, when None), in order, and the CPU used since the
        last time."""
        now_cpu = time.process_time()
        self._cpu.write(f"{self._window * WINDOW_S:.3f},{now_cpu - self._cpu0:.4f}\n")
        self._cpu_last = (now_cpu - self._cpu0) / WINDOW_S
        self._cpu.flush()
        self._cpu0 = now_cpu
        done = sorted(w for w in self._pending if before is None or w < before)
        if done:
            self._last_ms = {}
        for w in done:
            start = w * WINDOW_S
            for tag, chunks in self._pending.pop(w).items():
                h = window_histogram(chunks[0] if len(chunks) == 1 else np.concatenate(
                    [np.asarray(c, dtype=np.float64).astype(np.int64) for c in chunks]))
                self._counts[tag] = self._counts.get(tag, 0) + h.total_count
                merged = MergedHistogram(np.ctypeslib.as_array(h.counts))
                self._last_ms[tag] = {p: merged.get_value_at_percentile(q) / 1e3
                                      for p, q in (("p50", 50), ("p99", 99), ("p99.9", 99.9))}
                self._last_ms[tag]["max"] = h.get_max_value() / 1e3
                self._f.write(f"Tag={tag},{start:.3f},{WINDOW_S:.3f},{h.get_max_value() / 1000:.3f},"
                              f"{h.encode().decode()}\n")
        self._f.flush()
        if before is not None:
            self._window = before
        if self._progress is not None:
            self._write_progress()

    def progress_doc(self) -> dict[str, Any]:
        """This process's figures so far: what progress files hold and remote workers send their master."""
        return {"schema_version": 1, "start_wall": self.start_wall, "window": self._window,
                "elapsed": (time.monotonic_ns() - self._mono0) / 1e9,
                "counts": self._counts, "last_window_ms": self._last_ms,
                # the live line's figure, as earlier progress files and remote workers' messages carry it
                "last_window_p99_ms": {tag: ms["p99"] for tag, ms in self._last_ms.items()},
                "cpu": self._cpu_last, "cpu_seconds": time.process_time() - self._cpu_start}

    def _write_progress(self) -> None:
        assert self._progress is not None
        doc = self.progress_doc()
        tmp = self._progress.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self._progress)

    def close(self) -> None:
        self._close_windows(None)
        self._f.close()
        self._cpu.close()
