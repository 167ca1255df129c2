"""A newcomer points counterbench at their own service (issue 24): a contract that cannot read its answers
stops before any load, with the reason and a sample answer in one line; with the right contract one
command gives the verdict -- pass for the correct service, fail for its read-modify-write version."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.runfolder import RunFolder
from harness.history import history_files
from tests.integration.conftest import SHORT, run_cli, start_script

pytestmark = pytest.mark.integration


def contract(pointer: str, initial: int = 0) -> str:
    return f"""schema_version: 1
scenarios:
  likes:
    target:
      kind: http
      timeout: 2
      contract:
        increment: {{method: POST, path: "/v2/likes/{{key}}", value: {{json_pointer: {pointer}}}}}
        set: {{method: PUT, path: "/v2/likes/{{key}}", body: '{{"likes": {{value}}}}'}}
        read: {{method: GET, path: "/v2/likes/{{key}}", value: {{json_pointer: {pointer}}}}}
    workload: {{kind: counter{f", initial: {initial}" if initial else ""}}}
    load: {{users: 16, duration: 2}}
"""


def _service(*flags: str) -> Iterator[str]:
    proc, url = start_script("likes_service.py", *flags)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def likes() -> Iterator[str]:
    yield from _service()


def _scenarios(tmp_path: Path, pointer: str, initial: int = 0) -> str:
    path = tmp_path / "likes.yaml"
    path.write_text(contract(pointer, initial))
    return str(path)


def test_a_wrong_json_pointer_stops_before_any_load_with_the_reason_and_a_sample_answer(tmp_path, likes, capsys):
    out = tmp_path / "run"
    code = main(["run", "-q", "--no-report", "--out", str(out), "-f", _scenarios(tmp_path, "/data/like"),
                 "-s", "likes", "--target-url", likes, *SHORT])
    err = capsys.readouterr().err
    assert code == 2
    (line,) = [x for x in err.splitlines() if "preflight" in x]  # one line says it all
    # the first call whose answer it reads is the read after the set: named by method and path
    assert "(GET /v2/likes/{key})" in line and "no integer at JSON pointer /data/like" in line
    assert '{"data": {"likes": 0}}' in line and "no load was sent" in line  # the answer it could not read
    folder = RunFolder(out)
    assert not (out / "verdict.json").exists() and not history_files(folder.history_dir)  # nothing sent at load rate
    assert "no integer at JSON pointer" in folder.read(folder.run_json)["preflight"]["failed"]


def test_an_increment_whose_answer_cannot_be_read_is_named_by_its_method_and_path(tmp_path, likes, capsys):
    path = tmp_path / "likes.yaml"
    path.write_text(contract("/data/likes").replace("value: {json_pointer: /data/likes}}\n        set",
                                                    "value: {json_pointer: /likes}}\n        set", 1))
    code = main(["run", "-q", "--no-report", "--out", str(tmp_path / "run"), "-f", str(path), "-s", "likes",
                 "--target-url", likes, *SHORT])
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "preflight" in x]
    assert code == 2 and "the increment (POST /v2/likes/{key})" in line and "answered indeterminate 3 times" in line
    assert "no integer at JSON pointer /likes" in line and '{"data": {"likes": ' in line


def test_with_the_right_pointer_one_command_gives_the_verdict(tmp_path, likes, capsys):
    code, v = run_cli(tmp_path, "-f", _scenarios(tmp_path, "/data/likes"), "-s", "likes", "--target-url", likes,
                      *SHORT)
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v["reason"]
    assert v["totals"]["ok"] > 0 and v["totals"]["indeterminate"] == 0
    run = RunFolder(tmp_path / "run").read(RunFolder(tmp_path / "run").run_json)
    assert run["target"]["variant"] is None  # its own code: not the reference service's "atomic"
    # -q is quiet, not silent: the verdict line and where the run is
    assert capsys.readouterr().out.strip() == f"likes: PASS - {v['reason']}  (run folder {tmp_path / 'run'})"


def test_its_read_modify_write_version_is_caught(tmp_path):
    for url in _service("--rmw"):
        code, v = run_cli(tmp_path, "-f", _scenarios(tmp_path, "/data/likes"), "-s", "likes", "--target-url", url,
                          *SHORT)
        assert v is not None and (code, v["verdict"]) == (1, "fail") and v["totals"]["lost"] > 0


def test_a_set_that_does_not_set_is_named_before_any_load(tmp_path, capsys):
    for url in _service("--ignore-set"):
        code = main(["run", "-q", "--no-report", "--out", str(tmp_path / "run"), "-f",
                     _scenarios(tmp_path, "/data/likes", initial=5), "-s", "likes", "--target-url", url, *SHORT])
        err = capsys.readouterr().err
        assert code == 2 and "gives 0, not 5: the set does not set" in err, err


def test_a_service_without_a_setter_starts_from_what_it_holds(tmp_path, likes):
    path = tmp_path / "likes.yaml"
    path.write_text(contract("/data/likes").replace(
        """set: {method: PUT, path: "/v2/likes/{key}", body: '{"likes": {value}}'}""", "set: null"))
    code, v = run_cli(tmp_path, "-f", str(path), "-s", "likes", "--target-url", likes, *SHORT)
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v["reason"]
    folder = RunFolder(tmp_path / "run")
    state, run = folder.read(folder.state_json), folder.read(folder.run_json)
    key = run["keys"][0]
    assert state["initial"][key] == 1 == run["preflight"]["initial"]  # read, after the preflight's one like
    assert state["final"][key] == 1 + v["totals"]["ok"]


def test_an_increment_sent_to_the_wrong_path_is_named_with_the_status_and_body_it_got(tmp_path, likes, capsys):
    path = tmp_path / "likes.yaml"
    path.write_text(contract("/data/likes").replace('increment: {method: POST, path: "/v2/likes/{key}"',
                                                    'increment: {method: POST, path: "/v2/like/{key}"'))
    code = main(["run", "-q", "--no-report", "--out", str(tmp_path / "run"), "-f", str(path), "-s", "likes",
                 "--target-url", likes, *SHORT])
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "preflight" in x]
    assert code == 2 and "the increment (POST /v2/like/{key})" in line and "answered fail" in line
    assert """404 b'{"error": "not found"}'""" in line, line


def test_the_readme_front_page_example_is_this_newcomer_in_one_command(tmp_path, likes):
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    m = re.search(r"<!-- readme-likes-example -->\s*```yaml\n(.*?)```", text, re.S)
    assert m, "README's likes example is missing"
    path = tmp_path / "scenarios.yaml"
    path.write_text(m.group(1).replace("duration: 10", "duration: 2"))
    code = main(["run", "-q", "--no-report", "--out", str(tmp_path / "run"), "-f", str(path), "-s", "likes",
                 "--target-url", likes])
    v = json.loads((tmp_path / "run" / "verdict.json").read_text())
    assert (code, v["verdict"]) == (0, "pass"), v["reason"]
    assert v["totals"]["ok"] > 50
