"""Package data: the shipped files are found from any folder; -f and files of one's own still win."""

from __future__ import annotations

import os
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import load_scenarios
from harness.core.shipped import DATA, LOCUSTFILES, STARTER, locate, scenario_file
from harness.targets.registry import BACKENDS
from harness.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parents[2]


def test_relative_paths_fall_back_to_the_shipped_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert locate("apigateway/counter-api.yaml") == DATA / "apigateway" / "counter-api.yaml"
    assert scenario_file(None) == DATA / "scenarios.yaml"
    (tmp_path / "apigateway").mkdir()
    (tmp_path / "apigateway" / "counter-api.yaml").write_text("mine")
    (tmp_path / "scenarios.yaml").write_text("mine")
    assert locate("apigateway/counter-api.yaml") == Path("apigateway/counter-api.yaml")  # one's own wins
    assert scenario_file(None) == Path("scenarios.yaml")
    assert scenario_file("missing.yaml") == Path("missing.yaml")  # -f is never swapped for another file
    assert locate("nowhere/x.yaml") == Path("nowhere/x.yaml")


def test_shipped_files_are_the_checkouts_and_all_in_the_wheel():
    assert (DATA / "scenarios.yaml").read_bytes() == (ROOT / "scenarios.yaml").read_bytes()
    for kind in WORKLOADS:
        assert (LOCUSTFILES / f"{kind.replace('-', '_')}.py").exists(), kind
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["harness"]
    files = [Path(d, n) for d, _, names in os.walk(DATA, followlinks=True) for n in names  # the links: followed
             if "__pycache__" not in d]
    assert len(files) > 10
    for f in files:
        rel = f.relative_to(DATA.parent).as_posix()
        assert any(fnmatch(rel, p) for p in patterns), f"{rel} would be left out of the wheel"
    assert any(fnmatch("prices.yaml", p) for p in patterns)


def test_the_starter_file_has_one_scenario_per_kind_of_target():
    scenarios = load_scenarios(STARTER)
    assert sorted(s.target.kind for s in scenarios.values()) == sorted(BACKENDS)
    assert all(s.target.url is None and not s.allow_remote for s in scenarios.values())  # local targets only


def test_init_writes_it_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert (tmp_path / "scenarios.yaml").read_text() == STARTER.read_text()
    (tmp_path / "scenarios.yaml").write_text("# mine\n")
    assert main(["init"]) == 2 and "exists" in capsys.readouterr().err
    assert (tmp_path / "scenarios.yaml").read_text() == "# mine\n"
    assert main(["init", "--force"]) == 0 and (tmp_path / "scenarios.yaml").read_text() == STARTER.read_text()


def test_list_from_elsewhere_says_it_lists_the_shipped_scenarios(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0
    out = capsys.readouterr()
    assert "the shipped scenarios" in out.err and "redis-counter " in out.out
    assert main(["list", "-f", "missing.yaml"]) == 2
    assert "missing.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("shipped", sorted(p.name for p in (ROOT / "apigateway").iterdir()))
def test_the_api_definition_and_templates_are_shipped(shipped):
    assert (DATA / "apigateway" / shipped).read_bytes() == (ROOT / "apigateway" / shipped).read_bytes()


def test_the_starter_files_own_service_example_is_a_valid_scenario_once_uncommented(tmp_path):
    text = STARTER.read_text()
    block = text[text.index("  # my-counter:"):]
    uncommented = "\n".join(line.replace("  # ", "  ", 1) for line in block.splitlines())
    (tmp_path / "mine.yaml").write_text(text.replace(block, uncommented))
    mine = load_scenarios(tmp_path / "mine.yaml")["my-counter"]
    assert mine.target.kind == "http" and mine.target.contract.increment.path == "/v2/likes/{key}"
