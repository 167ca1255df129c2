"""Open data: a run folder's history and latency windows as two plain tables (CSV or Parquet).

    history_frame(run_dir) -> DataFrame   every op of every load process, one row per op
    windows_frame(run_dir) -> DataFrame   the latency windows, one row per (second, tag), merged
    export(run_dir, fmt="csv", out=None)  writes history.<fmt>, windows.<fmt> and export.json into
                                          ``out`` (default ``<run_dir>/export/``); returns their paths

History columns, in order: ``process`` (the load process), ``op_id`` (int, per process, in invoke
order), ``key`` (str), ``op`` (``incr``, ``decr_if_positive``, ``read``: the history's kinds),
``amount`` (int; -1 for decr_if_positive, 0 for a read), ``invoke_s`` and ``complete_s`` (float
seconds, see below; ``complete_s`` is NaN for an op never completed), ``outcome`` (``ok``,
``fail``, ``indeterminate``: as recorded -- an op never completed is indeterminate; resolutions.json
is not applied), ``value`` (nullable Int64: what the target returned, else <NA>), ``attempts``
(int), ``error`` (str, "" for none; "never completed" for an op never completed; credentials
scrubbed). Rows are sorted by process, then op id. ``process``, ``key``, ``op``, ``outcome`` and
``error`` are pandas categoricals (a byte or four per row rather than a pointer; plain strings in CSV).
An int beyond 64 bits (only version-1 histories can hold one) makes its column decimal text.

The clock of ``invoke_s`` / ``complete_s``, also stated in ``df.attrs["clock"]`` and export.json:

- every process is placed on one timeline the way the checks place it (``harness.checks.timed``):
  processes of one host on its shared monotonic clock, exactly; processes of several hosts on the
  master's clock by the samples in clocks.json (within their stated uncertainty); several hosts
  without samples: by each process's wall-clock anchor (order across hosts only as good as their
  clock sync); a process without a wall anchor alone: its own clock, seconds since it opened its
  history (not comparable across processes);
- zero is the load's start as the latency logs have it (the earliest window: the windows table's
  zero and the report's), reached through the processes' wall anchors; without latency logs or wall
  anchors, the earliest invoke in the history.

Windows columns: ``t_s`` (int, the second the window began, same zero; windows hold ops by when they
*completed*), ``op`` (history kind names), ``outcome``, ``measure`` (``service``; open model also
``intended`` and ``late``), ``count``, ``p50_ms``, ``p90_ms``, ``p99_ms``, ``p999_ms``, ``max_ms``
(float ms, NaN when empty). Windows are the report's exact merge across processes
(``harness.report.data.RunData.windows``), not one row per process: percentiles do not add up, so
only the merge gives a run's p99; per-process latency is ``complete_s - invoke_s`` in the history.

A damaged or incomplete history is exported as far as it reads (the reader keeps what came before
damage); export.json then says ``"incomplete": true`` and lists ``problems``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from harness.checks.timed import DRIFT_PER, clocks, host_of
from harness.core.errors import ConfigError, HistoryError, RunFolderError
from harness.core.runfolder import RunFolder
from harness.core.secrets import clean, redact_url, scrub
from harness.history import KINDS, OUTCOMES, OpColumns, StringLookup, read_history
from harness.metrics.logs import LogInterval, read_log
from harness.metrics.tags import op_label
from harness.report.data import RunData

SCHEMA_VERSION = 1  # of export.json and the tables' columns
FORMATS = ("csv", "parquet")
HISTORY_COLUMNS = ["process", "op_id", "key", "op", "amount", "invoke_s", "complete_s", "outcome", "value",
                   "attempts", "error"]
WINDOWS_COLUMNS = ["t_s", "op", "outcome", "measure", "count", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"]
_PERCENTILES = {"t": "t_s", "p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "p99.9": "p999_ms", "max": "max_ms"}
_KIND_OF_LABEL = {op_label(k): k for k in KINDS}  # the latency tags name ops as the report does
_URL_IN_TEXT = re.compile(r"[a-z][a-z0-9+.\-]*://[^\s'\"<>]+", re.IGNORECASE)


def history_frame(run_dir: Path) -> pd.DataFrame:
    """Every op of the run, one row each (columns and clock: see the module)."""
    folder, run = _open(run_dir)
    intervals, _ = _intervals(folder)
    return _history(folder, run, _start(intervals))


def windows_frame(run_dir: Path) -> pd.DataFrame:
    """The latency windows merged across processes, one row per (second, tag) (see the module)."""
    folder, _ = _open(run_dir)
    intervals, problems = _intervals(folder)
    return _windows(folder, intervals, problems)


def export(run_dir: Path, *, fmt: str = "csv", out: Path | None = None) -> list[Path]:
    """Write history.<fmt>, windows.<fmt> and export.json into ``out``; returns the three paths."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}")
    folder, run = _open(run_dir)  # before anything is written: not a run folder -> RunFolderError
    intervals, log_problems = _intervals(folder)
    history = _history(folder, run, _start(intervals))
    windows = _windows(folder, intervals, log_problems)
    out = folder.path / "export" if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    written = []
    for name, frame in (("history", history), ("windows", windows)):
        path = out / f"{name}.{fmt}"
        _write(frame, path, fmt)
        written.append(path)
        files[name] = {"file": path.name, "rows": len(frame), "columns": list(frame.columns)}
    problems = [*history.attrs["problems"], *windows.attrs["problems"]]
    scenario = run.get("scenario")
    doc = {"schema_version": SCHEMA_VERSION, "run_id": run.get("run_id"),
           "scenario": scenario.get("name") if isinstance(scenario, dict) else None, "format": fmt,
           "files": files, "clock": history.attrs["clock"], "clock_zero_unix_s": history.attrs["clock_zero_unix_s"],
           "incomplete": bool(problems), "problems": problems}
    meta = out / "export.json"
    _replace(meta, lambda tmp: tmp.write_text(json.dumps(clean(doc), indent=2) + "\n", encoding="utf-8"))
    return [*written, meta]


