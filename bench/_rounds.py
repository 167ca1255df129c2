"""What every bench shares: interleaved rounds, figures as median (min to max), the machine they ran on.

    .venv/bin/python bench/_rounds.py        # prints the machine line alone (what `make bench` starts with)

A bench measures each thing it compares once per round, in turn, and does ``--rounds`` rounds
(default 3); odd rounds take the things in reverse order (A B, B A, A B, ...), so a drift of the
machine over the run (a neighbour's load, the CPU's clock, a warming cache) hits all alike. A
figure is the median of its rounds with their range: the range says how far one run on this
machine can be trusted, which a single run cannot.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
DASH = "\u2013"  # en dash between min and max: a minus sign may start either


def spread(values: Iterable[float], fmt: str = ".1f", unit: str = "") -> str:
    """``median (min<en dash>max)`` of ``values``, each formatted with ``fmt`` (``%`` formats are percentages).

    One value is printed alone: it has no range."""
    vals = [float(v) for v in values]
    if not vals:
        return "-"

    def f(v: float) -> str:
        return f"{v:{fmt}}{unit}"

    med = statistics.median(vals)
    if len(vals) == 1:
        return f(med)
    lo, hi = f(min(vals)), f(max(vals))
    dash = f" {DASH} " if hi.startswith("-") else DASH  # -3.1% - -0.2%, not -3.1%--0.2%
    return f"{f(med)} ({lo}{dash}{hi})"


def ratios(num: list[float], den: list[float]) -> list[float]:
    """Round by round ``num / den`` (the two measured in the same round)."""
    return [n / d for n, d in zip(num, den, strict=True) if d]


def interleave(rounds: int, things: dict[str, Callable[[int], T]], *, start: int = 0,
               into: dict[str, list[T]] | None = None) -> dict[str, list[T]]:
    """Runs every thing once per round (``things[name](round)``), ``rounds`` rounds numbered from ``start``;
    odd rounds in reverse order. Returns (or extends ``into``) each thing's results, one per round."""
    got: dict[str, list[T]] = into if into is not None else {}
    for name in things:
        got.setdefault(name, [])
    names = list(things)
    for r in range(start, start + rounds):
        for name in names if r % 2 == 0 else reversed(names):
            got[name].append(things[name](r))
    return got


def how(rounds: int) -> str:
    """What a bench's figures are, for its heading."""
    return f"median (min{DASH}max) of {rounds} interleaved round{'s' if rounds != 1 else ''}"


def machine() -> str:
    """One line: CPU model, cores (all, and usable by this process), memory, kernel, Python, date, load."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    mem = "memory unknown"
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
        mem = f"{kib / 2**20:.1f} GiB memory"
    except (OSError, StopIteration, ValueError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = "/".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f"machine: {model}, {os.cpu_count()} CPUs ({usable} usable by this process), {mem}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, {now}, "
            f"load average {load} (1/5/15 min)")


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every bench has: ``--rounds`` and ``--no-machine``."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds; every figure is their median (min-max) (default 3)")
    p.add_argument("--no-machine", action="store_true",
                   help="do not print the machine line first (`make bench` prints it once)")
    return p


def parse(p: argparse.ArgumentParser) -> argparse.Namespace:
    """Parses the command line and prints the machine line unless ``--no-machine``."""
    args = p.parse_args()
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if not args.no_machine:
        print(machine(), flush=True)
    return args


if __name__ == "__main__":
    print(machine())
