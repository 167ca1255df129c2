"""The one orchestration of a run: prepare -> load -> final read -> judge -> report.

``counterbench run`` calls ``run``; a plain ``locust -f`` run calls ``prepare`` when its test
starts and ``conclude`` when it stops (``harness.locustfile``). Both end the same way: the final
state read (or why it could not be), the verdict, who sent what.

    prepare    refuse unsafe targets, write run.json, set every key to its initial value
    load       Locust in a child process (``harness.load.runner``), faults beside it, the online checks on
               the history as it is written (``harness.checks.online``; with stop_on_violation, the first
               violation they prove ends the load)
    conclude   uncertain ops looked up by idempotency key (targets that can), the final read (a failed
               one is recorded: the verdict can then only be unknown), the judge, the workers' files
               in run.json
    report     summary.csv, plots, report.html
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.checks.online import OnlineChecks
from harness.config.scenario import Scenario
from harness.core.errors import ConfigError, RunStopped, TargetError
from harness.core.runfolder import RunFolder, environment, new_run_id
from harness.core.secrets import redact_url, register_run, scrub
from harness.core.stopping import StopSignals
from harness.judge import judge
from harness.load.runner import Master, run_load
from harness.preflight import preflight
from harness.resolve import resolve
from harness.targets import LocalTarget
from harness.targets.address import check_target_safe
from harness.targets.registry import BACKENDS

if TYPE_CHECKING:
    from harness.cost import Prices
    from harness.metrics.exporter import MetricsServer


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """One scenario to run, as the command line resolved it."""

    scenario: Scenario  # overrides and deployment applied
    out: Path | None = None  # the run folder (default reports/<run-id>)
    processes: int = 1  # load processes on this machine
    master: Master | None = None  # or: the master of workers on other machines
    quiet: bool = True
    report: bool = True
    prices: Prices | None = None  # for the report's $ per million (default: the shipped table)
    metrics: MetricsServer | None = None  # /metrics shows this run while its load runs


def say(quiet: bool, line: str) -> None:
    if not quiet:
        print(scrub(line), flush=True)


def prepare(folder: RunFolder, *, scenario: Scenario, run_id: str, target_url: str,
            extra: dict[str, Any] | None = None, started: bool = False) -> list[str]:
    """Refuse unsafe targets, record the run, and set every key to its initial value; returns the keys.
    ``started``: counterbench started the target (an HTTP service's variant is then the reference
    service's; otherwise it is the service's own, and run.json says none)."""
    check_target_safe(scenario, target_url)
    backend = BACKENDS[scenario.target.kind]
    keys = backend.keys(scenario, run_id)
    described = scenario.model_dump(mode="json")
    register_run(described, target_url)  # so that every later line or file can be scrubbed of them
    folder.write(folder.run_json, {  # written through harness.core.secrets.clean: credentials never reach it
        "run_id": run_id,
        "scenario": described,
        "target": {"kind": scenario.target.kind, "url": target_url,
                   "variant": scenario.target.variant if type(scenario.target).client_side_variant or started
                   else None},
        "keys": keys,
        "environment": environment(),
        "started_at": time.time(),
        **(extra or {}),
    })
    initial = dict.fromkeys(keys, scenario.workload.initial)
    admin = backend.admin(scenario, target_url)
    try:
        initial = dict(admin.setup(initial) or initial)  # a target without a setter says what it holds
        # one set, op and read, read as the load reads them: answers that cannot be read stop the run here
        try:
            checked = preflight(scenario, target_url, key=keys[0], initial=initial[keys[0]], admin=admin,
                                shown_url=redact_url(target_url))
            initial[keys[0]] = checked["initial"]  # without a setter, its op moved the key for good
        except TargetError as e:
            folder.update(folder.run_json, preflight={"failed": str(e)})
            raise
        folder.update(folder.run_json, preflight=checked)
        for sent in (checked["op"], checked["read"]):
            if sent is not None and sent.get("inconclusive"):  # the target's state, not its contract: the run says
                said = (f"{scenario.name}: warning: preflight: {sent['sent']} was answered {sent['inconclusive']} "
                        f"({sent['tries']} tries): its answers could not be checked before the load")
                print(scrub(said), file=sys.stderr)
    finally:
        admin.close()
    folder.write(folder.state_json, {"initial": initial, "final": None})
    return keys


def final_read(folder: RunFolder, *, scenario: Scenario, target_url: str) -> None:
    """Read every key's final value (strongly consistent) once the load is over."""
    run = folder.read(folder.run_json)
    admin = BACKENDS[scenario.target.kind].admin(scenario, target_url)
    try:
        final = admin.read(run["keys"])
    finally:
        admin.close()
    folder.update(folder.state_json, final=final, final_read_at=time.time())
    folder.update(folder.run_json, ended_at=time.time())


