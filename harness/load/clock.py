"""The clock samples a master keeps of each worker (``clocks.json``; read by ``harness.checks.timed``)."""

from __future__ import annotations

MAX_SAMPLES = 20_000  # kept per worker (memory); beyond it, evenly thinned

Sample = tuple[int, int, int]  # (asked, answered, the worker's reading), in ns


class ClockSamples:
    """One worker's clock samples. Sampling never stops: once ``cap`` are kept, every other one goes and
    only every second sample from then on is kept (the stride doubles), so they stay evenly spread over
    the whole run; the newest is always kept too, so the placement's bound is measured up to the run's
    end -- never frozen after the first hours."""

    def __init__(self, cap: int = MAX_SAMPLES) -> None:
        self._cap = max(2, cap)
        self._kept: list[Sample] = []
        self._stride = 1
        self._seen = 0
        self._newest: Sample | None = None

    def add(self, sample: Sample) -> None:
        if self._seen % self._stride == 0:
            if len(self._kept) >= self._cap:
                del self._kept[1::2]
                self._stride *= 2
            if self._seen % self._stride == 0:
                self._kept.append(sample)
        self._seen += 1
        self._newest = sample

    def samples(self) -> list[Sample]:
        """The kept samples in time order, the newest last."""
        if self._newest is None or (self._kept and self._kept[-1] is self._newest):
            return list(self._kept)
        return [*self._kept, self._newest]
