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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from hdrh.histogram import HdrHistogram

from harness.errors import HistoryError

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: nothing a counter op may take is longer
DIGITS = 3
WINDOW_S = 1.0


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def window_histogram(values: Sequence[float] | Any) -> HdrHistogram:
    """The HdrHistogram of values in microseconds (truncated to whole microseconds, clamped to the
    range), built with numpy: each value's bucket by HdrHistogram's own index arithmetic, counts by
    bincount. Identical, bucket for bucket, to recording each value (a test holds it to that)."""
    layout = _layout()
    v = np.asarray(values)
    v = np.clip(v if v.dtype == np.int64 else v.astype(np.float64).astype(np.int64), LOWEST_US, HIGHEST_US)
    h = new_histogram()
    # HdrHistogram's counts index: the bucket is the power of two above (v | sub_bucket_mask)
    # (its bit length, exact through frexp: values are below 2**53), the sub-bucket v's top bits
    pow2 = np.frexp((v | h.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = pow2 - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    index = ((bucket + 1) << h.sub_bucket_half_count_magnitude) + (
        (v >> (bucket + h.unit_magnitude)) - h.sub_bucket_half_count)
    counts = np.bincount(index, minlength=layout.size)
    np.ctypeslib.as_array(h.counts)[:] = counts
    h.total_count = len(v)
    if len(v):
        # what record_value would have tracked, with each value's bucket as its representative
        h.min_value, h.max_value = int(layout.lowest[index.min()]), int(layout.lowest[index.max()])
    return h


WINDOW_NS = int(WINDOW_S * 1e9)


def op_label(kind: str) -> str:
    """How reports name an op kind."""
    return "decrement-if-positive" if kind == "decr_if_positive" else "increment"


def op_tag(kind: str, outcome: str, measure: str = "") -> str:
    """A histogram's tag: ``increment.ok``, ``decrement-if-positive.fail.intended``, ..."""
    op = op_label(kind)
    return f"{op}.{outcome}.{measure}" if measure else f"{op}.{outcome}"


class LatencyRecorder:
    """Per-process recorder of latency windows, keyed by the ``time.monotonic_ns()`` an op completed at.

    ``add`` takes values in bulk (every op's latency, handed over by the history writer, see
    harness.latencies); ``record`` takes one (open-model extras). Values are bucketed per window when
    it closes. ``tick`` closes the windows the clock has passed: feed every op completed so far first.
    """

    def __init__(self, path: Path, *, start_wall: float | None = None, progress: Path | None = None) -> None:
        self.path = path
        self.start_wall = time.time() if start_wall is None else start_wall
        self._mono0 = time.monotonic_ns()
        self._window = 0  # the oldest window still open
        # window -> tag -> chunks of values in microseconds (numpy arrays, or a list of floats)
        self._pending: dict[int, dict[str, list[Any]]] = {}
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
        self._cpu.flush()
        self._cpu0 = now_cpu
        done = sorted(w for w in self._pending if before is None or w < before)
        if done:
            self._last_p99 = {}
        for w in done:
            start = w * WINDOW_S
            for tag, chunks in self._pending.pop(w).items():
                h = window_histogram(chunks[0] if len(chunks) == 1 else np.concatenate(
                    [np.asarray(c, dtype=np.float64).astype(np.int64) for c in chunks]))
                self._counts[tag] = self._counts.get(tag, 0) + h.total_count
                self._last_p99[tag] = MergedHistogram(np.ctypeslib.as_array(h.counts)).get_value_at_percentile(99) / 1e3
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
                "counts": self._counts, "last_window_p99_ms": self._last_p99}

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


class MergedHistogram:
    """Exact counts of merged windows (dense int64 over new_histogram()'s buckets).

    Answers as an HdrHistogram of the same counts does (``get_value_at_percentile``,
    ``get_max_value``, ``get_total_count``), with numpy instead of a Python loop over buckets.
    """

    def __init__(self, counts: Any) -> None:
        self.counts = counts
        self._cumulative = np.cumsum(counts)
        self._total = int(self._cumulative[-1]) if len(counts) else 0

    def get_total_count(self) -> int:
        return self._total

    def get_value_at_percentile(self, percentile: float) -> int:
        target = max(int(min(percentile, 100.0) * self._total / 100 + 0.5), 1)  # as HdrHistogram rounds
        i = int(np.searchsorted(self._cumulative, target, side="left"))
        if i >= len(self.counts):
            return 0
        layout = _layout()
        return int(layout.highest[i] if percentile else layout.lowest[i])

    def get_max_value(self) -> int:
        nonzero = np.flatnonzero(self.counts)
        return int(_layout().highest[nonzero[-1]]) if len(nonzero) else 0


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


@dataclass(frozen=True)
class _Layout:
    size: int
    lowest: Any  # numpy int64: lowest value of each bucket
    highest: Any  # numpy int64: highest value of each bucket
    scratch: Any  # numpy int64, all zeros between uses: decode_counts decodes into it


_LAYOUT: list[_Layout] = []


def _layout() -> _Layout:
    """The bucket values of new_histogram(), vectorised from HdrHistogram's index arithmetic
    (``get_value_from_index`` and ``get_highest_equivalent_value``; a test holds them equal)."""
    if not _LAYOUT:
        h = new_histogram()
        i = np.arange(h.counts_len, dtype=np.int64)
        half, half_mag = h.sub_bucket_half_count, h.sub_bucket_half_count_magnitude
        bucket = (i >> half_mag) - 1
        sub = (i & (half - 1)) + half
        sub = np.where(bucket < 0, sub - half, sub)
        bucket = np.maximum(bucket, 0)
        lowest = sub << (bucket + h.unit_magnitude)
        highest = lowest + (np.int64(1) << (bucket + h.unit_magnitude)) - 1
        _LAYOUT.append(_Layout(size=h.counts_len, lowest=lowest, highest=highest,
                               scratch=np.zeros(h.counts_len, dtype=np.int64)))
    return _LAYOUT[0]


_COMPRESSION_COOKIE, _ENCODING_COOKIE = 0x1C849304, 0x1C849303
_PAYLOAD_HEADER = 40  # bytes before the counts in a decompressed payload


def decode_counts(encoded: str | bytes) -> tuple[Any, Any]:
    """(indices, counts) of a base64 compressed HdrHistogram, in new_histogram()'s layout.

    Unwraps the V2 format (base64 of a header and a zlib payload) and decodes its counts with
    the C decoder hdrh itself uses, into one reused array; a histogram of another layout is
    re-recorded into ours through hdrh. Raises ValueError for anything that is not such a histogram.
    """
    import base64
    import binascii
    import struct
    import zlib

    from pyhdrh import decode  # the hdrhistogram package's C codec

    try:
        raw = base64.b64decode(encoded)
        cookie, length = struct.unpack_from(">II", raw)
        if cookie & ~0xF0 != _COMPRESSION_COOKIE or length != len(raw) - 8:
            raise ValueError("not a compressed HdrHistogram")
        payload = zlib.decompress(raw[8:])
        cookie, varint_len, offset, digits, lowest, highest = struct.unpack_from(">IIIIqq", payload)
    except (binascii.Error, struct.error, zlib.error) as e:
        raise ValueError(f"not a compressed HdrHistogram: {e}") from e
    if cookie & ~0xF0 != _ENCODING_COOKIE or len(payload) < _PAYLOAD_HEADER + varint_len:
        raise ValueError("not an HdrHistogram payload")
    if (offset, digits, lowest, highest) != (0, DIGITS, LOWEST_US, HIGHEST_US):
        return _decode_slowly(encoded)  # another layout: hdrh re-records it into ours
    layout = _layout()
    scratch = layout.scratch
    try:
        top = int(decode(payload, _PAYLOAD_HEADER, scratch.ctypes.data, layout.size, 8)["max_nonzero_index"])
    except Exception as e:  # the C codec's errors
        scratch[:] = 0
        raise ValueError(f"not an HdrHistogram payload: {e}") from e
    if top < 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    index = np.flatnonzero(scratch[:top + 1])
    count = scratch[index]
    scratch[:top + 1] = 0
    # compact: an hour of windows stays in memory for the report (indices < 2**16 in this layout)
    return index.astype(np.uint16), count.astype(np.int32) if len(count) and count.max() < 2**31 else count


def _decode_slowly(encoded: str | bytes) -> tuple[Any, Any]:
    try:
        h = HdrHistogram.decode(encoded.encode() if isinstance(encoded, str) else encoded, b64_wrap=True)
    except Exception as e:  # hdrh raises its own exception types for malformed input
        raise ValueError(f"not an HdrHistogram: {e}") from e
    ours = new_histogram()
    ours.add(h)
    counts = np.array([ours.get_count_at_index(i) for i in range(ours.counts_len)], dtype=np.int64)
    index = np.flatnonzero(counts)
    return index, counts[index]
