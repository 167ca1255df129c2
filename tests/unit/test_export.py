"""Open data: a run folder's history and latency windows as CSV / Parquet, read back with plain pandas."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.core import secrets
from harness.core.errors import ConfigError, RunFolderError
from harness.core.ops import Completion, Outcome
from harness.core.runfolder import RunFolder
from harness.export import HISTORY_COLUMNS, WINDOWS_COLUMNS, export, history_frame, windows_frame
from harness.history import SCHEMA_VERSION, HistoryWriter, history_file, read_worker_history
from harness.judge import judge
from tests.unit.test_architecture import LOAD_ONLY, imports

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SECRET = "pw-8f3a-export-test"  # registered with the registry below
URL_PASSWORD = "hunter2-not-registered"  # only the URL's structure says it is a password


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.setattr(secrets, "_known", set())


def read_back(paths: list[Path], fmt: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    history, windows, meta = paths
    if fmt == "csv":
        # empty error cells are "" (not NaN), values nullable ints, as a reader of the CSV would ask
        read = {"keep_default_na": False, "na_values": {"complete_s": [""], "value": [""]}, "dtype": {"value": "Int64"}}
        return pd.read_csv(history, **read), pd.read_csv(windows), json.loads(meta.read_text())
    return pd.read_parquet(history), pd.read_parquet(windows), json.loads(meta.read_text())


def copy(src: Path, dest: Path) -> RunFolder:
    shutil.copytree(src, dest)
    return RunFolder(dest)


# --- the fixtures: versions 1 and 2, with a latency log --------------------------------------------

@pytest.mark.parametrize("version", ["run-v1", "run-v2"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_fixture_round_trip_matches_its_verdict(tmp_path, version, fmt):
    folder = copy(FIXTURES / version, tmp_path / "run")
    totals = judge(folder)["totals"]
    paths = export(folder.path, fmt=fmt)
    assert [p.name for p in paths] == [f"history.{fmt}", f"windows.{fmt}", "export.json"]
    assert all(p.parent == folder.path / "export" for p in paths)
    h, w, meta = read_back(paths, fmt)

    assert list(h.columns) == HISTORY_COLUMNS and list(w.columns) == WINDOWS_COLUMNS
    assert len(h) == totals["ops"] + totals["reads"] == 3  # every op invoked, once
    assert h["outcome"].astype(str).value_counts().to_dict() == {
        o: totals[o] for o in ("ok", "fail", "indeterminate")}
    assert h["op_id"].tolist() == [0, 1, 2] and set(h["key"].astype(str)) == {"cb:r:counter"}
    assert h["value"].tolist() == [1, pd.NA, pd.NA]
    assert h["error"].astype(str).tolist() == ["", "not sent: connection refused", "never completed"]
    # the header's wall anchor is the latency log's start: the ops' own microseconds, exactly
    assert h["invoke_s"].tolist() == [10e-6, 11e-6, 260e-6]
    assert h["complete_s"].iloc[:2].tolist() == [250e-6, 300e-6] and math.isnan(h["complete_s"].iloc[2])

    assert meta["schema_version"] == 1 and meta["format"] == fmt
    assert meta["run_id"] == "r" and meta["scenario"] == "redis-counter"
    assert meta["files"]["history"] == {"file": f"history.{fmt}", "rows": 3, "columns": HISTORY_COLUMNS}
    assert meta["files"]["windows"]["rows"] == len(w) == 4
    assert meta["incomplete"] is False and meta["problems"] == []
    assert "since the load started" in meta["clock"] and meta["clock_zero_unix_s"] == 1795784678.0


def test_windows_are_the_reports_merge_on_the_historys_zero():
    w = windows_frame(FIXTURES / "run-v1")
    assert w[["t_s", "op", "outcome", "measure", "count"]].values.tolist() == [
        [0, "incr", "ok", "service", 1000], [1, "incr", "fail", "service", 1],
        [1, "incr", "ok", "service", 1000], [2, "incr", "ok", "service", 1000]]
    assert w["max_ms"].tolist() == [100.031, 5.003, 200.063, 300.031]
    assert (w["p50_ms"] <= w["p99_ms"]).all() and (w["p99_ms"] <= w["max_ms"]).all()


# --- a version-3 history the project's writer wrote: reads, retries, incomplete ops ----------------

KEYS = ("cb:r:a", "cb:r:ü")


def written_run(tmp_path: Path) -> tuple[RunFolder, list[tuple], int]:
    """Two load processes: w0 closes its history, w1 is cut off (no footer). Returns the folder, each op
    as (process, op_id, key, op, amount, invoke ns, complete ns or None, outcome, value, attempts, error),
    and the earliest invoke (ns)."""
    folder = copy(FIXTURES / "run-v1", tmp_path / "run")
    shutil.rmtree(folder.history_dir)
    shutil.rmtree(folder.metrics_dir)  # no latency log: zero is the earliest invoke
    want: list[tuple] = []
    t0 = None
    for w in ("w0", "w1"):
        writer = HistoryWriter(history_file(folder.history_dir, w), worker=w, run_id="r", scenario="redis-counter")
        t = writer._anchor_ns + 1_000_000 * (w == "w1")  # w1 starts 1 ms later, on the same clock
        t0 = t if t0 is None else t0
        ops = [  # key, kind, amount, completion (None: never completed)
            (KEYS[0], "incr", 1, Completion.ok(1 if w == "w0" else 3)),
            (KEYS[1], "read", 0, Completion.ok(7)),
            (KEYS[0], "incr", 1, Completion.fail(f"AUTH failed with {SECRET} at redis://u:{URL_PASSWORD}@h:1/0")),
            (KEYS[1], "incr", 5, Completion(Outcome.INDETERMINATE, None, "timeout", 2)),
            (KEYS[0], "incr", 1, None),
            (KEYS[0], "incr", 1, Completion(Outcome.OK, 2 if w == "w0" else 4, None, 2)),
        ]
        for i, (key, kind, amount, done) in enumerate(ops):
            start, end = t + i * 1000, t + i * 1000 + 400 + i
            op = writer.invoke(key, kind, amount, start)
            if w == "w0" and i == len(ops) - 1:
                writer.flush()  # the last op's invoke in a block before its answer's
            if done is not None:
                writer.complete(op, done, end)
            want.append((w, op, key, kind, amount, start, None if done is None else end,
                         "indeterminate" if done is None else done.outcome.value,
                         None if done is None else done.value, 1 if done is None else done.attempts,
                         "never completed" if done is None else done.error or ""))
        if w == "w0":
            writer.close()
        else:
            writer.flush()  # the process died here: no footer
    (folder.path / "state.json").write_text(json.dumps({
        "schema_version": 1, "initial": dict.fromkeys(KEYS, 0), "final": {KEYS[0]: 4, KEYS[1]: 0}}))
    return folder, want, t0  # type: ignore[return-value]


def test_the_writers_history_round_trips_in_both_formats(tmp_path):
    folder, want, t0 = written_run(tmp_path)
    assert read_worker_history(history_file(folder.history_dir, "w0")).header["schema_version"] == SCHEMA_VERSION
    totals = judge(folder)["totals"]
    secrets.register(SECRET)  # after the run wrote it: the export, not the writer, must scrub it
    assert SECRET in read_worker_history(history_file(folder.history_dir, "w0")).ops[2].error  # as written
    for fmt in ("csv", "parquet"):
        h, _, meta = read_back(export(folder.path, fmt=fmt, out=tmp_path / fmt), fmt)
        assert len(h) == len(want) == 12
        got = list(zip(h["process"].astype(str), h["op_id"], h["key"].astype(str), h["op"].astype(str),
                       h["amount"], h["outcome"].astype(str), h["value"], h["attempts"], strict=True))
        assert got == [(p, i, k, op, a, oc, pd.NA if v is None else v, n)
                       for p, i, k, op, a, _, _, oc, v, n, _ in want], fmt
        # one clock for both processes (one host's monotonic clock), zero at the earliest invoke
        assert h["invoke_s"].tolist() == pytest.approx([(w[5] - t0) / 1e9 for w in want], abs=2e-6)
        assert h["complete_s"].tolist() == pytest.approx(
            [math.nan if w[6] is None else (w[6] - t0) / 1e9 for w in want], abs=2e-6, nan_ok=True)
        assert h["invoke_s"].min() == 0 and "earliest invoke" in meta["clock"]
        # counts per outcome are the verdict's; reads apart, as the verdict counts them
        writes = h[h["op"].astype(str) != "read"]
        assert writes["outcome"].astype(str).value_counts().to_dict() == {
            o: totals[o] for o in ("ok", "fail", "indeterminate")}
        assert (h["op"].astype(str) == "read").sum() == totals["reads"] == 2
        # the cut-off process: exported as far as it reads, and said so
        assert meta["incomplete"] is True and any("w1" in p and "no footer" in p for p in meta["problems"])
        assert meta["files"]["history"]["rows"] == 12 and meta["files"]["windows"]["rows"] == 0
        errors = h["error"].astype(str).tolist()
        assert errors[2] == "AUTH failed with *** at redis://h:1/0"
        assert [e for e in errors if e != errors[2]] == [w[10] for w in want if w[10] != want[2][10]]


def rewrite_header(path: Path, old: str, new: str) -> None:
    """Edit a history header in place (same length: its records stay where they are)."""
    assert len(old) == len(new)
    data = path.read_bytes()
    end = data.index(b"\n")
    assert data[:end].count(old.encode()) == 1
    path.write_bytes(data[:end].replace(old.encode(), new.encode()) + data[end:])


@pytest.mark.parametrize("wall_anchor", [True, False])
def test_processes_of_two_hosts_without_clock_samples(tmp_path, wall_anchor):
    folder, want, _ = written_run(tmp_path)
    w1 = history_file(folder.history_dir, "w1")
    boot = read_worker_history(w1).header["boot_id"]  # another boot: another host, though of the same name
    rewrite_header(w1, f'"boot_id": "{boot}"', f'"boot_id": "{"x" * len(boot)}"')
    if not wall_anchor:
        rewrite_header(w1, '"anchor_wall_ns"', '"anchor_wall_nX"')
    headers = {w: read_worker_history(history_file(folder.history_dir, w)).header for w in ("w0", "w1")}
    h = history_frame(folder.path)

    def since_anchor_us(w: tuple) -> int:
        return (w[5] - headers[w[0]]["anchor_monotonic_ns"]) // 1000

    if wall_anchor:  # each by its own wall clock: hosts' clocks may disagree, nothing says by how much
        wall = [headers[w[0]]["anchor_wall_ns"] // 1000 + since_anchor_us(w) for w in want]
        assert h["invoke_s"].tolist() == pytest.approx([(t - min(wall)) / 1e6 for t in wall], abs=1e-6)
        assert "wall-clock anchor" in h.attrs["clock"] and h.attrs["clock_zero_unix_s"] is not None
    else:  # no common clock at all: each process's own, said so
        assert h["invoke_s"].tolist() == pytest.approx([since_anchor_us(w) / 1e6 for w in want], abs=1e-6)
        assert "not comparable across processes" in h.attrs["clock"] and h.attrs["clock_zero_unix_s"] is None


def test_parquet_keeps_the_dtypes(tmp_path):
    folder, _, _ = written_run(tmp_path)
    h = pd.read_parquet(export(folder.path, fmt="parquet")[0])
    assert str(h["value"].dtype) == "Int64" and h["value"].isna().sum() == 6  # the nullable ints survive
    assert {c: str(h[c].dtype) for c in ("op_id", "amount", "attempts", "invoke_s", "complete_s")} == {
        "op_id": "int64", "amount": "int64", "attempts": "int64", "invoke_s": "float64", "complete_s": "float64"}
    assert h["complete_s"].isna().sum() == 2  # the two ops never completed
    frame = history_frame(folder.path)
    pd.testing.assert_frame_equal(h, frame, check_categorical=False)


def test_no_credential_reaches_any_exported_file(tmp_path):
    folder, _, _ = written_run(tmp_path)
    secrets.register(SECRET)
    for fmt in ("csv", "parquet"):
        paths = export(folder.path, fmt=fmt, out=tmp_path / fmt)
        h, _, _ = read_back(paths, fmt)
        text = "\n".join(h["error"].astype(str))
        assert "***" in text and SECRET not in text and URL_PASSWORD not in text
    csv_text = (tmp_path / "csv" / "history.csv").read_text(encoding="utf-8")
    assert SECRET not in csv_text and URL_PASSWORD not in csv_text


def test_a_damaged_history_exports_what_reads_and_still_matches_its_verdict(tmp_path):
    folder, _, _ = written_run(tmp_path)
    p = history_file(folder.history_dir, "w0")
    p.write_bytes(p.read_bytes()[:-40])  # the last block (the last op's answer and the footer) is torn
    totals = judge(folder)["totals"]
    h, _, meta = read_back(export(folder.path), "csv")
    assert meta["incomplete"] is True and any("torn" in problem for problem in meta["problems"])
    assert len(h) == 12  # every invoke is still there: the torn completion leaves its op never completed
    last = h[(h["process"] == "w0") & (h["op_id"] == 5)].iloc[0]
    assert last["outcome"] == "indeterminate" and math.isnan(last["complete_s"]) and last["error"] == "never completed"
    writes = h[h["op"] != "read"]
    assert writes["outcome"].value_counts().to_dict() == {o: totals[o] for o in ("ok", "fail", "indeterminate")
                                                          if totals[o]}


def test_without_any_history_the_tables_are_empty_and_the_export_says_why(tmp_path):
    folder = copy(FIXTURES / "run-v1", tmp_path / "run")
    shutil.rmtree(folder.history_dir)
    h, w, meta = read_back(export(folder.path), "csv")
    assert len(h) == 0 and list(h.columns) == HISTORY_COLUMNS and len(w) == 4
    assert meta["incomplete"] is True and any("no history" in p for p in meta["problems"])


# --- refusals ----------------------------------------------------------------------------------------

def test_an_unknown_format_is_a_config_error_and_writes_nothing(tmp_path):
    folder = copy(FIXTURES / "run-v1", tmp_path / "run")
    with pytest.raises(ConfigError, match="'xlsx' is not one of csv, parquet"):
        export(folder.path, fmt="xlsx", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_a_run_folder_is_refused(tmp_path):
    with pytest.raises(RunFolderError, match="not a finished run folder"):
        export(tmp_path, out=tmp_path / "out")
    with pytest.raises(RunFolderError, match="not a finished run folder"):
        history_frame(tmp_path)
    assert not (tmp_path / "out").exists()


def harness_module(name: str) -> Path | None:
    """The file of a ``harness...`` module (None: a name imported from a module, not a module)."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def test_the_export_reaches_no_load_stage_package_even_indirectly():
    # every harness module harness.export imports, at any depth (each package's __init__ too): the
    # architecture test reads each file's own imports; this follows them (a subprocess import takes seconds)
    seen: set[Path] = set()
    todo = [ROOT / "harness" / "export.py"]
    reached = []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for line, name in imports(path):
            reached.append((path.relative_to(ROOT), line, name))
            parts = name.split(".")
            if parts[0] == "harness":
                todo += [m for i in range(1, len(parts) + 1) if (m := harness_module(".".join(parts[:i])))]
    assert ROOT / "harness" / "report" / "data.py" in seen  # the walk does follow imports
    bad = [f"{p}:{line}: {name}" for p, line, name in reached
           if name.split(".")[0] in LOAD_ONLY or name == "harness.load" or name.startswith("harness.load.")]
    assert not bad, "\n".join(bad)
