"""Reading interval logs: windows decoded into numpy counts, merged exactly, percentiles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from harness.errors import HistoryError
from harness.metrics.hdr import MergedHistogram, _layout, decode_counts, new_histogram


def read_log(path: Path) -> Iterator[LogInterval]:
    """Every window of a latency log, its histogram's counts decoded into two small arrays."""
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
                index, count = decode_counts(encoded)
            except (ValueError, TypeError) as e:
                raise HistoryError(f"{path}:{n}: not an interval-log line") from e
            yield LogInterval(tag=tag, start=start_wall + float(start), length=float(length), index=index,
                              count=count)


def read_logs(paths: Iterable[Path]) -> list[LogInterval]:
    return [i for p in sorted(paths) for i in read_log(p)]


def merge(intervals: Iterable[LogInterval]) -> MergedHistogram:
    """One histogram of every value recorded in the intervals: exact, no re-bucketing."""
    counts = np.zeros(_layout().size, dtype=np.int64)
    for i in intervals:
        counts[i.index] += i.count  # an interval's indices are distinct
    return MergedHistogram(counts)


def percentiles(h: HdrHistogram | MergedHistogram, ps: Iterable[float] = (50, 90, 99, 99.9)
                ) -> dict[str, float | None]:
    """Milliseconds at each percentile, plus max; None when empty."""
    n = h.get_total_count()
    out: dict[str, float | None] = {}
    for p in ps:
        out[f"p{p:g}"] = h.get_value_at_percentile(p) / 1000 if n else None
    out["max"] = h.get_max_value() / 1000 if n else None
    return out


def percentile_distribution(h: HdrHistogram | MergedHistogram, *, steps: int = 4) -> list[tuple[float, float]]:
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


# Reading logs fast: the windows' counts are decoded straight into numpy arrays (no HdrHistogram
# object per window) and merged histograms are dense count arrays over the same bucket layout.


@dataclass(frozen=True, kw_only=True, eq=False)
class LogInterval:
    """One window of one tag as read from a log: the nonzero counts of its histogram."""

    tag: str
    start: float  # wall clock, epoch seconds
    length: float
    index: Any  # numpy uint16 (int64 from a foreign layout): counts-array indices of new_histogram(), ascending
    count: Any  # numpy int32 or int64: the count at each index (> 0)

    def total(self) -> int:
        return int(self.count.sum())

    @property
    def histogram(self) -> HdrHistogram:
        """The window as an HdrHistogram (built on demand)."""
        h = new_histogram()
        for i, c in zip(self.index.tolist(), self.count.tolist(), strict=True):
            h.counts[i] = c
        if len(self.index):
            h.set_internal_tacking_values(int(self.index[0]), int(self.index[-1]), self.total())
        return h


def window_percentiles(intervals: list[LogInterval], ps: Iterable[float] = (50, 90, 99, 99.9)
                       ) -> tuple[int, dict[str, float | None]]:
    """Count and ``percentiles`` of the merge of a few windows, from their sparse counts (no dense
    histogram: a report computes this for every second of every tag)."""
    if len(intervals) == 1:
        index, count = intervals[0].index, intervals[0].count
    else:
        index = np.concatenate([i.index for i in intervals])
        order = np.argsort(index, kind="stable")
        index, count = index[order], np.concatenate([i.count for i in intervals])[order]
    cumulative = np.cumsum(count, dtype=np.int64)
    total = int(cumulative[-1]) if len(cumulative) else 0
    out: dict[str, float | None] = {}
    highest = _layout().highest
    for p in ps:
        if not total:
            out[f"p{p:g}"] = None
            continue
        target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)  # as HdrHistogram rounds
        at = int(index[int(np.searchsorted(cumulative, target, side="left"))])
        out[f"p{p:g}"] = int(highest[at] if p else _layout().lowest[at]) / 1000
    out["max"] = int(highest[int(index[-1])]) / 1000 if total else None
    return total, out
