"""The load generator's own CPU per window: a saturated generator's latencies include its queueing."""

from __future__ import annotations

from pathlib import Path

from harness.metrics.hdr import WINDOW_S

SATURATED = 0.9  # of one core: a gevent process cannot use more


def load_generator_cpu(logs: list[Path]) -> dict[str, object]:
    """Per load process (its ``<worker>.cpu.csv``): mean and peak CPU share of one core per window, and
    whether it was saturated (at or above 90% in at least half of its windows)."""
    workers = []
    for path in logs:
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