# --- reading ---------------------------------------------------------------------------------------

def _open(run_dir: Path) -> tuple[RunFolder, dict[str, Any]]:
    """The folder and its run.json: a folder without one raises RunFolderError, as every stage does."""
    folder = RunFolder(Path(run_dir))
    return folder, folder.read(folder.run_json)


def _intervals(folder: RunFolder) -> tuple[list[LogInterval], list[str]]:
    """Every readable latency window: a damaged log (a process killed mid-line) keeps what came before."""
    out: list[LogInterval] = []
    problems = []
    for path in folder.latency_logs():
        try:
            out.extend(read_log(path))
        except HistoryError as e:
            problems.append(f"latency log: {e}; the windows before it were read")
    return out, problems


def _start(intervals: Sequence[LogInterval]) -> float | None:
    """The load's start as the report has it (RunData.start): the earliest latency window, wall seconds."""
    return min((i.start for i in intervals), default=None)


def _windows(folder: RunFolder, intervals: list[LogInterval], problems: list[str]) -> pd.DataFrame:
    start = _start(intervals)
    if start is None:
        frame = pd.DataFrame({c: pd.Series(dtype="float64" if c.endswith("_ms") else "int64" if c in (
            "t_s", "count") else "object") for c in WINDOWS_COLUMNS})
    else:
        # the report's own exact merge (RunData wants the scenario, which windows() does not read)
        data = RunData(folder=folder, run={}, verdict=None, scenario=folder.scenario(), start=start,
                       intervals=intervals)
        frame = data.windows().rename(columns=_PERCENTILES)
        frame["op"] = frame["op"].map(lambda label: _KIND_OF_LABEL.get(label, label))
        frame = frame.astype({"t_s": "int64", "count": "int64",
                              **{c: "float64" for c in WINDOWS_COLUMNS if c.endswith("_ms")}})
    frame.attrs["problems"] = list(problems)
    return frame[WINDOWS_COLUMNS]


