"""Scale out and stay honest: several load processes, a killed worker, and the nemesis on real servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.history import history_files
from harness.targets.redis import RedisAddress, RedisAdmin
from tests.integration.conftest import SHIPPED, TEST_SCENARIOS, descendants, run_cli

pytestmark = pytest.mark.integration


def test_two_processes_pass_and_their_merged_totals_equal_the_store(tmp_path, redis_url):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter", "--target-url", redis_url,
                      "--processes", "2", "--users", "16", "--duration", "3")
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v and v["reason"]
    workers = v["history"]["workers"]
    assert len(workers) == 2 and all(w["complete"] and w["ops"] > 0 for w in workers)
    assert sum(w["ops"] for w in workers) == v["totals"]["ops"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["processes"] == 2 and len(run["workers"]) == 2
    final = RedisAdmin(RedisAddress.parse(redis_url)).read(run["keys"])[run["keys"][0]]
    assert v["totals"]["ok"] <= final <= v["totals"]["ok"] + v["totals"]["indeterminate"]
    # no load process outlives its run (one that did could join the next run's master)
    assert not [pid for pid in _pids(tmp_path / "run") if Path(f"/proc/{pid}").exists()]
    code, again = run_cli(tmp_path / "second", "-f", str(SHIPPED), "-s", "redis-counter", "--target-url",
                          redis_url, "--processes", "2", "--users", "16", "--duration", "2")
    assert again is not None and len(again["history"]["workers"]) == 2


def _pids(run: Path) -> list[int]:
    """Load processes, from their progress files (named <host>-<pid>-<n>.json)."""
    folder = run / "progress"
    return [int(p.stem.split("-")[-2]) for p in folder.glob("*-*-*.json")] if folder.exists() else []


def test_a_worker_killed_mid_run_makes_the_verdict_unknown_never_fail(tmp_path, redis_url):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "-q", "--no-report", "-f", str(SHIPPED),
                             "-s", "redis-counter", "--target-url", redis_url, "--processes", "2", "--users", "16",
                             "--duration", "6", "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while len(_pids(run)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    victim = _pids(run)[0]
    os.kill(victim, signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    v = json.loads((run / "verdict.json").read_text())
    assert v["verdict"] == "unknown", (v["verdict"], v["reason"], out[-2000:])
    assert proc.returncode == 2
    assert f"-{victim}-" in v["reason"]  # the missing worker is named
    assert v["totals"]["lost"] == 0


@pytest.mark.parametrize(("scenario", "verdict"), [
    ("redis-counter-restart-nopersist", "fail"),
    ("redis-counter-restart-always", "pass"),
    ("redis-counter-pause", "pass"),
    ("redis-counter-net-stall", "pass"),
])
def test_persistence_and_faults_give_their_expected_verdicts(tmp_path, scenario, verdict):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", scenario)
    assert v is not None and v["verdict"] == verdict, v and v["reason"]
    assert code == {"pass": 0, "fail": 1}[verdict]
    windows = [json.loads(line) for line in (tmp_path / "run" / "faults.jsonl").read_text().splitlines()]
    assert {w["event"] for w in windows} == {"begin", "end"}  # every fault applied and healed
    # the verdict says so: each planned fault opened at its time and healed after its duration
    planned = [(f["at"], f["duration"]) for f in v["faults"]]
    assert planned and all(f["status"] == "healed" and f["why"] is None for f in v["faults"]), v["faults"]
    for (at, duration), f in zip(planned, v["faults"], strict=True):
        assert at <= f["opened_s"] < at + 0.5 and at + duration <= f["healed_s"] < at + duration + 3, f
    if scenario.endswith("nopersist"):
        assert v["totals"]["lost"] > 0  # the loss is quantified
    if scenario.endswith("pause"):
        assert v["totals"]["indeterminate"] > 0  # the ops caught in the pause are accounted for


def test_faults_are_shaded_and_summarised_in_the_report(tmp_path):
    from harness.report.build import build_report

    run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter-pause")
    page = build_report(tmp_path / "run").read_text()
    assert "<h2>Faults</h2>" in page and "pause" in page


def test_soak_memory_stays_flat(tmp_path, redis_url):
    """The short version of the soak: the load process's memory does not grow with the op count."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "-q", "--no-report", "-f",
                             str(TEST_SCENARIOS), "-s", "soak-redis-counter", "--target-url", redis_url,
                             "--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def rss_kb(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    deadline = time.monotonic() + 60
    while not _pids(run) and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = _pids(run)[0]
    time.sleep(4)
    early = rss_kb(pid)
    time.sleep(10)
    late = rss_kb(pid)
    assert proc.wait(timeout=120) == 0
    ops = json.loads((run / "verdict.json").read_text())["totals"]["ops"]
    assert ops > 20_000
    assert late - early < 20_000, f"RSS grew {late - early} kB over 10 s"