def conclude(folder: RunFolder, *, scenario: Scenario, target_url: str, load_exit_code: int | None,
             quiet: bool = True) -> dict[str, Any]:
    """After the load: the final read (a failure is recorded, the history still judged), the verdict,
    and in run.json each worker's ops and what it shipped."""
    try:
        resolve(folder, scenario=scenario, target_url=target_url)  # uncertain ops, by idempotency key
    except TargetError as e:
        print(f"{scenario.name}: warning: uncertain ops could not be looked up: {scrub(str(e))}", file=sys.stderr)
    try:
        final_read(folder, scenario=scenario, target_url=target_url)
    except TargetError as e:
        # the history is still worth a verdict: without a final value it can only be unknown
        folder.update(folder.run_json, final_read_error=str(e))
        print(f"{scenario.name}: error: the final state could not be read: {scrub(str(e))}", file=sys.stderr)
    verdict = judge(folder)
    sent = folder.shipping()
    folder.update(folder.run_json, workers=[{**w, "sent": sent.get(w["worker"])}
                                            for w in verdict["history"]["workers"]])
    verdict["run_dir"] = str(folder.path)
    if load_exit_code not in (None, 0):
        verdict["error"] = f"the load process exited with code {load_exit_code}; see {folder.locust_log}"
    return verdict


def report(folder: RunFolder, prices: Prices | None = None) -> Path:
    from harness.report.build import build_report  # plots: only when a report is asked for

    return build_report(folder.path, prices=prices)


def _faults(scenario: Scenario, local: LocalTarget | None, url: str, folder: RunFolder,
            stack: ExitStack) -> tuple[str, Any]:
    """The URL the load uses (through the fault proxy for network faults) and the started nemesis."""
    if not scenario.faults:
        return url, None
    from harness.faults.nemesis import Nemesis
    from harness.stack.proxy import proxy_for

    proxy = None
    load_url = url
    if any(f.network for f in scenario.faults):
        proxy = stack.enter_context(proxy_for(url))
        load_url = proxy.url_for(url)
    nemesis = Nemesis(scenario.faults, folder=folder, servers=local.servers if local else {}, proxy=proxy,
                      load_duration=scenario.load.duration)
    nemesis.start()
    return load_url, nemesis


def _died(local: LocalTarget | None) -> list[dict[str, Any]]:
    """The local servers that exited during the run though no fault killed them, each with its log's end."""
    if local is None:
        return []
    return [d for server in local.servers.values() if server is not None for d in server.died()]


def run(req: RunRequest, stop: StopSignals) -> dict[str, Any]:
    """One scenario, start to verdict: its local target started (none with a URL) and stopped, the
    load run (ended early by a stop request), the run concluded and reported."""
    scenario = req.scenario
    run_id = new_run_id(scenario.name)
    folder = RunFolder(req.out if req.out is not None else Path("reports") / run_id)
    if folder.path.exists() and not folder.path.is_dir():
        raise ConfigError(f"--out {folder.path}: is a file, not a folder")
    if folder.run_json.exists():
        raise ConfigError(f"--out {folder.path}: already holds a run")
    with ExitStack() as stack:
        url = scenario.target.url
        local = None
        if url:
            check_target_safe(scenario, url)
        else:
            say(req.quiet, f"{scenario.name}: starting a local {scenario.target.kind} target ...")
            local = BACKENDS[scenario.target.kind].local(scenario, stack)
            scenario, url = local.scenario, local.url
        processes = req.master.expect_workers if req.master else req.processes
        prepare(folder, scenario=scenario, run_id=run_id, target_url=url, started=local is not None,
                extra={"mode": "cli", "processes": processes,
                       "distributed": "master" if req.master else ("local" if processes > 1 else None)})
        load = scenario.load
        say(req.quiet, f"{scenario.name}: {load.users} users for {load.duration} s (+ up to {load.drain} s drain) "
                       f"-> {folder.path}")
        if stop.requested:
            raise RunStopped(f"{stop.requested} before the load started: no load was sent")
        load_url, nemesis = _faults(scenario, local, url, folder, stack)
        started = time.monotonic()

        def no_more_faults() -> None:  # a stop signal ends the load: a fault planned later must not open
            if nemesis is not None:
                nemesis.load_over(stop.requested)

        online = OnlineChecks(folder)  # the checks a prefix decides, on the history as the load writes it
        if req.metrics is not None:
            from harness.metrics.exporter import Watched

            req.metrics.watch(Watched(folder=folder, scenario=scenario.name, violations=lambda: dict(online.counts)))
        try:
            with stop.on_stop(no_more_faults):
                load = run_load(scenario, folder, load_url, stop=stop, quiet=req.quiet, processes=req.processes,
                                master=req.master, online=online,
                                on_early_end=nemesis.load_over if nemesis is not None else None)
        finally:
            if req.metrics is not None:
                req.metrics.watch(None)
            online.close()
            folder.update(folder.run_json, online=online.status())
            if nemesis is not None:
                nemesis.finish()
        died = _died(local)
        for d in died:
            tail = f"; its log ends:\n{d['log_tail']}" if d["log_tail"] else ""
            print(f"{scenario.name}: warning: {scrub(d['finding'] + tail)}", file=sys.stderr)
        if local is not None:  # a replicated target still failing over: the final read waits for its primary
            for server in local.servers.values():
                if server is not None:
                    server.settle()
        stopped = None
        if stop.requested is not None:
            stopped = {"signal": stop.requested, "after_s": round(time.monotonic() - started, 1)}
        elif load.stopped_by is not None:  # the first violation the online checks proved
            found = load.stopped_by.doc()
            stopped = {"signal": None, "violation": found, "after_s": found["after_s"]}
        folder.update(folder.run_json, load_exit_code=load.code, servers_died=died,
                      fault_errors=nemesis.errors if nemesis is not None else [], stopped=stopped)
        verdict = conclude(folder, scenario=scenario, target_url=url, load_exit_code=load.code)
    if req.report:
        verdict["report"] = str(report(folder, req.prices))
    return verdict