class _Categories:
    """Strings of many history string tables -> one category list, by codes (``StringLookup``): nothing per op
    in Python. ``clean`` runs once per distinct string (errors are interned by the reader, so scrubbing is
    per error text, not per op)."""

    def __init__(self, *, none: str | None, clean_text: Callable[[str], str] | None = None) -> None:
        self.categories: list[str] = []
        self._codes: dict[str, int] = {}
        self._clean = clean_text
        # what string id 0 means ("" for errors; keys never use it)
        self.codes = StringLookup(self._code, none=-1 if none is None else self._code(none, clean=False),
                                  dtype=np.int32)

    def _code(self, text: str, *, clean: bool = True) -> int:
        if clean and self._clean is not None:
            text = self._clean(text)
        c = self._codes.get(text)
        if c is None:
            c = self._codes[text] = len(self.categories)
            self.categories.append(text)
        return c


def _clean_error(text: str) -> str:
    """An error text as it may leave counterbench: registered secrets scrubbed, and any URL in it
    stripped of user, password and query values (the run's secrets are not registered in a later
    process, but a URL's structure still shows where its credentials are)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), scrub(text))


class _Gather:
    """Each batch of ops the reader hands over, kept as numpy columns per process until placed in time."""

    def __init__(self) -> None:
        self.keys = _Categories(none=None)
        self.errors = _Categories(none="", clean_text=_clean_error)
        self.parts: dict[str, list[tuple[Any, ...]]] = {}

    def add(self, c: OpColumns) -> None:
        if not len(c):
            return
        self.parts.setdefault(c.worker, []).append((
            c.id, self.keys.codes(c.strings, c.key), c.kind, c.amount, c.outcome, c.has_value, c.value,
            self.errors.codes(c.strings, c.error), c.attempts, c.invoked_us, c.completed_us))


def _history(folder: RunFolder, run: dict[str, Any], start_wall: float | None) -> pd.DataFrame:
    gather = _Gather()
    problems: list[str] = []
    workers = []
    try:
        workers = read_history(folder.history_dir, gather.add).workers
    except HistoryError as e:  # no history file at all: an empty table, and why
        problems.append(str(e))
    expected = int(run.get("processes") or 1)
    if len(workers) < expected:
        problems.append(f"{expected - len(workers)} of {expected} load processes wrote no history")
    problems += [f"{w.worker}: {w.problem}" for w in workers if not w.complete]
    base, to_wall, placed = _placement(folder, {w.worker: w.header for w in workers if w.header}, problems)

    names = sorted(gather.parts)
    columns = [_joined(gather.parts[w]) for w in names]
    sizes = [len(c[0]) for c in columns]
    ids, key, kind, amount, outcome, has_value, value, error, attempts, invoked, completed = (
        np.concatenate([c[i] for c in columns]) if columns else np.zeros(0, dtype=np.int64) for i in range(11))
    # on the common timeline (integer microseconds: exact), then seconds since zero
    shift = np.repeat(np.array([base.get(w, 0) for w in names], dtype=np.int64), sizes)
    invoked = invoked.astype(np.int64) + shift
    done = completed >= 0
    completed = completed.astype(np.int64) + shift
    if placed is None:  # each process on its own clock: seconds since its own anchor
        zero, clock = 0, "seconds since the process opened its history, on that process's own monotonic clock " \
                         "(not comparable across processes: no common clock could be found)"
    elif start_wall is not None and to_wall is not None:
        zero = round(start_wall * 1e6) - to_wall
        clock = f"seconds since the load started (the earliest latency window, zero of windows t_s), {placed}"
    else:
        zero = int(invoked.min()) if len(invoked) else 0
        clock = f"seconds since the earliest invoke in the history, {placed}"
    frame = pd.DataFrame({
        "process": pd.Categorical.from_codes(np.repeat(np.arange(len(names), dtype=np.int32), sizes),
                                             categories=names),
        "op_id": ids.astype(np.int64),
        "key": pd.Categorical.from_codes(key.astype(np.int32), categories=gather.keys.categories),
        "op": pd.Categorical.from_codes(kind.astype(np.int32), categories=list(KINDS)),
        "amount": _ints(amount, None),
        "invoke_s": (invoked - zero) / 1e6,
        "complete_s": np.where(done, (completed - zero) / 1e6, np.nan),
        "outcome": pd.Categorical.from_codes(outcome.astype(np.int32), categories=[str(o) for o in OUTCOMES]),
        "value": _ints(value, ~has_value.astype(bool)),
        "attempts": attempts.astype(np.int64),
        "error": pd.Categorical.from_codes(error.astype(np.int32), categories=gather.errors.categories),
    }, columns=HISTORY_COLUMNS)
    frame.attrs.update(clock=clock, problems=problems,
                       clock_zero_unix_s=None if placed is None or to_wall is None else (zero + to_wall) / 1e6)
    return frame


def _joined(parts: list[tuple[Any, ...]]) -> list[npt.NDArray[Any]]:
    """One process's batches as whole columns, in op id order (the reader hands them in completion order)."""
    cols = [np.concatenate([p[i] for p in parts]) if len(parts) > 1 else parts[0][i] for i in range(11)]
    order = np.argsort(cols[0], kind="stable")
    return [c[order] for c in cols]


