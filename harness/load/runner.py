"""The load stage, from the CLI's side: run Locust headless in a child process on a prepared run folder.

A child process keeps gevent's monkey-patching out of the CLI, and is exactly what a user gets with
plain `locust -f locustfiles/<workload>.py`. This module does not import Locust.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.config.scenario import Scenario
from harness.core.errors import CounterbenchError
from harness.core.runfolder import RunFolder
from harness.core.shipped import LOCUSTFILES
from harness.core.stopping import StopSignals, forget, kill_group, spawn
from harness.load.progress import Finding, Online, watch
from harness.stack.process import free_port

# the run's own scenario and target URL, credentials included, for the load processes: by environment,
# never on their command line (``ps`` shows argv to every user of the machine); run.json has them redacted
TARGET_ENV = "COUNTERBENCH_TARGET"


def target_env(scenario: Scenario, target_url: str) -> dict[str, str]:
    return {TARGET_ENV: json.dumps({"scenario": scenario.model_dump(mode="json"), "target_url": target_url})}


def locustfile_for(scenario: Scenario) -> Path:
    path = LOCUSTFILES / f"{scenario.workload.kind.replace('-', '_')}.py"
    if not path.exists():
        raise CounterbenchError(f"{path} is missing: counterbench's package data is incomplete (reinstall it)")
    return path


def locust_command(scenario: Scenario, folder: RunFolder, *, processes: int = 1,
                   master: Master | None = None) -> list[str]:
    """The load child's command line: no target URL or credential on it (see ``target_env``)."""
    load = scenario.load
    # several processes: Locust forks a master and that many workers, each with its own history
    fork: list[str] = []
    if processes > 1:
        # a port of its own: a worker outliving an earlier run can never join this one
        port = str(free_port())
        fork = ["--processes", str(processes), "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
                "--master-host", "127.0.0.1", "--master-port", port]
    if master is not None:  # workers on other machines connect: `counterbench worker --master-host ...`
        fork = ["--master", "--expect-workers", str(master.expect_workers), "--master-bind-host", master.bind_host,
                "--master-bind-port", str(master.bind_port)]
    return [
        sys.executable, "-m", "locust", *fork, "-f", str(locustfile_for(scenario)), "--headless",
        "-u", str(load.users_at(0)), "-r", str(load.spawn_rate), "-t", f"{load.duration}s",
        # the drain: users finish the op in flight instead of being killed mid-request
        "--stop-timeout", str(load.drain),
        "--only-summary", "--exit-code-on-error", "0",
        "--json-file", str(folder.locust_json_prefix),
        "--logfile", str(folder.locust_log),
        "--run-dir", str(folder.path), "--prepared",
    ]


@dataclass(frozen=True, kw_only=True)
class Master:
    expect_workers: int
    bind_host: str = "*"
    bind_port: int = 5557


# a worker on another machine (`counterbench worker`) stages its files in this folder and ships them
SHIP_ENV = "COUNTERBENCH_WORKER_DIR"


def worker_command(scenario: Scenario, *, master_host: str, master_port: int) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(locustfile_for(scenario)), "--worker",
            "--master-host", master_host, "--master-port", str(master_port), "--loglevel", "WARNING"]


def run_worker(scenario: Scenario, *, master_host: str, master_port: int, staging: Path, stop: StopSignals) -> int:
    """A Locust worker for a master on another machine, until the master lets it go. A stop request
    reaches it as SIGTERM (it stops its users, drains and ships its files)."""
    staging.mkdir(parents=True, exist_ok=True)
    proc = spawn(worker_command(scenario, master_host=master_host, master_port=master_port),
                 env={**os.environ, SHIP_ENV: str(staging)})

    def forward() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    with stop.on_stop(forward):
        code = proc.wait()
    forget(proc)
    return code


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    code: int  # Locust's exit code
    stopped_by: Finding | None = None  # the violation that ended the load (``stop_on_violation``)


def run_load(scenario: Scenario, folder: RunFolder, target_url: str, *, stop: StopSignals, quiet: bool = True,
             processes: int = 1, master: Master | None = None, online: Online | None = None,
             on_early_end: Callable[[str], None] | None = None) -> LoadResult:
    """Run the load to completion, showing progress unless quiet, with the ``online`` checks polled on
    what it writes.

    A stop request sends the load process SIGTERM, which Locust handles as the end of the run; so does the
    first violation the online checks prove, when the scenario says ``stop_on_violation`` (and
    ``on_early_end`` hears why: no fault may open after it)."""
    cmd = locust_command(scenario, folder, processes=processes, master=master)
    first: list[Finding] = []
    with open(folder.locust_out, "wb") as out:
        proc = spawn(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                     env={**os.environ, **target_env(scenario, target_url)})

        def end_early() -> None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # Locust: users stop and drain, as at the end of -t

        def violated(v: Finding) -> None:
            if scenario.stop_on_violation and not first and stop.requested is None:
                first.append(v)
                if on_early_end is not None:
                    on_early_end("the first violation (stop_on_violation)")
                if not quiet:
                    sys.stderr.write(f"counterbench: {scenario.name}: stopping the load at the first violation "
                                     "(stop_on_violation): draining, then the final read and the verdict\n")
                end_early()

        try:
            with stop.on_stop(end_early):
                code = watch(proc, folder, scenario, quiet=quiet, online=online, on_violation=violated)
        except BaseException:
            kill_group(proc, signal.SIGKILL)  # never leave load running behind an interrupted command
            proc.wait()
            reap(folder, grace=0)
            forget(proc)
            raise
    reap(folder, grace=scenario.load.drain + 10)
    forget(proc)  # only now: Locust's forked workers, in its group, may outlive its master until reaped
    return LoadResult(code=code, stopped_by=first[0] if first else None)


def reap(folder: RunFolder, *, grace: float) -> list[int]:
    """Wait for every load process of this run to exit (they finish their history after the master
    is gone); kill any still running after ``grace`` seconds. Returns the pids that had to be killed."""
    pids = folder.local_worker_pids()
    pids.discard(os.getpid())
    deadline = time.monotonic() + grace
    alive = {pid for pid in pids if _alive(pid)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {pid for pid in alive if _alive(pid)}
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return sorted(alive)


def _alive(pid: int) -> bool:
    """A live load process (a reused pid of another program does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"locust" in cmdline and stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has exited
