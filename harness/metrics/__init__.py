"""Exact latency: HdrHistograms per 1 s window and per tag, in the HdrHistogram interval-log format.

    hdr.py        the histogram layout, windows counted with numpy, merged counts, the fast decoder
    tags.py       what a histogram's tag means (the one definition)
    recorder.py   LatencyRecorder: the live windows of one load process
    latencies.py  HistoryLatencies: the history writer's hand-overs, into the recorder
    logs.py       reading logs back: intervals, exact merges, percentiles; logs merged in time order, in batches
    cpu.py        the load generator's own CPU per window

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
from harness.metrics.cpu import SATURATED, load_generator_cpu
from harness.metrics.hdr import (
    DIGITS,
    HIGHEST_US,
    LOWEST_US,
    WINDOW_NS,
    WINDOW_S,
    MergedHistogram,
    decode_counts,
    new_histogram,
    window_histogram,
)
from harness.metrics.logs import (
    LogInterval,
    merge,
    percentile_distribution,
    percentiles,
    read_log,
    read_logs,
    window_percentiles,
)
from harness.metrics.recorder import LatencyRecorder
from harness.metrics.tags import Tag, op_label, op_tag

__all__ = ["DIGITS", "HIGHEST_US", "LOWEST_US", "SATURATED", "WINDOW_NS", "WINDOW_S", "LatencyRecorder",
           "LogInterval", "MergedHistogram", "Tag", "decode_counts", "load_generator_cpu", "merge",
           "new_histogram", "op_label", "op_tag", "percentile_distribution", "percentiles", "read_log",
           "read_logs", "window_histogram", "window_percentiles"]
