"""A run's latency windows in one pass: per-second rows, and a bounded set of merged histograms.

Of every window of every load process the report needs one row per second and tag (count and
percentiles of that second's windows merged across processes), and merged histograms per tag over
the whole run and over each load step and fault window. The windows arrive in time order
(``harness.metrics.logs.merged_lines``), in batches: a second's windows are merged into its rows
once the next second has begun, and each window's counts are added to the histograms of the whole
run and of the spans it falls in -- spans known before the pass, so one pass serves them all. What
is kept is the rows (numbers) and one dense histogram per tag, and per tag and span.

Every figure is the one merging the windows themselves gives (``harness.metrics.logs.merge`` and
``window_percentiles``), bucket for bucket; a test holds them to that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from harness.metrics.hdr import MergedHistogram, _layout
from harness.metrics.logs import WindowBatch
from harness.metrics.tags import Tag

PERCENTILES = (50, 90, 99, 99.9)
COLUMNS = ["t", "op", "outcome", "measure", "count", "p50", "p90", "p99", "p99.9", "max"]
Span = tuple[float, float]  # seconds since the run's start: a window is in it when since <= its start < until


@dataclass(frozen=True, kw_only=True, eq=False)
class LatencyFigures:
    """What the report reads of a run's latency windows."""

    start: float  # wall clock the seconds count from
    end: float  # the latest window end, wall clock (-inf with no window)
    tags: list[str]  # tag of each row of the histograms
    whole: Any  # numpy int64 (tags, buckets): the whole run
    spans: dict[Span, Any]  # each span's (tags, buckets)
    rows: dict[str, Any]  # per (second, tag): t, tag (into ``tags``), count, p50 ... max (ms, NaN when empty)

    def histogram(self, keep: Callable[[Tag], bool], span: Span | None = None) -> MergedHistogram:
        """The merge of every window of the tags kept, over the run or one of its spans."""
        if span is not None and span not in self.spans:
            raise ValueError(f"span {span} was not accumulated: only the load steps' and fault windows' are")
        counts = self.whole if span is None else self.spans[span]
        picked = [i for i, tag in enumerate(self.tags) if keep(Tag.parse(tag))]
        return MergedHistogram(counts[picked].sum(axis=0) if picked else np.zeros(_layout().size, dtype=np.int64))

    def frame(self) -> pd.DataFrame:
        """One row per (second, tag), ordered by second then tag, as the report's windows.csv."""
        r = self.rows
        if not len(r["t"]):
            return pd.DataFrame([], columns=COLUMNS)
        parsed = [Tag.parse(tag) for tag in self.tags]
        tag = r["tag"].tolist()
        columns: dict[str, Any] = {"t": r["t"]}
        for n, name in enumerate(("op", "outcome", "measure")):
            text = [t[n] for t in parsed]
            columns[name] = [text[i] for i in tag]
        columns["count"] = r["count"]
        for name in COLUMNS[5:]:
            # as a frame built from rows infers it: None (not NaN) when no second had a value
            columns[name] = [None] * len(tag) if np.isnan(r[name]).all() else r[name]
        return pd.DataFrame(columns, columns=COLUMNS)


def accumulate(batches: Iterable[WindowBatch], *, start: float, spans: Sequence[Span] = ()) -> LatencyFigures:
    """Fold windows in time order (``start``: the wall clock seconds count from) into LatencyFigures."""
    fold = _Fold(start=start, spans=spans)
    for b in batches:
        fold.add(b)
    return fold.finish()


class _Windows(NamedTuple):
    """Windows in time order with their counts (``WindowBatch``'s layout), each with its second."""

    second: Any  # numpy int64, ascending
    tag: Any
    base: Any
    first: Any  # one more than the windows, from 0
    slot: Any
    count: Any

    def __len__(self) -> int:
        return len(self.second)

    def part(self, a: int, b: int) -> _Windows:
        lo, hi = int(self.first[a]), int(self.first[b])
        return _Windows(self.second[a:b], self.tag[a:b], self.base[a:b], self.first[a:b + 1] - lo,
                        self.slot[lo:hi], self.count[lo:hi])

    def then(self, more: _Windows) -> _Windows:
        """These windows, then ``more``."""
        return _Windows(*(np.concatenate(pair) for pair in zip(self[:3], more[:3], strict=True)),
                        np.concatenate((self.first, more.first[1:] + self.first[-1])),
                        *(np.concatenate(pair) for pair in zip(self[4:], more[4:], strict=True)))


