"""Pure plotting functions: ``plot_x(data, ax) -> None``; callers own figures and files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

PERCENTILES = ("p50", "p90", "p99", "p99.9", "max")
OUTCOME_COLORS = {"ok": "#2a9d8f", "fail": "#e9c46a", "indeterminate": "#e76f51"}


def new_figure(width: float = 9, height: float = 4.2) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=(width, height), dpi=110, layout="constrained")
    return fig, ax


def shade(ax: Axes, windows: Sequence[tuple[float, float, str]]) -> None:
    """Shade (start, end, label) spans, e.g. fault windows or load steps."""
    for i, (a, b, label) in enumerate(windows):
        fault = not label.startswith("step")
        color = "#d62828" if fault else "#888888"
        ax.axvspan(a, b, color=color, alpha=0.15 if fault or i % 2 == 0 else 0.05, lw=0)
        ax.text((a + b) / 2, 0.98, label, transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=7,
                color="#555555")


def plot_percentiles_over_time(frame: pd.DataFrame, ax: Axes, *, title: str, measure: str = "service") -> None:
    """Latency percentiles of acknowledged ops per 1 s window."""
    rows = frame[(frame["outcome"] == "ok") & (frame["measure"] == measure)]
    if rows.empty:
        ax.text(0.5, 0.5, "no acknowledged ops", ha="center", transform=ax.transAxes)
    span = range(int(frame["t"].min()), int(frame["t"].max()) + 1) if not frame.empty else range(0)
    for op, group in rows.groupby("op"):
        # a second with no acknowledged op is a gap in the line, not a straight line across it
        group = group.set_index("t").reindex(span).reset_index()
        for p in PERCENTILES:
            style = "--" if p == "max" else "-"
            label = p if rows["op"].nunique() == 1 else f"{op} {p}"
            ax.plot(group["t"] + 0.5, group[p], style, lw=1.2, label=label)  # mid-window
    # ops that were not acknowledged (timeouts during a stall, errors) are drawn too: a stall shows
    bad = frame[frame["outcome"].isin(["fail", "indeterminate"]) & (frame["measure"] == measure)]
    if not bad.empty:
        worst = bad.groupby("t")["max"].max()
        ax.plot(worst.index + 0.5, worst.values, "x", color="#d62828", label="max, not acknowledged")
    ax.set_yscale("log")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    if not rows.empty or not bad.empty:
        ax.legend(fontsize=8, ncols=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)


def _percentile_axis(ax: Axes) -> None:
    ticks = [50, 90, 99, 99.9, 99.99, 99.999]
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([1 / (1 - p / 100) for p in ticks]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{100 * (1 - 1 / x):g}%"))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.set_xlabel("percentile")


def plot_percentile_distribution(series: dict[str, Sequence[tuple[float, float]]], ax: Axes, *, title: str) -> None:
    """HdrHistogram-style: latency by percentile, the x axis spread as 1/(1-p)."""
    for label, points in series.items():
        if points:
            ax.plot([1 / (1 - p / 100) for p, _ in points], [v for _, v in points], lw=1.4, label=label)
    _percentile_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    if any(series.values()):
        ax.legend(fontsize=8, loc="upper left")


def plot_throughput(frame: pd.DataFrame, ax: Axes, *, title: str) -> None:
    """Ops completed per second, stacked by outcome."""
    rows = frame[frame["measure"] == "service"]
    table = rows.pivot_table(index="t", columns="outcome", values="count", aggfunc="sum", fill_value=0)
    if not table.empty:  # every second from the first to the last: a second without ops shows as zero
        table = table.reindex(range(int(table.index.min()), int(table.index.max()) + 1), fill_value=0)
    edges = [*table.index, table.index[-1] + 1] if not table.empty else []
    bottom = None
    for outcome, color in OUTCOME_COLORS.items():
        if outcome in table:
            # one filled step outline per outcome (as 1 s bars, stacked): an hour is 3,600 seconds
            top = table[outcome] if bottom is None else bottom + table[outcome]
            filled_stairs(ax, top.to_numpy(), edges, baseline=0 if bottom is None else bottom.to_numpy(), color=color,
                          label=outcome)
            bottom = top
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("ops per second")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.25)
    if not table.empty:
        ax.legend(fontsize=8, loc="upper right")


def filled_stairs(ax: Axes, values: Any, edges: Sequence[float], *, baseline: Any, **kwargs: Any) -> None:
    """``ax.stairs(values, edges, baseline=baseline, fill=True, **kwargs)``, drawn the same, without its cost.

    Adding a patch walks its outline segment by segment, each as a Bezier curve, to find the data limits:
    18 s for a day of 1 s steps. A step outline's limits are those of its vertices -- on each axis the least,
    the greatest and the least positive value -- so the patch is added with three steps spanning the same box,
    then given its data.
    """
    values = np.asarray(values)
    base = np.asarray(baseline)
    ys = np.concatenate((values.ravel(), base.ravel()))
    xs = np.asarray(edges)
    if len(values) < 4 or not len(ys):
        ax.stairs(values, edges, baseline=baseline, fill=True, **kwargs)
        return

    def box(v: Any) -> list[Any]:
        positive = v[v > 0]
        return [v.min(), v.max(), positive.min() if len(positive) else v.min()]

    ymin, ymax, ypos = box(ys)
    xmin, xmax, xpos = box(xs)
    # the first edge and the baseline's least value stay what they are: stairs pins the bottom to them
    patch = ax.stairs(np.array([ymin, ymax, ypos], dtype=ys.dtype), np.array([xs[0], xpos, xmax, xmin]),
                      baseline=base.min(), fill=True, **kwargs)
    patch.set_data(values, edges, baseline)


def plot_throughput_lines(series: dict[str, pd.DataFrame], ax: Axes, *, title: str) -> None:
    """Acknowledged ops per second of several runs, overlaid."""
    for label, frame in series.items():
        ok = frame[(frame["outcome"] == "ok") & (frame["measure"] == "service")].groupby("t")["count"].sum()
        ax.plot(ok.index, ok.values, lw=1.3, label=label)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("acknowledged ops per second")
    ax.set_title(title)
    ax.grid(True, alpha=0.25)
    if series:
        ax.legend(fontsize=8)


def plot_latency_vs_throughput(steps: Sequence[dict[str, Any]], ax: Axes, *, title: str,
                               slo_p99: float | None = None) -> None:
    """Capacity: p50 and p99 against achieved throughput, one point per load step."""
    xs = [s["ok_per_s"] for s in steps]
    for key, marker in (("p50", "o"), ("p99", "s")):
        ax.plot(xs, [s[key] for s in steps], marker=marker, lw=1.2, label=key)
    for s in steps:
        if s["p99"] is not None:
            ax.annotate(f"step {s['step']}", (s["ok_per_s"], s["p99"]), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
    if slo_p99 is not None:
        ax.axhline(slo_p99, color="#e76f51", ls=":", lw=1.2, label=f"SLO p99 {slo_p99:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("acknowledged ops per second")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8)


def plot_lost_increments(lost: Any, ax: Axes, *, title: str) -> None:
    """Each acknowledged increment's value against when it was acknowledged: the lost ones in red, the
    final value as a line (``harness.report.lost.LostIncrements``; the kept ones sampled)."""
    ax.plot(lost.kept_t, lost.kept_value, ".", ms=2, color="#2a9d8f", label="acknowledged, kept")
    ax.plot(lost.lost_t, lost.lost_value, ".", ms=3, color="#d62828", label="acknowledged, lost")
    ax.axhline(lost.final, color="#555555", ls=":", lw=1.2, label=f"final value {lost.final:,}")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("value acknowledged")
    ax.set_title(title)
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")


def plot_witness(ops: Sequence[dict[str, Any]], ax: Axes, *, title: str) -> None:
    """A violation's witness on a timeline: each op a bar from its invoke to its completion (an op that
    never completed runs to the right edge), labelled with its value; the last op highlighted."""
    ends = [o["completed_s"] for o in ops if o.get("completed_s") is not None]
    right = max([*ends, *(o["invoked_s"] for o in ops)])
    span = max(right - min(o["invoked_s"] for o in ops), 1e-6)
    for i, o in enumerate(ops):
        end = o["completed_s"] if o.get("completed_s") is not None else right + span * 0.3
        color = "#d62828" if i == len(ops) - 1 else "#457b9d"
        ax.barh(i, end - o["invoked_s"], left=o["invoked_s"], height=0.5, color=color, alpha=0.85)
        label = f"op {o['op']} ({o['process']}): {o['kind']}" + ("" if o.get("value") is None else f" → {o['value']}")
        ax.text(o["invoked_s"], i + 0.32, label, fontsize=8, va="bottom")
    ax.set_yticks([])
    ax.set_ylim(-0.6, len(ops) - 0.1)
    ax.set_xlabel("time since start (s)")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.25)


def save(fig: Figure, path: Any) -> None:
    fig.savefig(path)
    plt.close(fig)
