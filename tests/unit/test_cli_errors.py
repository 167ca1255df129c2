"""Every error is one line on stderr and exit code 2: never a traceback, never 1 (which means fail)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run-v1"


def run_folder(tmp_path: Path, edit_run=None, edit_state=None) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(FIXTURE, folder)
    for name, fn in (("run.json", edit_run), ("state.json", edit_state)):
        if fn is not None:
            doc = json.loads((folder / name).read_text())
            fn(doc)
            (folder / name).write_text(json.dumps(doc))
    return folder


def one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("counterbench: "), err
    assert "Traceback" not in err
    return lines[0]


def test_an_infinite_step_duration_is_a_config_error(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text("schema_version: 1\nscenarios:\n  x:\n    target: {kind: redis}\n"
                                     "    workload: {kind: counter}\n    load:\n"
                                     "      steps: [{users: 2, duration: .inf}]\n")
    line = one_line_error(capsys, ["run", "-f", str(tmp_path / "s.yaml"), "-s", "x"])
    assert "s.yaml:7: scenarios.x.load.steps.0.duration" in line


def test_several_problems_of_a_scenario_file_on_one_line(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text("schema_version: 1\nscenarios:\n  x:\n    target: {kind: redis, nope: 1}\n"
                                     "    workload: {kind: counter, also: 2}\n")
    line = one_line_error(capsys, ["list", "-f", str(tmp_path / "s.yaml")])
    assert "target.nope: unknown key" in line and "workload.also: unknown key" in line


def test_check_of_a_state_without_initial_names_the_field(tmp_path, capsys):
    folder = run_folder(tmp_path, edit_state=lambda d: d.pop("initial"))
    line = one_line_error(capsys, ["check", str(folder)])
    assert "state.json: initial: required key is missing" in line


def test_check_of_a_state_with_a_garbled_final_names_the_field(tmp_path, capsys):
    folder = run_folder(tmp_path, edit_state=lambda d: d.update(final={"k": "12"}))
    assert "state.json: final: a mapping" in one_line_error(capsys, ["check", str(folder)])


def test_check_of_a_run_json_with_an_invalid_scenario(tmp_path, capsys):
    folder = run_folder(tmp_path, edit_run=lambda d: d["scenario"]["workload"].update(kind="nope"))
    line = one_line_error(capsys, ["check", str(folder)])
    assert "run.json: scenario.workload.kind: Input should be" in line


def test_out_pointing_at_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    line = one_line_error(capsys, ["run", "-s", "redis-counter", "--out", str(tmp_path / "afile")])
    assert "is a file" in line


def test_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert "not a finished run folder" in one_line_error(capsys, ["check", str(tmp_path)])


def test_a_bug_is_an_internal_error_with_its_trace_in_a_file(tmp_path, capsys, monkeypatch):
    import harness.cli as cli

    def boom(_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "cmd_list", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    line = one_line_error(capsys, ["list"])
    assert line.startswith("counterbench: internal error: RuntimeError: a bug (the full trace is in ")
    trace = next(tmp_path.glob("counterbench-crash-*.txt")).read_text()
    assert "Traceback" in trace and "a bug" in trace


def test_a_duration_that_ends_the_load_before_a_planned_fault_is_refused_before_any_load(capsys):
    """The issue's run: --duration 2 on a scenario whose failover is at 3 s ran and passed, proving nothing."""
    shipped = Path(__file__).resolve().parents[2] / "scenarios.yaml"
    line_of_failover = next(n for n, text in enumerate(shipped.read_text().splitlines(), 1)
                            if "{at: 3, action: failover, duration: 5}" in text)
    line = one_line_error(capsys, ["run", "-f", str(shipped), "-s", "redis-replicated-failover-wait",
                                   "--duration", "2"])
    assert line == (f"counterbench: error: {shipped}:{line_of_failover}: "
                    "scenarios.redis-replicated-failover-wait.faults.1.at: "
                    "failover planned at 3 s, at or after the load's end (2 s, set by --duration)")


def test_a_scenario_file_with_a_fault_after_its_load_is_refused(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text("schema_version: 1\nscenarios:\n  x:\n    target: {kind: redis}\n"
                                     "    workload: {kind: counter}\n    load: {duration: 2}\n"
                                     "    faults: [{at: 2, action: kill, duration: 1}]\n")
    line = one_line_error(capsys, ["run", "-f", str(tmp_path / "s.yaml"), "-s", "x"])
    assert line.endswith("s.yaml:7: scenarios.x.faults.0.at: kill planned at 2 s, at or after the load's end (2 s)")