def _master_and_two_workers(tmp_path: Path, run: Path, redis_url: str, *, duration: int,
                            second_prefix: list[str] | None = None) -> tuple[subprocess.Popen, list[subprocess.Popen]]:
    """A master on 127.0.0.1 and two `counterbench worker`s "on other machines" (each staging its files in
    ``tmp_path/w<i>``); the second under ``second_prefix`` (another host name), when given."""
    from harness.stack.process import free_port

    port = free_port()
    master = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--no-report", "-f", str(SHIPPED),
                               "-s", "redis-counter", "--target-url", redis_url, "--duration", str(duration),
                               "--master", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
                               "--master-bind-port", str(port), "--out", str(run)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    workers = [subprocess.Popen([*((second_prefix or []) if i else []), sys.executable, "-m", "harness.cli", "worker",
                                 "--master-host", "127.0.0.1", "--master-port", str(port), "-f", str(SHIPPED),
                                 "-s", "redis-counter", "--dir", str(tmp_path / f"w{i}")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(2)]
    return master, workers


def _other_host() -> list[str]:
    """A command prefix that runs a process under another host name (a UTS namespace), if this machine
    lets us make one: the worker then really names another host in its history."""
    probe = ["unshare", "--uts", "sh", "-c", "hostname counterbench-other && hostname"]
    try:
        ok = subprocess.run(probe, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return []
    if ok != "counterbench-other":
        return []
    return ["unshare", "--uts", "sh", "-c", 'hostname counterbench-other && exec "$0" "$@"']


def test_master_and_workers_ship_their_histories(tmp_path, redis_url):
    """Workers as if on other machines: each stages its files in its own folder and ships them; one
    runs under another host name where the machine allows it -- and its ops are still placed exactly:
    a host is its machine and boot (one monotonic clock), not its name. The master samples every
    worker's clock all the same."""
    from harness.checks.timed import clocks
    from harness.core.runfolder import RunFolder
    from harness.history import read_headers

    run = tmp_path / "run"
    other = _other_host()
    master, workers = _master_and_two_workers(tmp_path, run, redis_url, duration=5, second_prefix=other)
    out, _ = master.communicate(timeout=120)
    for w in workers:
        w.wait(timeout=30)  # workers leave once the master has their files
    assert master.returncode == 0, out[-2000:]
    v = json.loads((run / "verdict.json").read_text())
    assert v["verdict"] == "pass" and len(v["history"]["workers"]) == 2
    workers_json = json.loads((run / "run.json").read_text())["workers"]
    assert all(w["sent"]["done"] and w["sent"]["verified"] for w in workers_json)
    # the files came while the load ran: each worker's first chunk reached the master seconds before it
    # stopped the workers, and some of each history by then (the other files only grow: what came before
    # the stop beyond their final sizes is history); the end waited for about a second's data
    shipped = json.loads((run / "shipping.json").read_text())
    for w in shipped["workers"]:
        assert (w["done"], w["verified"], w["vanished"], w["problems"]) == (True, True, False, []), w
        assert w["first_chunk_wall"] < shipped["stopped_wall"] - 2, (w, shipped["stopped_wall"])
        others = sum(n for name, n in w["files"].items() if not name.startswith("history/"))
        assert others < w["bytes_at_stop"] <= w["bytes"], w
    assert shipped["end_wait_s"] < 5, shipped
    staged = sorted(p.name for i in range(2) for p in history_files(tmp_path / f"w{i}" / "history"))
    assert len(staged) == 2 and sorted(p.name for p in history_files(run / "history")) == staged
    # the master showed the workers' figures live, and which workers were connected
    text = out.decode()
    live = [line for line in text.splitlines() if " ops/s " in line and "workers 2/2" in line]
    assert live and any(int(line.split(" ok ")[1].split()[0]) > 0 for line in live), text[-3000:]
    assert text.count("connected") >= 2, text[-3000:]
    # the master sampled each worker's clock every second; on one host they share the monotonic clock
    folder = RunFolder(run)
    headers = read_headers(folder.history_dir)
    sampled = folder.clocks()
    assert sampled is not None and set(sampled["workers"]) == set(headers)
    assert all(len(s) >= 3 for s in sampled["workers"].values())
    placed = clocks(headers, sampled)
    assert placed is not None
    order = next(c for c in v["checks"] if c["name"] == "realtime-order")
    assert order["valid"] is True and order["evidence"]["compared"] > 1000
    if other:  # two host names, one machine and boot: one monotonic clock, so the ops are placed exactly
        assert {h["host"] for h in headers.values()} == {socket.gethostname(), "counterbench-other"}
        assert len({(h["machine_id"], h["boot_id"]) for h in headers.values()}) == 1
    assert all(c.uncertainty_ns == 0 and c.sampled is None for c in placed.values()), placed


def test_a_remote_worker_killed_mid_run_leaves_on_the_master_what_it_shipped(tmp_path, redis_url):
    """One of two workers on "other machines" is SIGKILLed mid-run: the master keeps each of its files up to
    its last send -- a byte prefix of the worker's own, read as an incomplete history, not an error -- says
    in shipping.json how much came, does not wait for it at the end, and the verdict is unknown, naming it."""

    run = tmp_path / "run"
    master, workers = _master_and_two_workers(tmp_path, run, redis_url, duration=8)
    try:
        deadline = time.monotonic() + 60
        staged: list[Path] = []
        while time.monotonic() < deadline:  # the master holds some of its history while the load runs
            staged = history_files(tmp_path / "w1" / "history")
            if staged and (run / "history" / staged[0].name).exists() \
                    and (run / "history" / staged[0].name).stat().st_size > 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("no chunk of the worker's history reached the master while the load ran")
        time.sleep(3)  # a few sends more: the latency and CPU logs too (their first lines come after 1 s)
        for pid in descendants(workers[1].pid):  # its Locust process: no stop handler, no last send
            os.kill(pid, signal.SIGKILL)
        out, _ = master.communicate(timeout=120)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
            w.wait(timeout=30)
    assert master.returncode == 2, out.decode()[-2000:]
    killed = staged[0].stem
    v = json.loads((run / "verdict.json").read_text())
    assert v["verdict"] == "unknown" and any(killed in m for m in v["history"]["missing"]), v["history"]
    shipped = json.loads((run / "shipping.json").read_text())
    by = {w["worker"]: w for w in shipped["workers"]}
    assert (by[killed]["vanished"], by[killed]["done"]) == (True, False)
    assert by[killed]["bytes"] == sum(by[killed]["files"].values()) > 0
    assert {name.split("/")[0] for name in by[killed]["files"]} == {"history", "metrics"}, by[killed]
    for name, n in by[killed]["files"].items():  # each a byte prefix of the worker's file; text in whole lines
        copy, own = (run / name).read_bytes(), (tmp_path / "w1" / name).read_bytes()
        assert len(copy) == n > 0 and own.startswith(copy), name
        assert name.startswith("history/") or copy.endswith(b"\n"), name
    (other,) = set(by) - {killed}
    assert (by[other]["done"], by[other]["verified"]) == (True, True)
    assert shipped["end_wait_s"] < 10, shipped  # Locust found it missing by its heartbeat long before
    assert f"no final files from {killed} (it shipped {by[killed]['bytes']} bytes)" in (run / "locust.log").read_text()


def test_a_target_that_stays_down_gives_unknown_with_the_history_kept(tmp_path):
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text(
        "schema_version: 1\nscenarios:\n  down:\n    target: {kind: redis, timeout: 1}\n"
        "    workload: {kind: counter}\n    load: {users: 8, spawn_rate: 8, duration: 4, drain: 2}\n"
        "    faults: [{at: 2, action: kill}]\n")
    code, v = run_cli(tmp_path, "-f", str(scenarios), "-s", "down")
    assert v is not None and (code, v["verdict"]) == (2, "unknown")
    assert "final state was never read" in v["reason"] and v["totals"]["ok"] > 0
    assert "final_read_error" in json.loads((tmp_path / "run" / "run.json").read_text())


def test_a_fault_whose_open_raises_makes_a_pass_unknown_naming_the_error(tmp_path):
    """A pause planned while a kill has the server down cannot be applied: the run proves nothing about it."""
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text(
        "schema_version: 1\nscenarios:\n  broken:\n    target: {kind: redis, persistence: always, timeout: 1}\n"
        "    workload: {kind: counter}\n    load: {users: 8, spawn_rate: 8, duration: 3, drain: 2}\n"
        "    faults: [{at: 1, action: kill, duration: 1}, {at: 1.5, action: pause, duration: 0.3}]\n")
    code, v = run_cli(tmp_path, "-f", str(scenarios), "-s", "broken")
    assert v is not None and (code, v["verdict"]) == (2, "unknown"), v and v["reason"]
    assert v["reason"].startswith("pause planned at 1.5 s did not happen: it raised StackError: ")
    assert "is not running" in v["reason"] and v["totals"]["ok"] > 0
    kill, pause = v["faults"]
    assert (kill["status"], pause["status"], pause["opened_s"]) == ("healed", "open-error", None)
    assert 1 <= kill["opened_s"] < 1.5 and kill["healed_s"] >= 2
