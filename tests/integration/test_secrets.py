"""Marker secrets reach the target and nothing else: not the run folder, the output, nor `ps`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.stack.redis import RedisServer, redis_server_binary
from tests.integration.conftest import SHIPPED, start_service

pytestmark = pytest.mark.integration

PASSWORD, QUERY, HEADER = "pw-marker-7c1e", "q-marker-93b0", "h-marker-55d2"
MARKERS = (PASSWORD, QUERY, HEADER)

GUARDED = f"""
schema_version: 1
scenarios:
  guarded-counter:
    target:
      kind: http
      timeout: 2
      contract: {{headers: {{X-Api-Key: {HEADER}}}}}
    workload: {{kind: counter}}
    load: {{users: 8, spawn_rate: 8, duration: 3, drain: 3}}
"""


class PasswordRedis(RedisServer):
    """A redis-server that wants a password (from a config file: its own argv stays clean)."""

    def command(self) -> list[str]:
        conf = self.dir / "auth.conf"
        conf.write_text(f"requirepass {PASSWORD}\n")
        return [redis_server_binary(), str(conf), *super().command()[1:]]


def command_lines() -> list[str]:
    """Every process's command line on this machine, as `ps` shows it."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return out


def run_watching_ps(args: list[str], cwd: Path, target_url: str) -> tuple[int, str, list[str]]:
    """`counterbench run ...` in a child, the target URL given by environment; returns its exit code, its
    output, and any command line seen while it ran (its own, its load processes', its servers') that held
    a marker."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=cwd,
                            env={**os.environ, "PYTHONPATH": os.getcwd(), "COUNTERBENCH_TARGET_URL": target_url})
    seen: list[str] = []
    while proc.poll() is None:
        seen += [line for line in command_lines() if any(m in line for m in MARKERS)]
        time.sleep(0.2)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    return proc.returncode, out, seen


def leaks(folder: Path) -> list[str]:
    return [f"{p}: {m}" for p in folder.rglob("*") if p.is_file() for m in MARKERS if m.encode() in p.read_bytes()]


@pytest.fixture
def guarded_service() -> Iterator[str]:
    proc, url = start_service("none", env={"GUARD_PREFIX": "/base", "GUARD_QUERY": QUERY, "GUARD_HEADER": HEADER,
                                           "GUARD_BASIC": f"user:{PASSWORD}"})
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_http_secrets_reach_the_service_and_nothing_else(tmp_path, guarded_service):
    (tmp_path / "s.yaml").write_text(GUARDED)
    url = guarded_service.replace("http://", f"http://user:{PASSWORD}@") + f"/base?api_key={QUERY}"
    code, out, seen = run_watching_ps(["run", "-f", str(tmp_path / "s.yaml"), "-s", "guarded-counter",
                                       "--out", str(tmp_path / "run")], tmp_path, url)
    # the service answers 401 to a request without every secret: a pass proves each was sent
    assert code == 0, out[-3000:]
    assert not seen, seen
    assert not [m for m in MARKERS if m in out], out[-3000:]
    assert (tmp_path / "run" / "report.html").exists()
    # what `export` writes is in the run folder too, so the same grep covers it (parquet: read back)
    for fmt in ("csv", "parquet"):
        assert main(["export", str(tmp_path / "run"), "--format", fmt]) == 0
    table = pd.read_parquet(tmp_path / "run" / "export" / "history.parquet").astype(str).to_csv()
    assert not [m for m in MARKERS if m in table]
    assert not leaks(tmp_path / "run")


def test_a_redis_password_reaches_redis_and_nothing_else(tmp_path):
    with PasswordRedis() as server:
        url = server.url.replace("redis://", f"redis://:{PASSWORD}@")
        code, out, seen = run_watching_ps(["run", "-f", str(SHIPPED), "-s", "redis-counter", "--duration", "3",
                                           "--processes", "2", "--out", str(tmp_path / "run")], tmp_path, url)
    assert code == 0, out[-3000:]
    assert not [line for line in seen if "requirepass" not in line and "auth.conf" not in line], seen
    assert PASSWORD not in out
    assert not leaks(tmp_path / "run")


def test_error_messages_carry_no_secret(tmp_path):
    (tmp_path / "s.yaml").write_text(GUARDED)
    url = f"http://user:{PASSWORD}@127.0.0.1:1/base?api_key={QUERY}"  # nothing listens on port 1
    code, out, _ = run_watching_ps(["run", "-f", str(tmp_path / "s.yaml"), "-s", "guarded-counter",
                                    "--out", str(tmp_path / "run")], tmp_path, url)
    assert code == 2 and "unreachable" in out, out
    assert not [m for m in MARKERS if m in out], out
    assert not leaks(tmp_path / "run") if (tmp_path / "run").exists() else True
