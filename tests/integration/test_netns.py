"""Across "machines" for real: a master, three workers and a Redis, each in a network namespace of its own,
joined by a bridge on a private 10.x subnet -- the harness with its explicit remote flags, as on loopback.

Everything the test makes lives in namespaces it makes: the bridge sits in a namespace of its own, every
veth pair is created between two of them, so no interface or address outside them is touched. Needs root
(``ip netns add``) and redis-server; skips, saying why, without them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NODES = ("master", "target", "w1", "w2", "w3")
PORT = 5557  # the master's, inside its own namespace: nothing else listens there
SCENARIO = """\
schema_version: 1
scenarios:
  netns-redis-counter:
    description: INCR on one hot key, on a Redis across the bridge
    target: {kind: redis}
    workload: {kind: counter}
    load: {users: 12, spawn_rate: 12, duration: 4, drain: 2}
    allow_remote: true
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@dataclass
class Lab:
    """The namespaces (role -> name), each node's address, and the processes started in them."""

    ns: dict[str, str]
    addr: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, role: str, cmd: list[str], **kw: object) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(["ip", "netns", "exec", self.ns[role], *cmd], cwd=ROOT,
                                                         **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def run(self, role: str, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns[role], *cmd], capture_output=True, text=True,
                              timeout=20, check=False)


def _pids_in(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10, check=False)
    return [int(p) for p in out.stdout.split()]


@pytest.fixture
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (`ip netns add`)")
    for tool in ("ip", "redis-server"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    tag = f"cb{os.getpid() % 100000}{random.randrange(100)}"  # interface names stay under 16 characters
    subnet = f"10.{random.randrange(64, 250)}.{random.randrange(256)}"
    switch = f"{tag}-sw"
    made: list[str] = []
    lab = Lab(ns={role: f"{tag}-{role}" for role in NODES},
              addr={role: f"{subnet}.{i}" for i, role in enumerate(NODES, start=2)})
    try:
        try:
            for ns in (switch, *lab.ns.values()):
                ip("netns", "add", ns)
                made.append(ns)
        except (subprocess.CalledProcessError, OSError) as e:
            pytest.skip(f"`ip netns add` failed: {getattr(e, 'stderr', '') or e}")
        ip("-n", switch, "link", "add", "br0", "type", "bridge")
        ip("-n", switch, "link", "set", "br0", "up")
        for role, ns in lab.ns.items():
            # the pair is made inside the switch's namespace with its other end in the node's
            ip("-n", switch, "link", "add", f"v-{role}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", switch, "link", "set", f"v-{role}", "master", "br0")
            ip("-n", switch, "link", "set", f"v-{role}", "up")
            ip("-n", ns, "addr", "add", f"{lab.addr[role]}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield lab
    finally:
        for proc in lab.procs:  # counterbench stops its own children on SIGTERM
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in lab.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in made:  # whatever still runs in the test's namespaces was started by it: end it by pid
            for pid in _pids_in(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)


def _wait_for_redis(lab: Lab, deadline: float) -> None:
    probe = [sys.executable, "-c", "import socket, sys; socket.create_connection((sys.argv[1], 6379), 1).close()",
             lab.addr["target"]]
    while time.monotonic() < deadline:  # from the master's namespace: across the bridge
        if lab.run("master", probe).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError("redis-server did not answer across the bridge")


def test_a_master_and_three_workers_in_namespaces_of_their_own_pass_as_on_loopback(lab, tmp_path):
    started = time.monotonic()
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(SCENARIO)
    target, master_ip = lab.addr["target"], lab.addr["master"]
    lab.spawn("target", ["redis-server", "--port", "6379", "--bind", target, "--save", "", "--appendonly", "no",
                         "--protected-mode", "no", "--dir", str(tmp_path)],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_redis(lab, time.monotonic() + 15)
    run = tmp_path / "run"
    master = lab.spawn("master", [
        sys.executable, "-m", "harness.cli", "run", "--no-report", "-f", str(scenarios), "-s", "netns-redis-counter",
        "--target-url", f"redis://{target}:6379/0", "--master", "--expect-workers", "3",
        "--master-bind-host", master_ip, "--allow-remote-workers", "--master-bind-port", str(PORT), "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    workers = [lab.spawn(w, [sys.executable, "-m", "harness.cli", "worker", "--master-host", master_ip,
                             "--master-port", str(PORT), "-f", str(scenarios), "-s", "netns-redis-counter",
                             "--dir", str(tmp_path / w)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for w in ("w1", "w2", "w3")]
    out, _ = master.communicate(timeout=90)
    for w in workers:
        w.wait(timeout=30)  # each leaves once the master has its files
    text = out.decode()
    assert master.returncode == 0, text[-3000:]
    # the same verdict as on loopback, from three workers' complete histories
    v = json.loads((run / "verdict.json").read_text())
    assert v["verdict"] == "pass", v["reason"]
    assert len(v["history"]["workers"]) == 3 and all(w["complete"] and w["ops"] > 0 for w in v["history"]["workers"])
    # the master's online checks followed the three workers' histories as they were shipped, placed on its clock
    assert v["online"]["off"] is None and v["online"]["ops"] > 0, v["online"]
    # the files crossed the bridge while the load ran, whole
    shipped = json.loads((run / "shipping.json").read_text())
    assert len(shipped["workers"]) == 3
    for w in shipped["workers"]:
        assert (w["done"], w["verified"], w["vanished"]) == (True, True, False), w
        assert w["first_chunk_wall"] < shipped["stopped_wall"], w
    # live figures reached the master: each worker's, and the progress line counted all three
    remote = [json.loads(p.read_text()) for p in sorted((run / "progress" / "remote").glob("*.json"))]
    assert len(remote) == 3 and all(sum(doc["counts"].values()) > 0 for doc in remote), remote
    live = [line for line in text.splitlines() if " ops/s " in line and "workers 3/3" in line]
    assert live and any(int(line.split(" ok ")[1].split()[0]) > 0 for line in live), text[-3000:]
    # the ops went to the Redis in the target's namespace: it counted every acknowledged one
    info = lab.run("target", ["redis-cli", "-h", target, "-p", "6379", "INFO", "commandstats"]).stdout
    incr = next(int(part.split("=")[1]) for line in info.splitlines() if line.startswith("cmdstat_incr:")
                for part in line.split(":")[1].split(",") if part.startswith("calls="))
    assert incr >= v["totals"]["ok"] > 0
    assert time.monotonic() - started < 60
