"""Live progress: what the load processes report, summed and shown as one line."""

from __future__ import annotations

import json

from harness.config import Load, RedisTarget, Scenario, Workload
from harness.progress import line, snapshot


def test_snapshot_sums_workers_and_skips_half_written_files(tmp_path):
    (tmp_path / "progress").mkdir()
    for name, counts, p99 in (("a", {"increment.ok": 10, "increment.fail": 2}, {"increment.ok": 1.5}),
                              ("b", {"increment.ok": 5, "increment.indeterminate": 1,
                                     "increment.ok.intended": 99}, {"increment.ok": 3.0})):
        (tmp_path / "progress" / f"{name}.json").write_text(
            json.dumps({"schema_version": 1, "counts": counts, "last_window_p99_ms": p99}))
    (tmp_path / "progress" / "c.json").write_text('{"coun')
    assert snapshot(tmp_path) == {"ok": 15, "fail": 2, "indeterminate": 1, "p99": 3.0, "roster": None}


def test_remote_workers_figures_and_the_roster_count_too(tmp_path):
    from harness.progress import ROSTER, remote_progress_file, roster_changes, write_json

    write_json(remote_progress_file(tmp_path, "hostB-7-1"), {"counts": {"increment.ok": 40}})
    write_json(tmp_path / "progress" / "hostA-5-1.json", {"counts": {"increment.ok": 2}})
    write_json(tmp_path / "progress" / ROSTER, {"expected": 2, "connected": ["hostB-7-1"]})
    snap = snapshot(tmp_path)
    assert snap["ok"] == 42  # the roster itself is not a load process
    assert snap["roster"] == {"schema_version": 1, "expected": 2, "connected": ["hostB-7-1"]}
    s = Scenario(name="x", target=RedisTarget(kind="redis"), workload=Workload(kind="counter"))
    assert line(s, 1, snap, 5.0).endswith("workers 1/2")
    now, events = roster_changes({"hostC-1-1"}, snap)
    assert now == {"hostB-7-1"} and events == ["worker hostB-7-1 connected", "worker hostC-1-1 is gone"]


def test_a_worker_name_from_the_network_cannot_leave_the_folder(tmp_path):
    import pytest

    from harness.progress import remote_progress_file

    for bad in ("../x", ".hidden", "", "a/b"):
        with pytest.raises(ValueError):
            remote_progress_file(tmp_path, bad)


def test_line_shows_elapsed_rate_outcomes_and_p99():
    s = Scenario(name="x", target=RedisTarget(kind="redis"), workload=Workload(kind="counter"),
                 load=Load(duration=10))
    text = line(s, 3.2, {"ok": 7, "fail": 1, "indeterminate": 0, "p99": 2.5}, 1234.0)
    assert text == "x:    3/10 s      1234 ops/s  ok 7  fail 1  indeterminate 0  p99 2.50 ms"
