"""The local stack starts what it says, or says why not: no port handed out twice, no server taken for
ready because another answers on its port, a replica set that cannot start says what it saw, and a
server that dies during a run is named with its log's end."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest

from harness.core.errors import StackError
from harness.core.stopping import CHILDREN, kill_group
from harness.report.build import build_report
from harness.stack.process import free_port
from harness.stack.redis import RedisServer
from harness.stack.redis_sentinel import RedisReplicaSet
from tests.integration.conftest import SHIPPED, run_cli

pytestmark = pytest.mark.integration


def test_no_port_is_handed_out_twice():
    # the kernel alone repeats a free port within a few hundred picks (birthday odds over ~14,000)
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)


def test_a_server_whose_port_another_holds_fails_to_start_and_says_why():
    with RedisServer() as first:
        second = RedisServer()
        second.port = first.port  # as when another program took the port between picking and binding
        with pytest.raises(StackError, match=r"exited with code 1(.|\n)*Address already in use"):
            second.start()
        second.stop()


def test_a_replica_set_that_cannot_sync_says_what_it_saw_last():
    rs = RedisReplicaSet(replicas=1)
    rs.stall_replication(True)  # the replica's link to the primary delivers nothing
    try:
        with pytest.raises(StackError, match=r"waiting for every replica in sync; last seen: the replica on port "
                                             rf"{rs.replicas[0].port}: link down"):
            rs.start(timeout=1.5)
    finally:
        rs.stop()


def test_a_server_that_exits_unbidden_is_named_with_its_log_and_one_killed_on_purpose_is_not():
    with RedisServer() as crashed:
        assert crashed.died() == []
        kill_group(crashed._proc, signal.SIGKILL)  # type: ignore[arg-type]  # from outside, as a crash
        crashed._proc.wait()  # type: ignore[union-attr]
        [d] = crashed.died()
        assert (d["server"], d["port"], d["exit_code"]) == ("redis", crashed.port, -9)
        assert "Ready to accept connections" in d["log_tail"]
    with RedisServer() as faulted:
        faulted.kill()  # what a `kill` fault does
        assert faulted.died() == []


def _kill_service_once_load_runs(run_json: Path) -> threading.Thread:
    """SIGKILL the reference service's group once the load has started: a crash no fault scheduled."""

    def kill() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            services = [p for p in list(CHILDREN._procs) if p.poll() is None and "harness.service" in p.args]
            since = time.time() - json.loads(run_json.read_text())["started_at"] if run_json.exists() else 0.0
            if services and since > 1.0:  # run.json is written just before the load starts
                kill_group(services[0], signal.SIGKILL)
                return
            time.sleep(0.05)

    t = threading.Thread(target=kill, daemon=True)
    t.start()
    return t


def test_a_server_that_dies_during_the_run_is_named_on_the_terminal_in_run_json_and_in_the_report(tmp_path, capsys):
    killer = _kill_service_once_load_runs(tmp_path / "run" / "run.json")
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "http-counter", "--duration", "3")
    killer.join(timeout=5)
    assert v is not None and v["verdict"] == "unknown" and code == 2, v and v["reason"]
    [died] = json.loads((tmp_path / "run" / "run.json").read_text())["servers_died"]
    assert (died["server"], died["exit_code"]) == ("reference-service", -9)
    assert died["finding"] == (f"reference-service on 127.0.0.1:{died['port']} exited with code -9 during the run; "
                               "no fault killed it")
    assert f"http-counter: warning: {died['finding']}" in capsys.readouterr().err
    html = build_report(tmp_path / "run").read_text()
    assert f'<div class="warn"><b>{died["finding"]}</b>' in html
