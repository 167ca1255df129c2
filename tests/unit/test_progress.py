"""Live progress: what the load processes report, summed and shown as one line."""

from __future__ import annotations

import json

import pytest

from harness.config import Load, Scenario, Workload
from harness.core.runfolder import RunFolder, write_json
from harness.load.progress import line, roster_changes, snapshot
from harness.targets.redis import RedisTarget


def test_snapshot_sums_workers_and_skips_half_written_files(tmp_path):
    (tmp_path / "progress").mkdir()
    for name, counts, p99 in (("h-1-1", {"increment.ok": 10, "increment.fail": 2}, {"increment.ok": 1.5}),
                              ("h-2-1", {"increment.ok": 5, "increment.indeterminate": 1,
                                         "increment.ok.intended": 99}, {"increment.ok": 3.0})):
        (tmp_path / "progress" / f"{name}.json").write_text(
            json.dumps({"schema_version": 1, "counts": counts, "last_window_p99_ms": p99}))
    (tmp_path / "progress" / "h-3-1.json").write_text('{"coun')
    assert snapshot(RunFolder(tmp_path)) == {"ok": 15, "fail": 2, "indeterminate": 1, "p99": 3.0, "roster": None}


def test_remote_workers_figures_and_the_roster_count_too(tmp_path):
    folder = RunFolder(tmp_path)
    write_json(folder.remote_progress_file("hostB-7-1"), {"counts": {"increment.ok": 40}})
    write_json(folder.progress_file("hostA-5-1"), {"counts": {"increment.ok": 2}})
    write_json(folder.roster_file, {"expected": 2, "connected": ["hostB-7-1"]})
    snap = snapshot(folder)
    assert snap["ok"] == 42  # the roster itself is not a load process
    assert snap["roster"] == {"schema_version": 1, "expected": 2, "connected": ["hostB-7-1"]}
    assert folder.local_worker_pids() == {5}  # never the pid of a worker on another machine
    s = Scenario(name="x", target=RedisTarget(kind="redis"), workload=Workload(kind="counter"))
    assert line(s, 1, snap, 5.0).endswith("workers 1/2")
    now, events = roster_changes({"hostC-1-1"}, snap)
    assert now == {"hostB-7-1"} and events == ["worker hostB-7-1 connected", "worker hostC-1-1 is gone"]


def test_a_worker_name_from_the_network_cannot_leave_the_folder(tmp_path):
    for bad in ("../x", ".hidden", "", "a/b"):
        with pytest.raises(ValueError):
            RunFolder(tmp_path).remote_progress_file(bad)


def test_line_shows_elapsed_rate_outcomes_and_p99():
    s = Scenario(name="x", target=RedisTarget(kind="redis"), workload=Workload(kind="counter"),
                 load=Load(duration=10))
    text = line(s, 3.2, {"ok": 7, "fail": 1, "indeterminate": 0, "p99": 2.5}, 1234.0)
    assert text == "x:    3/10 s      1234 ops/s  ok 7  fail 1  indeterminate 0  p99 2.50 ms"
