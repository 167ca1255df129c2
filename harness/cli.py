"""`counterbench`: run scenarios, check run folders, list scenarios, serve the reference service.

Exit codes: 0 pass, 1 fail, 2 unknown or error. With several ``-s`` (a suite),
0 when every verdict is the one its scenario expects, 1 when one is not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from harness.config import get_scenario, load_scenarios
from harness.core.errors import ConfigError, CounterbenchError
from harness.core.runfolder import RunFolder, new_run_id
from harness.core.secrets import register_environment, register_url, scrub
from harness.core.shipped import STARTER, locate, scenario_file
from harness.core.stopping import Interrupted, StopSignals
from harness.cost import load_prices
from harness.judge import judge
from harness.report.summary import print_summary
from harness.runs import EXIT, path_or_none, run_scenarios, say_shipped

TARGET_URL_ENV = "COUNTERBENCH_TARGET_URL"
NOISE_HELP = "percent: a difference between scenarios smaller than this is not called (default 2)"
PRICES_HELP = "price table for $ per million increments (default: the shipped harness/prices.yaml)"


def cmd_run(args: argparse.Namespace) -> int:
    with StopSignals(quiet=args.quiet) as stop:
        return run_scenarios(args, stop)


def cmd_worker(args: argparse.Namespace) -> int:
    """A load worker for a master on another machine: stages its files locally, ships them as they grow."""
    import tempfile

    from harness.load.runner import run_worker

    scenario = get_scenario(scenario_file(args.file), args.scenario)
    staging = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="counterbench-worker-"))
    print(f"worker for {scenario.name}: connecting to {args.master_host}:{args.master_port}; files in {staging}")
    with StopSignals() as stop:
        return run_worker(scenario, master_host=args.master_host, master_port=args.master_port, staging=staging,
                          stop=stop)


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.build import build_report

    print(build_report(Path(args.run_dir), prices=load_prices(path_or_none(args.prices))))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import compare, warnings
    from harness.report.data import load_run

    dirs = [Path(d) for d in args.run_dirs]
    for w in warnings([load_run(d) for d in dirs]):
        print(f"warning: {w}", file=sys.stderr)
    out = Path(args.out) if args.out else Path("reports") / f"compare-{new_run_id('runs')}"
    print(compare(dirs, out, band=args.noise_band / 100, prices=load_prices(path_or_none(args.prices))))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from harness.export import export

    paths = export(Path(args.run_dir), fmt=args.format, out=path_or_none(args.out))
    for problem in json.loads(paths[-1].read_text(encoding="utf-8"))["problems"]:
        print(f"warning: exported as far as it reads: {problem}", file=sys.stderr)
    for p in paths:
        print(p)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    dest = Path(args.file)
    if dest.exists() and not args.force:
        raise ConfigError(f"{dest} exists: keeping it (--force to overwrite)")
    dest.write_text(STARTER.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"wrote {dest}: one scenario per kind of target, commented; `counterbench list` shows them, "
          "`counterbench run -s redis-counter` runs one")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    folder = RunFolder(Path(args.run_dir))
    verdict = judge(folder, stream={"auto": None, "streamed": True, "in-memory": False}[args.read])
    verdict["run_dir"] = str(folder.path)
    print_summary(verdict)
    return EXIT[verdict["verdict"]]


def cmd_list(args: argparse.Namespace) -> int:
    say_shipped(args)
    for name, s in load_scenarios(scenario_file(args.file)).items():
        print(f"{name:32} {s.target.kind:6} {s.workload.kind:11} expect {s.expect:5} {s.description}")
    return 0


def _region(args: argparse.Namespace) -> str:
    import os

    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError("--region is required (or set AWS_REGION)")
    return str(region)


def cmd_aws_deploy(args: argparse.Namespace) -> int:
    from harness.aws import deploy, write_deployment

    out = Path(args.out)
    if out.exists():
        raise ConfigError(f"--out {out} exists: it may describe a live deployment; tear that down first")
    created = deploy(definition=locate(args.definition), region=_region(args), stage=args.stage, seats=args.seats)
    write_deployment(out, created)
    print(f"deployed {created['api']['name']} ({created['api']['id']}) in {created['region']}")
    print(f"invoke URL: {created['url']}")
    print(f"deployment file: {out}")
    print(f"load-test it:    counterbench run -s aws-apigateway-counter --deployment {out}")
    print(f"remove it:       counterbench aws teardown --deployment {out}")
    return 0


def cmd_aws_teardown(args: argparse.Namespace) -> int:
    from harness.aws import read_deployment, teardown

    path = Path(args.deployment)
    for what in teardown(read_deployment(path)):
        print(f"removed {what}")
    path.unlink()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from harness.service.__main__ import main as serve

    argv = ["--store", args.store, "--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
    if args.allow_remote:
        argv.append("--allow-remote")
    if args.store_url:
        argv += ["--store-url", args.store_url]
    if args.unsafe:
        argv.append("--unsafe")
    return serve(argv)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="counterbench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run scenarios: load, then check; writes a run folder")
    r.add_argument("-f", "--file", help="scenario file (default ./scenarios.yaml, else the shipped scenarios)")
    r.add_argument("-s", "--scenario", action="append", help="scenario name; repeat for a suite")
    r.add_argument("--suite", help="a suite of the scenario file: its scenarios in order, then a comparison")
    r.add_argument("--target-url", default=os.environ.get(TARGET_URL_ENV) or None,
                   help="redis://host:port/db or http://host:port (default: $COUNTERBENCH_TARGET_URL, else a "
                        "local target); with credentials, prefer the variable: a command line shows in ps")
    r.add_argument("--users", type=int, help="concurrent users")
    r.add_argument("--spawn-rate", type=float, help="users started per second")
    r.add_argument("--duration", type=int, help="seconds of load")
    r.add_argument("--out", help="run folder (default reports/<run-id>); with several runs, the folder that "
                   "holds one per run (NAME, or NAME-K with --repeat) and the comparison")
    r.add_argument("--repeat", type=int, default=1,
                   help="run each scenario N times, in interleaved rounds, then compare them as groups")
    r.add_argument("--prices", help=PRICES_HELP)
    r.add_argument("--noise-band", type=float, default=2.0, help=NOISE_HELP)
    r.add_argument("--deployment", help="a file written by `counterbench aws deploy` (apigateway scenarios)")
    r.add_argument("--processes", type=int, default=1,
                   help="load processes on this machine (Locust master + N workers); each keeps its own history")
    r.add_argument("--master", action="store_true", help="be the master of workers on other machines")
    r.add_argument("--expect-workers", type=int, default=0, help="with --master: wait for K workers")
    r.add_argument("--master-bind-host", default="127.0.0.1",
                   help="with --master: the address workers connect to (default loopback; another needs "
                        "--allow-remote-workers)")
    r.add_argument("--allow-remote-workers", action="store_true",
                   help="with --master: listen on a non-loopback address (the port authenticates nobody)")
    r.add_argument("--master-bind-port", type=int, default=5557)
    r.add_argument("--stop-on-violation", action="store_true",
                   help="end the load at the first violation the online checks prove: drain, final read, verdict "
                        "(scenario key stop_on_violation)")
    r.add_argument("--metrics-port", type=int,
                   help="serve Prometheus metrics of the run at http://HOST:PORT/metrics while its load runs")
    r.add_argument("--metrics-bind-host", default="127.0.0.1",
                   help="the address /metrics listens on (default 127.0.0.1; it serves figures, never credentials)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress; only the final table or nothing")
    r.add_argument("--no-report", action="store_true", help="skip plots, report.html and the comparison")
    r.set_defaults(fn=cmd_run)

    c = sub.add_parser("check", help="re-run the checks of a finished run folder, offline")
    c.add_argument("run_dir")
    c.add_argument("--read", choices=("auto", "streamed", "in-memory"), default="auto",
                   help="check the history as it streams (memory bounded by what was in flight), or held in memory "
                        "(witnesses chosen over the whole run); auto: streamed from 64 MiB of history")
    c.set_defaults(fn=cmd_check)

    wk = sub.add_parser("worker", help="a load worker for `counterbench run --master` on another machine")
    wk.add_argument("--master-host", required=True)
    wk.add_argument("--master-port", type=int, default=5557)
    wk.add_argument("-f", "--file", help="scenario file (default ./scenarios.yaml, else the shipped scenarios)")
    wk.add_argument("-s", "--scenario", required=True, help="the master's scenario (picks the locustfile)")
    wk.add_argument("--dir", help="staging folder for this worker's files (default: a temporary folder)")
    wk.set_defaults(fn=cmd_worker)

    rp = sub.add_parser("report", help="rebuild summary.csv, plots and report.html of a run folder, offline")
    rp.add_argument("run_dir")
    rp.add_argument("--prices", help=PRICES_HELP)
    rp.set_defaults(fn=cmd_report)

    cp = sub.add_parser("compare", help="compare run folders side by side (tables and overlaid plots)")
    cp.add_argument("run_dirs", nargs="+")
    cp.add_argument("--out", help="folder for compare.html (default reports/compare-<id>)")
    cp.add_argument("--prices", help=PRICES_HELP)
    cp.add_argument("--noise-band", type=float, default=2.0, help=NOISE_HELP)
    cp.set_defaults(fn=cmd_compare)

    ex = sub.add_parser("export", help="a run folder's history and latency windows as CSV or Parquet tables")
    ex.add_argument("run_dir")
    ex.add_argument("--format", choices=["csv", "parquet"], default="csv", help="table format (default csv)")
    ex.add_argument("--out", help="folder for the tables (default RUN_DIR/export)")
    ex.set_defaults(fn=cmd_export)

    it = sub.add_parser("init", help="write a starter scenarios.yaml (one scenario per kind of target) here")
    it.add_argument("-f", "--file", default="scenarios.yaml", help="where to write it (default scenarios.yaml)")
    it.add_argument("--force", action="store_true", help="overwrite an existing file")
    it.set_defaults(fn=cmd_init)

    ls = sub.add_parser("list", help="list the scenarios of a file")
    ls.add_argument("-f", "--file", help="scenario file (default ./scenarios.yaml, else the shipped scenarios)")
    ls.set_defaults(fn=cmd_list)

    sv = sub.add_parser("serve", help="serve the reference counter service")
    sv.add_argument("--store", choices=["memory", "redis", "postgres", "dynamodb"], default="memory")
    sv.add_argument("--store-url", help="redis://..., postgresql://..., or a DynamoDB endpoint URL")
    sv.add_argument("--unsafe", action="store_true",
                    help="deliberately unsafe: read-modify-write increments, check-then-act seats")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8080)
    sv.add_argument("--workers", type=int, default=1, help="worker processes (not with the memory store)")
    sv.add_argument("--allow-remote", action="store_true", help="listen on a non-loopback address")
    sv.set_defaults(fn=cmd_serve)
    aws = sub.add_parser("aws", help="deploy or tear down the seed article's design in AWS").add_subparsers(
        dest="aws_command", required=True)
    d = aws.add_parser("deploy", help="create table, IAM role, REST API and stage; write a deployment file")
    d.add_argument("--definition", default="apigateway/counter-api.yaml")
    d.add_argument("--region", help="default: AWS_REGION")
    d.add_argument("--stage", default="prod")
    d.add_argument("--seats", type=int, default=500, help="initial seats of the seats item")
    d.add_argument("--out", default="deployment.json", help="the deployment file (default deployment.json)")
    d.set_defaults(fn=cmd_aws_deploy)
    t = aws.add_parser("teardown", help="remove exactly what a deployment file lists")
    t.add_argument("--deployment", default="deployment.json")
    t.set_defaults(fn=cmd_aws_teardown)
    return p


def _internal_error(e: BaseException) -> str:
    """Write the whole trace where a bug report can take it from; returns the line to show."""
    import tempfile
    import traceback

    trace = scrub("".join(traceback.format_exception(e)))
    path = Path(tempfile.gettempdir()) / f"counterbench-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        path.write_text(trace, encoding="utf-8")
        where = f"the full trace is in {path}"
    except OSError:
        where = "the trace could not be written"
    return f"internal error: {scrub(f'{type(e).__name__}: {e}')} ({where}; please report it)"


def main(argv: list[str] | None = None) -> int:
    """Every outcome is one line on stderr and an exit code: 0 pass, 1 fail, 2 unknown or any error."""
    args = parser().parse_args(argv)
    register_environment()
    register_url(getattr(args, "target_url", None))
    try:
        return int(args.fn(args))
    except CounterbenchError as e:
        print(f"counterbench: error: {_one_line(scrub(str(e)))}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine's, not counterbench's: a full disk, a permission, a missing file
        print(f"counterbench: error: {_one_line(scrub(str(e)))}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"counterbench: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("counterbench: interrupted", file=sys.stderr)
        return 2
    except Exception as e:  # a bug: still one line and exit 2 (1 would say "fail"), the trace kept in a file
        print(f"counterbench: {_internal_error(e)}", file=sys.stderr)
        return 2


def _one_line(text: str) -> str:
    """An error is one line; several problems (a scenario file's) are joined."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
