"""Every op's latency, handed over in bulk by the history writer.

The load loop reads the clock once before an op is sent and once after its reply; the history
writer stamps the op's invoke and completion records with those readings and, as it hands each
block to the OS, passes the ops' latencies (completion t minus invoke t) here as numpy arrays.
So recording latency costs nothing per op, and the histograms and the history come from the
same clock readings (the history keeps whole microseconds since its anchor, so an op's latency
read back from it may be 1 us longer).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.history.format import KINDS, OUTCOMES
from harness.metrics.recorder import LatencyRecorder
from harness.metrics.tags import op_tag


class HistoryLatencies:
    """``HistoryWriter(on_latencies=...)``: files each op's latency under its ``<op>.<outcome>`` tag."""

    def __init__(self, recorder: LatencyRecorder) -> None:
        self._recorder = recorder
        self._tags = {k * len(OUTCOMES) + o: op_tag(kind, outcome.value)
                      for k, kind in enumerate(KINDS) for o, outcome in enumerate(OUTCOMES)}

    def __call__(self, codes: Any, completed_ns: Any, latency_ns: Any) -> None:
        if not len(codes):
            return
        latency_us = latency_ns // 1000
        first = int(codes[0])
        if (codes == first).all():  # the usual case: one kind, all ok
            self._recorder.add(self._tags[first], completed_ns, latency_us)
            return
        for code in np.flatnonzero(np.bincount(codes, minlength=len(self._tags))).tolist():
            mask = codes == code
            self._recorder.add(self._tags[code], completed_ns[mask], latency_us[mask])
