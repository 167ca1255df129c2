"""HdrHistogram arithmetic: the one layout (microseconds, 3 significant digits), windows counted with
numpy, merged histograms as dense counts, and the fast decoder of a log's compressed histograms."""

from __future__ import annotations

import binascii
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram
from pyhdrh import decode  # the hdrhistogram package's C codec

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: nothing a counter op may take is longer
DIGITS = 3
WINDOW_S = 1.0
WINDOW_NS = int(WINDOW_S * 1e9)


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


@dataclass(frozen=True)
class _Layout:
    size: int
    lowest: Any  # numpy int64: lowest value of each bucket
    highest: Any  # numpy int64: highest value of each bucket
    scratch: Any  # numpy int64, all zeros between uses: decode_counts decodes into it
    scratch_at: int  # its address, for the C decoder (numpy's .ctypes costs ~10 us a call)


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
        scratch = np.zeros(h.counts_len, dtype=np.int64)
        _LAYOUT.append(_Layout(size=h.counts_len, lowest=lowest, highest=highest, scratch=scratch,
                               scratch_at=scratch.ctypes.data))
    return _LAYOUT[0]


_COMPRESSION_COOKIE, _ENCODING_COOKIE = 0x1C849304, 0x1C849303
_PAYLOAD_HEADER = 40  # bytes before the counts in a decompressed payload


def _payload(encoded: str | bytes) -> bytes | None:
    """The decompressed payload of a base64 compressed HdrHistogram (V2: base64 of a header and a zlib
    payload); None when its layout is not new_histogram()'s. ValueError for anything that is not such a
    histogram."""
    try:
        raw = binascii.a2b_base64(encoded)  # as base64.b64decode, without its wrapper
        cookie, length = struct.unpack_from(">II", raw)
        if cookie & ~0xF0 != _COMPRESSION_COOKIE or length != len(raw) - 8:
            raise ValueError("not a compressed HdrHistogram")
        payload = zlib.decompress(raw[8:])
        cookie, varint_len, offset, digits, lowest, highest = struct.unpack_from(">IIIIqq", payload)
    except (binascii.Error, struct.error, zlib.error) as e:
        raise ValueError(f"not a compressed HdrHistogram: {e}") from e
    if cookie & ~0xF0 != _ENCODING_COOKIE or len(payload) < _PAYLOAD_HEADER + varint_len:
        raise ValueError("not an HdrHistogram payload")
    return payload if (offset, digits, lowest, highest) == (0, DIGITS, LOWEST_US, HIGHEST_US) else None


def decode_counts(encoded: str | bytes) -> tuple[Any, Any]:
    """(indices, counts) of a base64 compressed HdrHistogram, in new_histogram()'s layout.

    Unwraps the V2 format (base64 of a header and a zlib payload) and decodes its counts with
    the C decoder hdrh itself uses, into one reused array; a histogram of another layout is
    re-recorded into ours through hdrh. Raises ValueError for anything that is not such a histogram.
    """
    payload = _payload(encoded)
    if payload is None:
        return _decode_slowly(encoded)  # another layout: hdrh re-records it into ours
    layout = _layout()
    scratch = layout.scratch
    try:
        top = int(decode(payload, _PAYLOAD_HEADER, layout.scratch_at, layout.size, 8)["max_nonzero_index"])
    except Exception as e:  # the C codec's errors
        scratch[:] = 0
        raise ValueError(f"not an HdrHistogram payload: {e}") from e
    if top < 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    index = np.flatnonzero(scratch[:top + 1])
    count = scratch[index]
    scratch[:top + 1] = 0
    # compact: callers that hold every window (export, check) keep them small (indices < 2**16 in this layout)
    return index.astype(np.uint16), count.astype(np.int32) if len(count) and count.max() < 2**31 else count


class PackedCounts:
    """Many windows' counts decoded side by side into one int64 array, then read back at once.

    Each window takes the slots up to its highest nonzero bucket (about a fifth of the layout for a
    window of 1 ms ops), so a batch of windows costs one ``flatnonzero`` rather than several numpy calls
    per window -- which cost three times the decoding itself.
    """

    def __init__(self, capacity: int = 1 << 21) -> None:
        self._layout = _layout()
        self._buf = np.zeros(max(capacity, 2 * self._layout.size), dtype=np.int64)
        self._at = self._buf.ctypes.data
        self._ends: list[int] = []  # each window's end slot
        self._used = 0

    def __len__(self) -> int:
        return len(self._ends)

    def full(self) -> bool:
        """Whether the next window might not fit (a window may take the whole layout)."""
        return self._used + self._layout.size > len(self._buf)

    def add(self, encoded: str | bytes) -> None:
        """Decode one window behind the others; ValueError (and nothing added) as ``decode_counts``."""
        if self.full():
            raise ValueError("PackedCounts is full: take() first")
        payload = _payload(encoded)
        at, size = self._used, self._layout.size
        if payload is None:  # another layout: re-recorded into ours
            index, count = _decode_slowly(encoded)
            self._buf[at + index] = count
            top = int(index[-1]) if len(index) else -1
        else:
            try:
                top = int(decode(payload, _PAYLOAD_HEADER, self._at + 8 * at, size, 8)["max_nonzero_index"])
            except Exception as e:  # the C codec's errors
                self._buf[at:at + size] = 0
                raise ValueError(f"not an HdrHistogram payload: {e}") from e
        self._used = at + top + 1
        self._ends.append(self._used)

    def take(self) -> tuple[Any, Any, Any, Any]:
        """(first, slot, base, count) of the windows added since the last take, and empty again: window
        ``w``'s nonzero buckets are ``slot[first[w]:first[w + 1]] - base[w]`` (ascending), with their ``count``."""
        used = self._used
        slot = np.flatnonzero(self._buf[:used] != 0)  # numpy's nonzero of a bool array is ~3x faster
        count = self._buf[slot]
        self._buf[slot] = 0
        base = np.concatenate(([0], self._ends))[:-1].astype(np.int64)
        first = np.searchsorted(slot, np.concatenate((base, [used])))
        self._ends, self._used = [], 0
        return first, slot, base, count


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
