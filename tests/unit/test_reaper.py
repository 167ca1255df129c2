"""The reaper kills what counterbench started once counterbench is gone, and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core import stopping
from harness.stack.process import LocalServer
from harness.stack.reaper import TOKEN_ENV, Proc, Registry, carries, victims
from tests.integration.conftest import alive

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_follows_watch_and_forget_and_ignores_anything_else():
    r = Registry()
    for line in ["+100 5000\n", "+200 ?\n", "+300 7\n", "-300\n", "-999\n", "+x y\n", "+1\n", "junk\n", ""]:
        r.apply(line)
    assert (r.groups, r.clean) == ({100: 5000, 200: None}, False)
    r.apply("bye\n")
    assert r.clean


def test_a_group_seen_empty_is_dropped_for_good():
    r = Registry(groups={100: 1, 200: 2})
    r.prune(lambda pgid: pgid == 200)
    assert r.groups == {200: 2}


def test_the_token_must_be_a_whole_entry_of_the_environment():
    env = f"PATH=/bin\0{TOKEN_ENV}=abc\0".encode()
    assert carries(env, "abc")
    assert not carries(env, "ab") and not carries(env, "abcd")
    assert not carries(f"X{TOKEN_ENV}=abc\0".encode(), "abc")


def _procs(*rows: tuple[int, int, int, int, bool]) -> dict[int, Proc]:
    return {r[0]: Proc(*r) for r in rows}


def test_victims_are_our_groups_what_carries_the_token_and_everything_below_them():
    procs = _procs(
        # pid, ppid, pgrp, start, marked
        (100, 1, 100, 50, False),    # a group we spawned: its leader (runuser) ...
        (101, 100, 100, 51, False),  # ... the server in it ...
        (102, 101, 102, 52, False),  # ... and a backend of it that leads its own session
        (200, 1, 200, 99, False),    # a group whose id we were given once: now another program's
        (201, 200, 200, 99, False),
        (300, 1, 300, 60, True),     # left its group (setsid) but carries the token
        (301, 300, 301, 61, False),  # below it
        (400, 1, 400, 10, False),    # a stranger
        (501, 1, 500, 71, False),    # a group of ours whose leader (500) exited: the rest is ours
    )
    registry = Registry(groups={100: 50, 200: 40, 500: 69})
    groups, pids = victims(registry, procs, spared={0, 1})
    assert groups == {100, 500}
    assert pids == {100, 101, 102, 300, 301, 501}


def test_a_group_whose_leader_start_is_unknown_is_left_to_the_token():
    procs = _procs((100, 1, 100, 50, False), (101, 100, 100, 51, False))
    assert victims(Registry(groups={100: None}), procs, spared=set()) == (set(), set())


def test_the_reaper_itself_is_spared():
    procs = _procs((100, 1, 100, 50, True), (7, 100, 100, 60, False))
    assert victims(Registry(groups={100: 50}), procs, spared={7}) == ({100}, {100})


# A stand-in for counterbench: children of three kinds, each writing its pid to a file, then waiting.
SCRIPT = """
import os, subprocess, sys, time
from harness.stack.lifeline import LIFELINE
from harness.core.stopping import forget, kill_group, spawn
d, how = sys.argv[1], sys.argv[2]
sh = lambda name: ["/bin/sh", "-c", f"echo $$ > {d}/{name}.tmp && mv {d}/{name}.tmp {d}/{name}; exec /bin/sleep 60"]
quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
bare = spawn(["env", "-i", *sh("bare")], **quiet)  # no token: only its group is known
spawn(["setsid", *sh("escaped")], **quiet)  # a session of its own, its parent gone: only the token is left
subprocess.Popen(sh("stranger"), start_new_session=True, **quiet)  # never told of
print(LIFELINE.pid, flush=True)
while not all(os.path.exists(f"{d}/{n}") for n in ("bare", "escaped", "stranger")):
    time.sleep(0.02)
if how == "normal":
    kill_group(bare, 9); forget(bare); bare.wait()
else:
    time.sleep(60)
"""


def _counterbench(tmp_path: Path, how: str) -> tuple[subprocess.Popen[str], int, dict[str, int]]:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path), how], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    reaper = int(proc.stdout.readline())
    deadline = time.monotonic() + 10
    names = ("bare", "escaped", "stranger")
    while not all((tmp_path / n).exists() for n in names) and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc, reaper, {n: int((tmp_path / n).read_text()) for n in names}


def _gone(pids: set[int], within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pids)


def test_a_sigkilled_counterbench_leaves_nothing_it_started_and_spares_the_rest(tmp_path):
    proc, reaper, pids = _counterbench(tmp_path, "sigkill")
    try:
        assert alive(set(pids.values())) == set(pids.values())
        proc.kill()
        _, err = proc.communicate(timeout=10)  # ends when the reaper, holding stderr too, is exiting
        assert _gone({pids["bare"], pids["escaped"], reaper}), err
        assert alive({pids["stranger"]}) == {pids["stranger"]}
        assert "counterbench-reaper: counterbench" in err and "SIGKILLed 2 processes" in err, err
    finally:
        os.kill(pids["stranger"], signal.SIGKILL)


def test_a_normal_exit_leaves_no_reaper_behind(tmp_path):
    proc, reaper, pids = _counterbench(tmp_path, "normal")
    try:
        proc.wait(timeout=10)
        assert alive({reaper}) == set()  # gone before counterbench's exit, not after
        assert proc.returncode == 0, proc.communicate()[1]
        assert alive({pids["escaped"]}) == set()  # it outlived its group's stop: not counterbench
        assert alive({pids["stranger"]}) == {pids["stranger"]}
    finally:
        os.kill(pids["stranger"], signal.SIGKILL)


def test_a_normal_exit_waits_until_the_reaper_has_swept_and_gone():
    from harness.stack.lifeline import Lifeline

    class Reaper:  # stands in for the reaper's process: what close() asks of it
        def __init__(self) -> None:
            self.waited: float | None = None

        def wait(self, timeout: float | None = None) -> int:
            self.waited = timeout
            return 0

    read, write = os.pipe()
    life, reaper = Lifeline(), Reaper()
    life._fd, life._proc = write, reaper  # type: ignore[assignment]
    life.close()
    assert os.read(read, 100) == b"bye\n" and os.read(read, 100) == b""  # told, then the pipe's end
    assert reaper.waited is not None  # and waited for: none is left running after counterbench
    os.close(read)


class _Told:
    """Stands in for the lifeline: what it was told."""

    def __init__(self) -> None:
        self.said: list[tuple[str, int]] = []

    def mark(self, env: dict[str, str] | None) -> dict[str, str]:
        return dict(os.environ if env is None else env)

    def watch(self, pid: int) -> None:
        self.said.append(("watch", pid))

    def forget(self, pid: int) -> None:
        self.said.append(("forget", pid))


class _HttpServer(LocalServer):
    name = "http-server"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"]


def test_a_server_is_told_of_when_started_and_forgotten_when_killed_or_stopped(monkeypatch: pytest.MonkeyPatch):
    told = _Told()
    monkeypatch.setattr(stopping, "LIFELINE", told)
    server = _HttpServer()
    server.start()
    first = server.pid
    server.kill()  # a fault
    server.restart()
    second = server.pid
    server.stop()
    assert told.said == [("watch", first), ("forget", first), ("watch", second), ("forget", second)]
