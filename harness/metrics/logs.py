"""Reading interval logs: windows decoded into numpy counts, merged exactly, percentiles."""

from __future__ import annotations

import heapq
import math
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
from hdrh.histogram import HdrHistogram

from harness.core.errors import HistoryError
from harness.metrics.hdr import MergedHistogram, PackedCounts, _layout, decode_counts, new_histogram

T = TypeVar("T")


class UnorderedLog(HistoryError):
    """A latency log whose windows go back in time (LatencyRecorder never writes one): it cannot be streamed."""


class LogLine(NamedTuple):
    """One window of a latency log as written, its histogram still encoded. As a tuple it orders by start,
    then by the log it came from (``merged_lines``' k-way merge compares no further)."""

    start: float  # wall clock, epoch seconds
    log: int  # which of the logs merged
    length: float
    tag: str
    encoded: str
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def read_lines(path: Path, *, log: int = 0, ordered: bool = False) -> Iterator[LogLine]:
    """Every window line of a latency log, in file order, parsed but not decoded. ``ordered``: raise
    UnorderedLog at a window that starts before the one above it."""
    start_wall = 0.0
    last = -math.inf
    name = str(path)
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
                window = LogLine(start_wall + float(start), log, float(length), tag, encoded, name, n)
            except ValueError as e:
                raise HistoryError(f"{path}:{n}: not an interval-log line") from e
            if ordered:
                if window.start < last:
                    raise UnorderedLog(f"{path}:{n}: a window starts before the one above it")
                last = window.start
            yield window


def read_log(path: Path) -> Iterator[LogInterval]:
    """Every window of a latency log, its histogram's counts decoded into two small arrays."""
    for w in read_lines(path):
        try:
            index, count = decode_counts(w.encoded)
        except (ValueError, TypeError) as e:
            raise HistoryError(f"{w.where}: not an interval-log line") from e
        yield LogInterval(tag=w.tag, start=w.start, length=w.length, index=index, count=count)


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


# Streaming many logs: the windows of every log in time order (each log is in time order, as
# LatencyRecorder writes it), decoded in batches whose counts live in a few flat arrays.


def merged_lines(paths: Iterable[Path]) -> Iterator[LogLine]:
    """The windows of every log, by start time (a k-way merge: one line of each log held at a time).
    Raises UnorderedLog, part-way, for a log that is not in time order."""
    return heapq.merge(*(read_lines(p, log=n, ordered=True) for n, p in enumerate(sorted(paths))))


@dataclass(frozen=True, kw_only=True, eq=False)
class WindowBatch:
    """Consecutive windows and their counts: window ``w`` is ``tags[tag[w]]`` over ``[start[w], start[w] +
    length[w])``; its nonzero buckets are ``slot[first[w]:first[w + 1]] - base[w]``, with their ``count``
    (slots, not buckets: a key made of a window's own offset plus its slot costs one pass, not two)."""

    start: Any  # numpy float64, wall clock, ascending
    length: Any  # numpy float64
    tag: Any  # numpy int64: into ``tags``
    tags: list[str]  # every tag seen so far (shared by the batches of one stream: ids stay put)
    first: Any  # numpy int64, one more than the windows
    slot: Any  # numpy int64, ascending
    base: Any  # numpy int64, one per window
    count: Any  # numpy int64

    def __len__(self) -> int:
        return len(self.start)


def line_batches(lines: Iterable[LogLine], *, capacity: int = 1 << 21, thread: bool = False
                 ) -> Iterator[WindowBatch]:
    """Windows decoded into batches of about ``capacity`` bucket slots (8 bytes each).

    ``thread``: the lines are read and decoded by a second thread, up to two batches ahead of the caller's
    use of them. zlib lets go of the GIL as it inflates and numpy as it works on whole arrays, so on two
    cores decoding one batch and folding the batch before overlap.
    """
    depth = 2
    free: queue.SimpleQueue[PackedCounts] = queue.SimpleQueue()
    for _ in range(depth + 2 if thread else 1):  # enough that the decoder never waits for one
        free.put(PackedCounts(capacity))
    tags: list[str] = []
    filled = _filled(lines, free, tags)
    for meta, packed in (ahead(filled, depth=depth) if thread else filled):
        first, slot, base, count = packed.take()
        free.put(packed)
        yield WindowBatch(**meta, tags=tags, first=first, slot=slot, base=base, count=count)


def _filled(lines: Iterable[LogLine], free: queue.SimpleQueue[PackedCounts], tags: list[str]
            ) -> Iterator[tuple[dict[str, Any], PackedCounts]]:
    """Each batch's windows (start, length, tag) and their counts decoded side by side."""
    ids: dict[str, int] = {}
    starts: list[float] = []
    lengths: list[float] = []
    tag_of: list[int] = []
    packed = free.get_nowait()

    def meta() -> dict[str, Any]:
        m = {"start": np.array(starts, dtype=np.float64), "length": np.array(lengths, dtype=np.float64),
             "tag": np.array(tag_of, dtype=np.int64)}
        starts.clear(), lengths.clear(), tag_of.clear()
        return m

    for w in lines:
        if packed.full():
            yield meta(), packed
            packed = free.get_nowait()
        try:
            packed.add(w.encoded)
        except (ValueError, TypeError) as e:
            raise HistoryError(f"{w.where}: not an interval-log line") from e
        t = ids.get(w.tag)
        if t is None:
            t = ids[w.tag] = len(tags)
            tags.append(w.tag)
        starts.append(w.start)
        lengths.append(w.length)
        tag_of.append(t)
    if starts:
        yield meta(), packed


def ahead(items: Iterator[T], *, depth: int) -> Iterator[T]:
    """``items``, produced by a thread up to ``depth`` ahead of the caller; its exception is raised here. The
    thread stops (and closes ``items``) when the caller stops early."""
    out: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for x in items:
                if not put((True, x)):
                    return
            put((False, None))
        except BaseException as e:  # handed to the caller, raised there
            put((False, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="latency-log-decoder", daemon=True)
    worker.start()
    try:
        while True:
            more, x = out.get()
            if not more:
                if x is not None:
                    raise x
                return
            yield x
    finally:
        stop.set()
        worker.join()


def interval_batches(intervals: Iterable[LogInterval], *, windows: int = 4096) -> Iterator[WindowBatch]:
    """The same batches from windows already in memory (in time order)."""
    tags: list[str] = []
    ids: dict[str, int] = {}
    chunk: list[LogInterval] = []

    def batch() -> WindowBatch:
        for i in chunk:
            if i.tag not in ids:
                ids[i.tag] = len(tags)
                tags.append(i.tag)
        tag_of = [ids[i.tag] for i in chunk]
        buckets = _layout().size
        b = WindowBatch(start=np.array([i.start for i in chunk], dtype=np.float64),
                        length=np.array([i.length for i in chunk], dtype=np.float64),
                        tag=np.array(tag_of, dtype=np.int64), tags=tags,
                        first=np.concatenate(([0], np.cumsum([len(i.index) for i in chunk]))).astype(np.int64),
                        slot=np.concatenate([np.asarray(i.index, dtype=np.int64) + w * buckets
                                             for w, i in enumerate(chunk)]),
                        base=np.arange(len(chunk), dtype=np.int64) * buckets,
                        count=np.concatenate([np.asarray(i.count, dtype=np.int64) for i in chunk]))
        chunk.clear()
        return b

    for i in intervals:
        chunk.append(i)
        if len(chunk) == windows:
            yield batch()
    if chunk:
        yield batch()
