"""SIGTERM ends a run like the end of its duration; a second signal stops at once; no child outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.stack.process import free_port, port_open
from tests.integration.conftest import SHIPPED, alive, descendants

pytestmark = pytest.mark.integration


def start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": os.getcwd()})


def wait_for_load(proc: subprocess.Popen[bytes], run: Path, *, processes: int, timeout: float = 90) -> set[int]:
    """Wait until every load process reports progress; returns every process below ``proc`` then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((run / "progress").glob("*-*-*.json"))) >= processes:
            time.sleep(1.5)  # some load on the way
            return descendants(proc.pid)
        time.sleep(0.1)
    raise AssertionError(f"the load did not start: {proc.communicate()[0].decode()[-2000:]}")


def listening_ports(pids: set[int]) -> set[int]:
    """The TCP ports any of ``pids`` listens on, from /proc."""
    by_inode: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            f = row.split()
            if f[3] == "0A":  # LISTEN
                by_inode[f"socket:[{f[9]}]"] = int(f[1].rsplit(":", 1)[1], 16)
    ports: set[int] = set()
    for pid in pids:
        try:
            links = {os.readlink(fd.path) for fd in os.scandir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        ports |= {by_inode[link] for link in links if link in by_inode}
    return ports


def is_reaper(pid: int) -> bool:
    return b"harness/stack/reaper.py" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_sigterm_ends_the_load_early_judges_and_stops_every_server(tmp_path):
    run = tmp_path / "run"
    proc = start(["run", "-s", "service-postgres-counter", "-f", str(SHIPPED), "--duration", "60",
                  "--processes", "2", "--no-report", "--out", str(run)])
    children = wait_for_load(proc, run, processes=2)
    assert len(children) >= 5  # postgres (and its helpers), the service, Locust's master and 2 workers
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    text = out.decode()
    v = json.loads((run / "verdict.json").read_text())
    assert (proc.returncode, v["verdict"]) == (0, "pass"), text[-3000:]
    assert v["stopped"]["signal"] == "SIGTERM" and v["stopped"]["after_s"] < 30
    assert all(w["complete"] for w in v["history"]["workers"]) and len(v["history"]["workers"]) == 2
    assert "stopped by SIGTERM" in text
    assert not alive(children), alive(children)


def test_a_second_signal_stops_at_once_and_still_stops_every_child(tmp_path):
    run = tmp_path / "run"
    proc = start(["run", "-s", "service-redis-counter", "-f", str(SHIPPED), "--duration", "60", "--no-report",
                  "--out", str(run)])
    children = wait_for_load(proc, run, processes=1)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out.decode()[-2000:]
    assert "stopped at once" in out.decode()
    time.sleep(0.5)
    assert not alive(children), alive(children)


def test_sigterm_before_the_load_starts_sends_none(tmp_path):
    run = tmp_path / "run"
    proc = start(["run", "-s", "service-postgres-counter", "-f", str(SHIPPED), "--no-report", "--out", str(run)])
    assert proc.stdout is not None
    first = proc.stdout.readline()  # "starting a local http target ...": PostgreSQL is starting now
    assert b"starting a local" in first, first
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out.decode()[-2000:]
    assert not (run / "history").exists()


def test_sigterm_stops_a_worker_and_its_locust_process(tmp_path):
    proc = start(["worker", "--master-host", "127.0.0.1", "--master-port", str(free_port()), "-f", str(SHIPPED),
                  "-s", "redis-counter", "--dir", str(tmp_path / "w")])
    deadline = time.monotonic() + 30
    while not descendants(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)
    children = descendants(proc.pid)
    assert children
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    time.sleep(0.5)
    assert not alive(children), alive(children)


def test_sigterm_stops_serve_with_every_worker(tmp_path, redis_url):
    port = free_port()
    proc = start(["serve", "--store", "redis", "--store-url", redis_url, "--workers", "2", "--port", str(port)])
    deadline = time.monotonic() + 30
    while not port_open(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    children = descendants(proc.pid)
    assert len(children) >= 2
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    time.sleep(0.5)
    assert not alive(children | {proc.pid}), alive(children)


def test_sigterm_before_a_planned_fault_makes_the_verdict_unknown_naming_the_fault(tmp_path):
    """A run stopped before its fault proves nothing about that fault, however clean its history."""
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text("schema_version: 1\nscenarios:\n  late-pause:\n    target: {kind: redis, timeout: 1}\n"
                         "    workload: {kind: counter}\n    load: {users: 8, spawn_rate: 8, duration: 8, drain: 2}\n"
                         "    faults: [{at: 5, action: pause, duration: 1}]\n")
    run = tmp_path / "run"
    proc = start(["run", "-s", "late-pause", "-f", str(scenarios), "--no-report", "--out", str(run)])
    wait_for_load(proc, run, processes=1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    v = json.loads((run / "verdict.json").read_text())
    assert (proc.returncode, v["verdict"]) == (2, "unknown"), out.decode()[-3000:]
    (fault,) = v["faults"]
    assert (fault["status"], fault["stopped_by"], fault["opened_s"]) == ("load-ended", "SIGTERM", None)
    assert 0 < fault["load_ended_s"] < 5
    ended = f"{round(fault['load_ended_s'], 1):g}"
    assert v["reason"] == f"pause planned at 5 s did not happen: the load ended at {ended} s (stopped by SIGTERM)"
    assert "pause planned at 5 s did not happen" in out.decode()  # the terminal says so too
    events = [json.loads(line) for line in (run / "faults.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["not-opened"]


def test_a_sigkilled_run_leaves_no_server_and_no_load_process_behind(tmp_path):
    """No finally, no signal handler runs: the reaper kills PostgreSQL (run as the postgres user), the
    reference service and Locust's master and workers, and their ports are free again."""
    run = tmp_path / "run"
    proc = start(["run", "-s", "service-postgres-counter", "-f", str(SHIPPED), "--duration", "60",
                  "--processes", "2", "--no-report", "--out", str(run)])
    children = wait_for_load(proc, run, processes=2)
    ports = listening_ports(children)
    assert len(ports) >= 3, ports  # PostgreSQL, the service, Locust's master
    proc.kill()
    out, _ = proc.communicate(timeout=30)  # the reaper holds the output too: this returns once it is done
    deadline = time.monotonic() + 5
    while (alive(children) or any(port_open(p) for p in ports)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(children), alive(children)
    assert not [p for p in ports if port_open(p)]
    assert "counterbench-reaper: counterbench" in out.decode(), out.decode()[-2000:]


def test_a_normal_run_leaves_no_reaper_behind(tmp_path):
    run = tmp_path / "run"
    proc = start(["run", "-s", "redis-counter", "-f", str(SHIPPED), "--duration", "4", "--no-report",
                  "--out", str(run)])
    children = wait_for_load(proc, run, processes=1)
    assert [p for p in children if is_reaper(p)]
    proc.wait(timeout=60)  # not communicate: the reaper shares the output pipe, and its end would wait for it
    left = alive(children)  # at once: counterbench waited for its reaper
    out = proc.communicate()[0].decode()
    assert proc.returncode == 0, out[-2000:]
    assert not left, left
    assert "counterbench-reaper" not in out
