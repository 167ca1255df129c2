"""README "Development" promises each kind of change touches at most two files. Each test here makes
one such change to a copy of the code -- a toy backend, check, fault, workload, plot -- checks that
nothing else changed, and runs the copy end to end."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def copy_of_the_code(tmp_path: Path) -> Path:
    root = tmp_path / "cb"
    ignore = shutil.ignore_patterns("__pycache__")
    # links kept: harness/data/ points at the copy's locustfiles/, apigateway/ and scenarios.yaml, as in a checkout
    for part in ("harness", "locustfiles", "apigateway"):
        shutil.copytree(ROOT / part, root / part, ignore=ignore, symlinks=True)
    shutil.copy(ROOT / "scenarios.yaml", root / "scenarios.yaml")
    shutil.copytree(ROOT / "tests" / "fixtures", root / "fixtures", ignore=ignore)
    return root


def changed(root: Path) -> set[str]:
    """Files of the copy that are new or differ from the code's."""
    out = set()
    for part in ("harness", "locustfiles"):
        for p in (root / part).rglob("*.py"):
            twin = ROOT / p.relative_to(root)
            if not twin.exists() or not filecmp.cmp(p, twin, shallow=False):
                out.add(str(p.relative_to(root)))
    return out


def read_verdict(run: Path) -> dict:
    return json.loads((run / "verdict.json").read_text()) if (run / "verdict.json").exists() else {}


def add_line(path: Path, after: str, line: str) -> None:
    """Insert ``line`` after the first line that contains ``after``."""
    lines = path.read_text().splitlines(keepends=True)
    i = next(i for i, text in enumerate(lines) if after in text)
    lines.insert(i + 1, line + "\n")
    path.write_text("".join(lines))


def counterbench(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-c", "import sys, harness, harness.cli; "
                           "assert harness.__file__.startswith(sys.argv[1]), harness.__file__; "
                           "sys.exit(harness.cli.main(sys.argv[2:]))", str(root), *args],
                          cwd=root, capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "PYTHONPATH": str(root)})
    return proc


TOY_BACKEND = '''"""toyfile: a counter in a file, changed under an exclusive lock (a test's toy backend)."""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from harness.core.models import TargetConfig
from harness.core.ops import Completion
from harness.targets import Backend, LocalTarget


class ToyTarget(TargetConfig):
    kind: Literal["toyfile"]


class ToyFiles:
    def __init__(self, url: str) -> None:
        self.dir = Path(urlsplit(url).path)

    def setup(self, initial):
        for key, value in initial.items():
            (self.dir / key).write_text(str(value))

    def read(self, keys):
        return {key: int((self.dir / key).read_text()) for key in keys}

    def incr(self, key, amount):
        with open(self.dir / key, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            value = int(f.read()) + amount
            f.seek(0)
            f.truncate()
            f.write(str(value))
        return Completion.ok(value)

    def decr_if_positive(self, key):
        return Completion.fail("not a seats backend")

    def close(self):
        pass


def _local(scenario, stack: ExitStack) -> LocalTarget:
    folder = tempfile.mkdtemp()
    stack.callback(shutil.rmtree, folder)
    return LocalTarget(scenario=scenario, url=f"toy://127.0.0.1{folder}", servers={})


BACKEND = Backend(kind="toyfile", config=ToyTarget, admin=lambda s, url: ToyFiles(url),
                  ops=lambda s, url, ctx: ToyFiles(url), local=_local)
'''

TOY_SCENARIOS = """
schema_version: 1
scenarios:
  toy:
    target: {kind: %s}
    workload: {kind: %s}
    load: {users: 4, spawn_rate: 4, duration: 2, drain: 2}
    %s
"""


def test_a_backend_is_one_module_and_its_registry_entry(tmp_path):
    root = copy_of_the_code(tmp_path)
    (root / "harness" / "targets" / "toyfile.py").write_text(TOY_BACKEND)
    registry = root / "harness" / "targets" / "registry.py"
    registry.write_text(registry.read_text().replace("import Backend, apigateway,",
                                                     "import Backend, apigateway, toyfile,"))
    add_line(registry, "apigateway.BACKEND,", "    toyfile.BACKEND,")
    assert changed(root) == {"harness/targets/toyfile.py", "harness/targets/registry.py"}
    (root / "s.yaml").write_text(TOY_SCENARIOS % ("toyfile", "counter", ""))
    proc = counterbench(root, "run", "-q", "--no-report", "-f", "s.yaml", "-s", "toy", "--out", "run")
    verdict = read_verdict(root / "run")
    assert (proc.returncode, verdict.get("verdict")) == (0, "pass"), proc.stderr[-2000:] + proc.stdout[-2000:]
    assert verdict["totals"]["ok"] > 100 and verdict["target"]["kind"] == "toyfile"


TOY_CHECK = '''"""non-negative: no key ends below zero (a test's toy check)."""

from __future__ import annotations

from harness.checks.model import Check, CheckResult


def check_non_negative(*, key, initial, final, t, history, returns="after"):
    if final is None:
        return CheckResult(name="non-negative", key=key, valid=None, evidence={"reason": "not read"})
    return CheckResult(name="non-negative", key=key, valid=final >= 0,
                       evidence={"final": final, "negative": max(0, -final)})


CHECK = Check(name="non-negative", fn=check_non_negative, findings=(("negative", "below zero"),), default=False)
'''


