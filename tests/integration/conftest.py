"""Real servers on 127.0.0.1 for the load path, and a way to run the CLI on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.stack.process import free_port
from harness.stack.redis import RedisServer

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "scenarios.yaml"
TEST_SCENARIOS = Path(__file__).resolve().parent / "scenarios.yaml"
SHORT = ["--users", "16", "--spawn-rate", "16", "--duration", "2"]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def run_cli(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any] | None]:
    """`counterbench run ... --out tmp_path/run`; returns the exit code and verdict.json."""
    out = tmp_path / "run"
    code = main(["run", "-q", "--no-report", "--out", str(out), *args])
    verdict = out / "verdict.json"
    return code, (json.loads(verdict.read_text()) if verdict.exists() else None)


def start_script(script: str, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """One of these tests' services (``script`` beside this file) on a free port, once its /health answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / script), *args, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=0.5):
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{script} {' '.join(args)} did not start")


def start_service(mode: str, every: int = 20, env: dict[str, str] | None = None
                  ) -> tuple[subprocess.Popen[bytes], str]:
    return start_script("faulty_service.py", "--mode", mode, "--every", str(every), env=env)


@pytest.fixture
def service(request: pytest.FixtureRequest) -> Iterator[str]:
    mode = getattr(request, "param", "none")
    proc, url = start_service(mode)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def dynalite_url() -> Iterator[str]:
    from harness.stack.dynalite import Dynalite

    with Dynalite() as server:
        yield server.url


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has exited)."""
    out = set()
    for p in pids:
        try:
            if Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                out.add(p)
        except OSError:
            continue
    return out
