"""The check stage on a hand-built version-1 run folder, offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import RunFolderError
from harness.judge import judge
from harness.runfolder import RunFolder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run-v1"


@pytest.fixture
def folder(tmp_path: Path) -> RunFolder:
    shutil.copytree(FIXTURE, tmp_path / "run")
    return RunFolder(tmp_path / "run")


def edit(path: Path, **fields: object) -> None:
    doc = json.loads(path.read_text())
    doc.update(fields)
    path.write_text(json.dumps(doc))


def test_v1_folder_passes(folder):
    # 1 ok, 1 fail, 1 never completed: final 2 is within [1, 2]
    v = judge(folder)
    assert v["verdict"] == "pass"
    assert v["totals"] == {"ops": 3, "ok": 1, "fail": 1, "indeterminate": 1, "keys": 1, "lost": 0,
                           "duplicated": 0, "duplicate_values": 0, "oversold": 0, "retried_ops": 0,
                           "retry_attempts": 0}
    assert json.loads(folder.verdict_json.read_text())["schema_version"] == 1


def test_final_outside_bounds_fails(folder):
    edit(folder.state_json, final={"cb:r:counter": 0})
    v = judge(folder)
    assert v["verdict"] == "fail" and v["totals"]["lost"] == 1


def test_final_never_read_is_unknown(folder):
    edit(folder.state_json, final=None)
    v = judge(folder)
    assert v["verdict"] == "unknown" and "never read" in v["reason"]


def test_crashed_load_process_is_unknown(folder):
    edit(folder.run_json, load_exit_code=2)
    v = judge(folder)
    assert v["verdict"] == "unknown" and "exited with code 2" in v["reason"]


def test_missing_history_is_unknown(folder):
    shutil.rmtree(folder.history_dir)
    v = judge(folder)
    assert v["verdict"] == "unknown" and "no history" in v["reason"]


def test_unknown_run_json_version_is_refused(folder):
    edit(folder.run_json, schema_version=7)
    with pytest.raises(RunFolderError, match="schema_version 7"):
        judge(folder)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="not a finished run folder"):
        judge(RunFolder(tmp_path))