def test_a_check_is_one_module_and_its_registry_entry(tmp_path):
    root = copy_of_the_code(tmp_path)
    (root / "harness" / "checks" / "nonnegative.py").write_text(TOY_CHECK)
    registry = root / "harness" / "checks" / "__init__.py"
    registry.write_text(registry.read_text().replace("from harness.checks import bounds, ",
                                                     "from harness.checks import bounds, nonnegative, "))
    add_line(registry, "    oversell.CHECK,", "    nonnegative.CHECK,")
    assert changed(root) == {"harness/checks/nonnegative.py", "harness/checks/__init__.py"}
    run = root / "fixtures" / "run-v1"
    doc = json.loads((run / "run.json").read_text())
    doc["scenario"]["checks"] = ["bounds", "non-negative"]
    (run / "run.json").write_text(json.dumps(doc))
    ok = counterbench(root, "check", str(run))
    assert ok.returncode == 0 and "PASS" in ok.stdout, ok.stdout + ok.stderr
    state = json.loads((run / "state.json").read_text())
    state["final"] = {"cb:r:counter": -5}
    (run / "state.json").write_text(json.dumps(state))
    bad = counterbench(root, "check", str(run))
    verdict = json.loads((run / "verdict.json").read_text())
    # picked up by name: its finding counted in the totals and worded in the reason, as the shipped checks'
    assert bad.returncode == 1 and verdict["totals"]["negative"] == 5, bad.stdout + bad.stderr
    assert "non-negative" in verdict["reason"] and "5 below zero" in verdict["reason"]
    assert counterbench(root, "report", str(run)).returncode == 0
    assert "non-negative" in (run / "report.html").read_text()


TOY_FAULT = '''

class Freeze:
    """Hold every byte (a test's toy fault)."""

    network = True
    needs_duration = True
    replicated = False

    def open(self, on, fault):
        on.stalled = True

    def heal(self, on, fault):
        on.stalled = False
'''


def test_a_fault_is_one_class_and_its_registry_entry(tmp_path):
    root = copy_of_the_code(tmp_path)
    network = root / "harness" / "faults" / "network.py"
    network.write_text(network.read_text() + TOY_FAULT)
    add_line(root / "harness" / "faults" / "__init__.py", '"latency": network.Latency(),',
             '    "freeze": network.Freeze(),')
    assert changed(root) == {"harness/faults/network.py", "harness/faults/__init__.py"}
    (root / "s.yaml").write_text(TOY_SCENARIOS % ("redis, timeout: 5", "counter",
                                                  "faults: [{at: 0.5, action: freeze, duration: 1}]"))
    proc = counterbench(root, "run", "-q", "--no-report", "-f", "s.yaml", "-s", "toy", "--out", "run")
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    events = [json.loads(line) for line in (root / "run" / "faults.jsonl").read_text().splitlines()]
    assert [(e["action"], e["event"]) for e in events] == [("freeze", "begin"), ("freeze", "end")]


def test_a_workload_is_one_entry_and_its_locustfile(tmp_path):
    root = copy_of_the_code(tmp_path)
    add_line(root / "harness" / "workloads.py", '"page-views": WorkloadKind(',
             '    "likes": WorkloadKind(keys=_one("likes")),')
    (root / "locustfiles" / "likes.py").write_text(
        (root / "locustfiles" / "counter.py").read_text().replace('workload = "counter"', 'workload = "likes"'))
    assert changed(root) == {"harness/workloads.py", "locustfiles/likes.py"}
    (root / "s.yaml").write_text(TOY_SCENARIOS % ("redis", "likes", ""))
    proc = counterbench(root, "run", "-q", "--no-report", "-f", "s.yaml", "-s", "toy", "--out", "run")
    verdict = read_verdict(root / "run")
    assert (proc.returncode, verdict.get("verdict")) == (0, "pass"), proc.stderr[-2000:] + proc.stdout[-2000:]
    assert json.loads((root / "run" / "run.json").read_text())["keys"][0].endswith(":likes")


TOY_PLOT = '''

def plot_ok_share(frame: pd.DataFrame, ax: Axes, *, title: str) -> None:
    """The share of completed ops that were acknowledged, per second (a test's toy plot)."""
    counts = frame[frame["measure"] == "service"].pivot_table(index="t", columns="outcome", values="count",
                                                             aggfunc="sum", fill_value=0)
    ax.plot(counts.index, counts.get("ok", 0) / counts.sum(axis=1))
    ax.set_title(title)
'''


def test_a_plot_is_one_function_and_its_row(tmp_path):
    root = copy_of_the_code(tmp_path)
    plots = root / "harness" / "report" / "plots.py"
    plots.write_text(plots.read_text() + TOY_PLOT)
    add_line(root / "harness" / "report" / "build.py", "PLOTS: tuple[Plot, ...] = (",
             '    Plot(file="ok_share.png", heading="Share acknowledged", '
             'draw=lambda f, ax: plots.plot_ok_share(f.frame, ax, title="ok share")),')
    assert changed(root) == {"harness/report/plots.py", "harness/report/build.py"}
    run = root / "fixtures" / "run-v2"
    proc = counterbench(root, "report", str(run))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run / "ok_share.png").stat().st_size > 1000 and "Share acknowledged" in (run / "report.html").read_text()