def _placement(folder: RunFolder, headers: dict[str, dict[str, Any]], problems: list[str]
               ) -> tuple[dict[str, int], int | None, str | None]:
    """Each process's shift onto one timeline (µs), what turns that timeline into wall-clock µs (None: nothing
    does), and how the processes were placed (None: they could not be, each keeps its own clock)."""
    try:
        sampled = folder.clocks()
    except RunFolderError as e:
        problems.append(f"clocks.json: {e}")
        sampled = None
    placed = clocks(headers, sampled)
    walled = [w for w in sorted(headers) if "anchor_wall_ns" in headers[w]]
    if placed is not None and set(placed) >= set(headers):
        if len({host_of(h) for h in headers.values()}) <= 1:
            text = "every process on its host's shared monotonic clock (exact)"
        else:
            unc = max((c.uncertainty_ns for c in placed.values()), default=0) // 1000
            text = (f"every process on the master's clock, placed by the samples of clocks.json (within ±{unc} µs "
                    f"while they were taken, and {1e6 / DRIFT_PER:.0f} µs more per second from the nearest one)")
        base = {w: c.base_us for w, c in placed.items()}
        # the timeline reaches the wall clock through one process's anchor pair (any: they agree to ~1 ms)
        to_wall = int(headers[walled[0]]["anchor_wall_ns"]) // 1000 - base[walled[0]] if walled else None
        return base, to_wall, text
    if headers and len(walled) == len(headers):
        return ({w: int(h["anchor_wall_ns"]) // 1000 for w, h in headers.items()}, 0,
                "each process placed by its own wall-clock anchor (the hosts' clocks were not sampled: order across "
                "hosts is only as good as their clock sync)")
    return {}, None, None


def _ints(values: npt.NDArray[Any], missing: npt.NDArray[np.bool_] | None) -> Any:
    """An int64 column (nullable where ``missing``); ints beyond 64 bits (version 1 only) as decimal text."""
    if values.dtype == object:
        try:
            values = values.astype(np.int64)
        except OverflowError:
            gone = np.zeros(len(values), dtype=bool) if missing is None else missing
            return pd.array([None if m else str(v) for v, m in zip(values.tolist(), gone.tolist(), strict=True)],
                            dtype=object)
    values = values.astype(np.int64, copy=False)
    if missing is None:
        return values
    return pd.arrays.IntegerArray(values, np.asarray(missing, dtype=bool))


# --- writing ---------------------------------------------------------------------------------------

def _replace(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file: a reader (or a crash) never sees half a table."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """CSV and Parquet through pyarrow (pandas' own to_csv formats floats ten times slower: 25 s for 2M ops)."""
    if fmt == "csv":
        table = pa.Table.from_pandas(frame, preserve_index=False)
        _replace(path, lambda tmp: pa_csv.write_csv(table, tmp))
    else:
        _replace(path, lambda tmp: frame.to_parquet(tmp, engine="pyarrow", index=False))
