"""counterbench as a user gets it: `pip install` into a fresh venv, run from an empty folder outside the checkout.

Slow (a fresh venv installs every dependency: about 90 s with a cold pip cache), and the only test
that reads the wheel's package data rather than the checkout's files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack.process import free_port

ROOT = Path(__file__).resolve().parents[2]
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "eu-west-1"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin"


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    assert not (folder / "scenarios.yaml").exists() and ROOT not in folder.parents
    return folder


def cb(bin_dir: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # PATH keeps redis-server reachable; nothing of the checkout is on PYTHONPATH
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(bin_dir / "counterbench"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False, env={**clean, **(env or {})})


def test_the_installed_package_is_not_the_checkout(installed, empty):
    where = subprocess.run([str(installed / "python"), "-c", "import harness; print(harness.__file__)"], cwd=empty,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(installed.parent)) and not where.startswith(str(ROOT))


def test_run_from_an_empty_folder_uses_the_shipped_scenarios(installed, empty):
    listed = cb(installed, empty, "list")
    assert listed.returncode == 0, listed.stderr
    assert "the shipped scenarios" in listed.stderr and "redis-counter " in listed.stdout
    run = cb(installed, empty, "run", "-s", "redis-counter", "--duration", "2", "--out", str(empty / "run"))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    verdict = json.loads((empty / "run" / "verdict.json").read_text())
    assert verdict["verdict"] == "pass" and verdict["totals"]["ok"] > 0
    page = (empty / "run" / "report.html").read_text()
    assert "Cost per million acknowledged increments" in page  # the shipped price table came with the wheel
    exported = cb(installed, empty, "export", str(empty / "run"), "--format", "parquet")
    assert exported.returncode == 0, exported.stderr
    assert (empty / "run" / "export" / "history.parquet").stat().st_size > 0


def test_init_writes_a_starter_file_that_then_takes_over(installed, empty):
    assert cb(installed, empty, "init").returncode == 0
    listed = cb(installed, empty, "list")
    assert listed.returncode == 0 and "shipped" not in listed.stderr
    assert [line.split()[1] for line in listed.stdout.splitlines()] == ["redis", "http", "dynamodb", "apigateway"]
    again = cb(installed, empty, "init")
    assert again.returncode == 2 and "exists" in again.stderr


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    server = pytest.importorskip("moto.server").ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(),
                                                                   verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_aws_deploy_from_an_empty_folder_on_the_emulated_control_plane(installed, empty, moto_endpoint):
    """The shipped API definition and templates, deployed to moto on 127.0.0.1 (AWS_ENDPOINT_URL), then removed."""
    env = {**AWS, "AWS_ENDPOINT_URL": moto_endpoint}
    deployed = cb(installed, empty, "aws", "deploy", "--out", "deployment.json", env=env)
    assert deployed.returncode == 0, deployed.stderr
    created = json.loads((empty / "deployment.json").read_text())
    assert created["definition"].endswith("apigateway/counter-api.yaml") and "execute-api" in created["url"]
    removed = cb(installed, empty, "aws", "teardown", "--deployment", "deployment.json", env=env)
    assert removed.returncode == 0, removed.stderr
    assert "removed REST API" in removed.stdout and not (empty / "deployment.json").exists()
