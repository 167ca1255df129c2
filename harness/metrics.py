"""Exact latency: HdrHistograms per 1 s window and per tag, in the HdrHistogram interval-log format.

Each load process records every op's latency in microseconds (3 significant
digits) into one histogram per tag (``<op>.<outcome>``, and
``<op>.<outcome>.intended`` for latency from the intended send time in open-model
runs). Windows are keyed by completion time, so they close in order: when the
clock passes a window's end, its histograms are encoded to the log and reset.
Memory stays flat however long the run; logs of many processes merge exactly.

Log lines (HdrHistogram log format 1.3, with tags):

    Tag=increment.ok,<start s>,<length s>,<max ms>,<base64 compressed histogram>

``start`` is seconds since the log's ``#[StartTime: ...]`` (wall clock, epoch seconds).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hdrh.histogram import HdrHistogram

from harness.errors import HistoryError

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: nothing a counter op may take is longer
DIGITS = 3
WINDOW_S = 1.0


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


# The histograms' layout (1 us .. 1 h, 3 significant digits): 2048 sub-buckets, so values below
# 2048 us are exact and above that a bucket spans 2**(bit_length - 11) microseconds.
_SUB_BUCKET_BITS = 11


def hdr_bucket(value_us: int) -> int:
    """The lowest value of the HdrHistogram bucket ``value_us`` falls in (clamped to the range)."""
    if value_us < LOWEST_US:
        return LOWEST_US
    if value_us > HIGHEST_US:
        value_us = HIGHEST_US
    shift = value_us.bit_length() - _SUB_BUCKET_BITS
    return value_us if shift <= 0 else (value_us >> shift) << shift


@dataclass(frozen=True, kw_only=True)
class Interval:
    """One window of one tag, from one or several logs."""

    tag: str
    start: float  # wall clock, epoch seconds
    length: float
    histogram: HdrHistogram


class LatencyRecorder:
    """Per-process recorder; ``record`` costs a few microseconds."""

    def __init__(self, path: Path, *, start_wall: float | None = None, progress: Path | None = None) -> None:
        self.path = path
        self.start_wall = time.time() if start_wall is None else start_wall
        self._mono0 = time.monotonic()
        self._window = 0
        self._live: dict[str, HdrHistogram] = {}
        self._pending: dict[str, dict[int, int]] = {}  # tag -> bucket value -> count, this window
        self._counts: dict[str, int] = {}
        self._last_p99: dict[str, float] = {}
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
        self._cpu = open(path.with_suffix(".cpu.csv"), "x", encoding="utf-8")  # noqa: SIM115
        self._cpu.write("window_start_s,cpu_s\n")
        self._cpu0 = time.process_time()

    def _roll(self, now_window: int) -> None:
        self._flush_window()
        self._window = now_window

    def _fill(self) -> None:
        for tag, counts in self._pending.items():
            h = self._live.get(tag)
            if h is None:
                h = self._live[tag] = new_histogram()
            for v, n in counts.items():
                h.record_value(v, n)
            self._counts[tag] = self._counts.get(tag, 0) + sum(counts.values())
        self._pending.clear()

    def _flush_window(self) -> None:
        self._fill()
        start = self._window * WINDOW_S
        now_cpu = time.process_time()
        self._cpu.write(f"{start:.3f},{now_cpu - self._cpu0:.4f}\n")
        self._cpu.flush()
        self._cpu0 = now_cpu
        self._last_p99 = {t: h.get_value_at_percentile(99) / 1000 for t, h in self._live.items() if h.get_total_count()}
        for tag, h in self._live.items():
            if h.get_total_count():
                self._f.write(f"Tag={tag},{start:.3f},{WINDOW_S:.3f},{h.get_max_value() / 1000:.3f},"
                              f"{h.encode().decode()}\n")
                h.reset()
        self._f.flush()
        if self._progress is not None:
            self._write_progress()

    def record(self, tag: str, value_us: float) -> None:
        """Count the value in its HdrHistogram bucket; the histogram is filled when the window closes.

        ``hdr_bucket`` gives every value of a bucket the same representative, so the histogram
        built from these counts is identical to one that recorded each value (a test holds it to
        that) -- at a fraction of the cost per op.
        """
        w = int((time.monotonic() - self._mono0) / WINDOW_S)
        if w != self._window:
            self._roll(w)
        counts = self._pending.get(tag)
        if counts is None:
            counts = self._pending[tag] = {}
        v = hdr_bucket(int(value_us))
        counts[v] = counts.get(v, 0) + 1

    def tick(self) -> None:
        """Close the window if its time has passed (call about once a second when idle)."""
        w = int((time.monotonic() - self._mono0) / WINDOW_S)
        if w != self._window:
            self._roll(w)

    def _write_progress(self) -> None:
        assert self._progress is not None
        doc = {"schema_version": 1, "start_wall": self.start_wall, "window": self._window,
               "elapsed": time.monotonic() - self._mono0,
               "counts": self._counts, "last_window_p99_ms": self._last_p99}
        tmp = self._progress.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self._progress)

    def close(self) -> None:
        self._flush_window()
        self._f.close()
        self._cpu.close()


SATURATED = 0.9  # of one core: a gevent process cannot use more


def load_generator_cpu(folder: Path) -> dict[str, object]:
    """Per load process: mean and peak CPU share of one core per window, and whether it was saturated
    (at or above 90% in at least half of its windows)."""
    workers = []
    for path in sorted(folder.glob("*.cpu.csv")):
        shares = []
        for line in path.read_text().splitlines()[1:]:
            try:
                shares.append(float(line.split(",")[1]) / WINDOW_S)
            except (IndexError, ValueError):
                continue
        full = shares[1:-1] or shares  # the first and last windows are partial
        if not full:
            continue
        busy = sum(x >= SATURATED for x in full) / len(full)
        workers.append({"worker": path.name.removesuffix(".cpu.csv"), "cpu_mean": round(sum(full) / len(full), 3),
                        "cpu_max": round(max(full), 3), "saturated": busy >= 0.5})
    return {"workers": workers, "saturated": any(w["saturated"] for w in workers)}


def read_log(path: Path) -> Iterator[Interval]:
    start_wall = 0.0
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise HistoryError(f"cannot read latency log {path}: {e}") from e
    with f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if line.startswith("#[StartTime:"):
                start_wall = float(line.split()[1])
                continue
            if not line or line.startswith(("#", '"')):
                continue
            tag = ""
            if line.startswith("Tag="):
                tag, _, line = line[4:].partition(",")
            try:
                start, length, _max, encoded = line.split(",")
                h = HdrHistogram.decode(encoded.encode(), b64_wrap=True)
            except (ValueError, TypeError) as e:
                raise HistoryError(f"{path}:{n}: not an interval-log line") from e
            yield Interval(tag=tag, start=start_wall + float(start), length=float(length), histogram=h)


def read_logs(paths: Iterable[Path]) -> list[Interval]:
    return [i for p in sorted(paths) for i in read_log(p)]


def merge(intervals: Iterable[Interval]) -> HdrHistogram:
    """One histogram of every value recorded in the intervals: exact, no re-bucketing."""
    out = new_histogram()
    for i in intervals:
        out.add(i.histogram)
    return out


def percentiles(h: HdrHistogram, ps: Iterable[float] = (50, 90, 99, 99.9)) -> dict[str, float | None]:
    """Milliseconds at each percentile, plus max; None when empty."""
    n = h.get_total_count()
    out: dict[str, float | None] = {}
    for p in ps:
        out[f"p{p:g}"] = h.get_value_at_percentile(p) / 1000 if n else None
    out["max"] = h.get_max_value() / 1000 if n else None
    return out


def percentile_distribution(h: HdrHistogram, *, steps: int = 4) -> list[tuple[float, float]]:
    """(percentile, ms) points for an HdrHistogram-style plot, up to the max."""
    if not h.get_total_count():
        return []
    points: list[tuple[float, float]] = []
    p = 0.0
    while p < 99.9999:
        points.append((p, h.get_value_at_percentile(p) / 1000))
        # halve the distance to 100 in `steps` steps: evenly spaced on a 1/(1-p) log axis
        remaining = 100 - p
        p = 100 - remaining / (2 ** (1 / steps))
        if math.isclose(p, 100):
            break
    points.append((99.9999, h.get_max_value() / 1000))
    return points
