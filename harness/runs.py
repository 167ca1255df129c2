"""`counterbench run`: the scenarios a command line names, each through the pipeline, in interleaved rounds.

One scenario is one run; several (``-s`` repeated, ``--suite``) run in order and end with a
comparison; ``--repeat N`` runs them N times over, round by round (a b a b ..., not a a b b), so
that the machine's drift hits every scenario alike, and compares the repeats as groups.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import pipeline
from harness.config import Scenario, get_scenario, load_suite, with_overrides
from harness.core.errors import ConfigError, CounterbenchError
from harness.core.runfolder import new_run_id
from harness.core.secrets import register_run, scrub
from harness.core.shipped import is_shipped, scenario_file
from harness.core.stopping import StopSignals
from harness.cost import Prices, load_prices
from harness.load.runner import Master
from harness.pipeline import RunRequest
from harness.report.summary import print_summary, print_table, quiet_line
from harness.targets.address import check_listen

if TYPE_CHECKING:
    from harness.metrics.exporter import MetricsServer

EXIT = {"pass": 0, "fail": 1, "unknown": 2}


def path_or_none(value: str | None) -> Path | None:
    return Path(value) if value else None


def say_shipped(args: argparse.Namespace) -> None:
    path = scenario_file(args.file)
    if is_shipped(path) and not getattr(args, "quiet", False):
        print(f"(no ./scenarios.yaml: the shipped scenarios, {path}; `counterbench init` writes one to edit)",
              file=sys.stderr)


def resolve(args: argparse.Namespace, name: str) -> Scenario:
    """The scenario as this command line asks for it: overrides and a deployment applied."""
    path = scenario_file(args.file)
    scenario = with_overrides(get_scenario(path, name), users=args.users, spawn_rate=args.spawn_rate,
                              duration=args.duration, target_url=args.target_url,
                              stop_on_violation=True if getattr(args, "stop_on_violation", False) else None, path=path)
    if args.deployment:
        from harness.aws import apply_deployment, read_deployment

        scenario = apply_deployment(scenario, read_deployment(Path(args.deployment)))
    register_run(scenario.model_dump(mode="json"), scenario.target.url)  # from here on, scrubbed from every line
    return scenario


def run_one(args: argparse.Namespace, name: str, out: Path | None, stop: StopSignals,
            prices: Prices | None = None, metrics: MetricsServer | None = None) -> dict[str, Any]:
    master = Master(expect_workers=args.expect_workers, bind_host=args.master_bind_host,
                    bind_port=args.master_bind_port) if args.master else None
    return pipeline.run(RunRequest(scenario=resolve(args, name), out=out, processes=args.processes, master=master,
                                   quiet=args.quiet, report=not args.no_report, prices=prices, metrics=metrics), stop)


@contextlib.contextmanager
def metrics_server(args: argparse.Namespace) -> Iterator[MetricsServer | None]:
    """``--metrics-port``: /metrics for as long as the command runs (each run shown while its load runs)."""
    port = getattr(args, "metrics_port", None)
    if port is None:
        yield None
        return
    if not 0 <= port <= 65535:
        raise ConfigError("--metrics-port: from 0 to 65535")
    from harness.metrics.exporter import MetricsServer

    try:
        server = MetricsServer(host=args.metrics_bind_host, port=port)
    except OSError as e:
        raise ConfigError(f"--metrics-port {port}: cannot listen on {args.metrics_bind_host}: {e}") from None
    if not args.quiet:
        print(f"metrics: http://{args.metrics_bind_host}:{server.port}/metrics", flush=True)
    try:
        yield server
    finally:
        server.close()


def run_scenarios(args: argparse.Namespace, stop: StopSignals) -> int:
    """`counterbench run`: one scenario, a suite, or repeated interleaved rounds of them, then a comparison."""
    if bool(args.scenario) == bool(args.suite):
        raise ConfigError("give -s NAME (one or more) or --suite NAME")
    if not 1 <= args.processes <= 256:
        raise ConfigError("--processes: from 1 to 256")
    if args.master and (args.expect_workers < 1 or args.processes > 1):
        raise ConfigError("--master needs --expect-workers K (at least 1) and no --processes")
    if args.master:
        check_listen(args.master_bind_host, allow_remote=args.allow_remote_workers, flag="--allow-remote-workers",
                     what="the master's port (workers send it history files)")
    if not 1 <= args.repeat <= 1000:
        raise ConfigError("--repeat: from 1 to 1000")
    names: list[str] = args.scenario or load_suite(scenario_file(args.file), args.suite)
    prices = load_prices(path_or_none(args.prices))  # a bad price table says so before any load, not after
    for name in dict.fromkeys(names):  # so does an override that breaks a scenario (a --duration before its faults)
        resolve(args, name)
    say_shipped(args)
    with metrics_server(args) as metrics:
        return _run_plan(args, names, stop, prices, metrics)


def _run_plan(args: argparse.Namespace, names: list[str], stop: StopSignals, prices: Prices | None,
              metrics: MetricsServer | None) -> int:
    # Rounds interleave the scenarios (a b a b ..., not a a b b), so the machine's drift hits all alike
    plan = [(name, k) for k in range(args.repeat) for name in names]
    results: list[dict[str, Any]] = []
    errors = 0
    for name, k in plan:
        if stop.requested and results:
            print(f"{name}: not run ({stop.requested})", file=sys.stderr)
            errors += 1
            results.append({"scenario": name, "verdict": "error", "reason": f"not run ({stop.requested})"})
            continue
        if args.repeat > 1 and not args.quiet:
            print(f"\nround {k + 1} of {args.repeat}: {name}", flush=True)
        try:
            verdict = run_one(args, name, _run_folder(args, names, name, k), stop, prices, metrics)
        except CounterbenchError as e:
            if len(plan) == 1:
                raise
            print(f"{name}: error: {scrub(str(e))}", file=sys.stderr)
            errors += 1
            results.append({"scenario": name, "verdict": "error", "reason": str(e)})
            continue
        if not args.quiet:
            print_summary(verdict)
        elif len(plan) == 1:  # quiet, but never silent: the verdict and where the run is
            print(quiet_line(verdict))
        results.append(verdict)
    if len(plan) == 1:
        v = results[0]
        return 2 if v.get("error") else EXIT[v["verdict"]]
    print_table(results)
    if not args.no_report:
        from harness.report.compare import compare, headlines

        done = [Path(r["run_dir"]) for r in results if "run_dir" in r]
        if done:
            dest = Path(args.out) / "comparison" if args.out else Path("reports") / f"compare-{new_run_id('suite')}"
            page = compare(done, dest, band=args.noise_band / 100, prices=prices)
            if args.repeat > 1:
                print("", *headlines(dest), sep="\n")
            print(f"\ncomparison report: {page}")
    if errors:
        return 2
    return 0 if all(r["verdict"] == r.get("expected", "pass") for r in results) else 1


def _run_folder(args: argparse.Namespace, names: list[str], name: str, k: int) -> Path | None:
    """--out is the run folder of a single run; of several, it holds one folder per run."""
    if args.out is None:
        return None
    if len(names) == 1 and args.repeat == 1:
        return Path(args.out)
    return Path(args.out) / (name if args.repeat == 1 else f"{name}-{k + 1}")