class _Fold:
    """``accumulate``'s state: the rows so far, the histograms, and the second the last batch ended in."""

    def __init__(self, *, start: float, spans: Sequence[Span]) -> None:
        self.start = start
        self.size = _layout().size
        self.highest = _layout().highest
        self.tags: list[str] = []
        self.whole = np.zeros((0, self.size), dtype=np.int64)
        self.spans: dict[Span, Any] = {s: self.whole for s in dict.fromkeys(spans)}
        self.end = -math.inf
        self.rows: list[dict[str, Any]] = []
        self.held: _Windows | None = None  # the latest second's windows: the next batch may add to it

    def _grow(self, tags: list[str]) -> None:
        """Room for tags first seen in this batch (ids are the batch's, shared by the whole stream)."""
        if len(tags) == len(self.tags):
            return
        more = len(tags) - len(self.tags)
        self.tags = list(tags)

        def grown(a: Any) -> Any:
            return np.concatenate((a, np.zeros((more, self.size), dtype=np.int64)))

        self.whole = grown(self.whole)
        self.spans = {s: grown(a) for s, a in self.spans.items()}

    def add(self, b: WindowBatch) -> None:
        if not len(b):
            return
        self._grow(b.tags)
        self.end = max(self.end, float(np.max(b.start + b.length)))
        t = b.start - self.start
        # every window into the whole run's histogram of its tag, and into those of the spans it is in
        # (windows come in time order: a span's are one slice)
        key = b.slot + np.repeat(b.tag * self.size - b.base, np.diff(b.first))
        np.add.at(self.whole.reshape(-1), key, b.count)
        for (since, until), counts in self.spans.items():
            lo, hi = np.searchsorted(t, (since, until), side="left")
            if lo < hi:
                np.add.at(counts.reshape(-1), key[b.first[lo]:b.first[hi]], b.count[b.first[lo]:b.first[hi]])
        # seconds as round() makes them (half to even), as the report always did
        w = _Windows(np.rint(t).astype(np.int64), b.tag, b.base, b.first, b.slot, b.count)
        # rows of the seconds this batch ends, the held one first; the last second may go on in the next
        head = 0 if self.held is None else int(np.searchsorted(w.second, self.held.second[0], side="right"))
        if head == len(w):
            self.held = w if self.held is None else self.held.then(w)
            return
        if self.held is not None:
            self._rows(self.held.then(w.part(0, head)) if head else self.held)
        last = int(np.searchsorted(w.second, w.second[-1], side="left"))
        if last > head:
            self._rows(w.part(head, last))
        self.held = w.part(last, len(w))

    def _rows(self, w: _Windows) -> None:
        """Rows of whole seconds: each (second, tag)'s windows merged, its count and percentiles."""
        keys, group = np.unique(w.second * len(self.tags) + w.tag, return_inverse=True)
        groups = len(keys)
        row: dict[str, Any] = {"t": keys // len(self.tags), "tag": keys % len(self.tags)}
        if not len(w.slot):  # empty windows only
            self.rows.append({**row, "count": np.zeros(groups, dtype=np.int64),
                              **{n: np.full(groups, np.nan) for n in (*(f"p{p:g}" for p in PERCENTILES), "max")}})
            return
        # each group's buckets in order: a stable sort of runs already in order (each window's) is a merge
        at = w.slot + np.repeat(group * self.size - w.base, np.diff(w.first))
        order = np.argsort(at, kind="stable")
        at = at[order]
        cumulative = np.cumsum(w.count[order])
        bounds = np.searchsorted(at, np.arange(groups + 1) * self.size, side="left")
        lo, hi = bounds[:-1], bounds[1:]
        filled = hi > lo
        base = np.where(lo > 0, cumulative[np.maximum(lo - 1, 0)], 0)
        total = np.where(filled, cumulative[np.maximum(hi - 1, 0)] - base, 0)
        row["count"] = total
        offset = np.arange(groups) * self.size
        for p in PERCENTILES:
            # as HdrHistogram rounds: int(p * total / 100 + 0.5), at least 1, in the same float arithmetic
            target = np.maximum((p * total.astype(np.float64) / 100 + 0.5).astype(np.int64), 1)
            pos = np.minimum(np.searchsorted(cumulative, base + target, side="left"), len(at) - 1)
            row[f"p{p:g}"] = self._ms(at[pos] - offset, filled)
        row["max"] = self._ms(at[np.maximum(hi - 1, 0)] - offset, filled)
        self.rows.append(row)

    def _ms(self, bucket: Any, filled: Any) -> Any:
        """Each bucket's highest value in ms, as HdrHistogram's percentiles give it; NaN for an empty group."""
        return np.where(filled, self.highest[np.where(filled, bucket, 0)] / 1000, np.nan)

    def finish(self) -> LatencyFigures:
        if self.held is not None and len(self.held):
            self._rows(self.held)
        self.held = None
        names = ["t", "tag", "count", *(f"p{p:g}" for p in PERCENTILES), "max"]
        rows = {n: np.concatenate([r[n] for r in self.rows]) if self.rows else np.zeros(0) for n in names}
        if self.rows:  # by second, then by tag as text
            rank = np.argsort(np.argsort(np.array(self.tags, dtype=object)))
            order = np.lexsort((rank[rows["tag"]], rows["t"]))
            rows = {n: v[order] for n, v in rows.items()}
        return LatencyFigures(start=self.start, end=self.end, tags=self.tags, whole=self.whole, spans=self.spans,
                              rows=rows)
