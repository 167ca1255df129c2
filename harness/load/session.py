"""The Locust side of a run: counterbench's options, the run hooks, and the recording hot path.

Only harness/load/ imports Locust (and so gevent's socket patching); this module drives load,
and never imports checks, judge or report. Concrete users in locustfiles/ hold only a @task
(``harness.load.user.CounterUser``).

Two modes:
- prepared (``--run-dir`` with ``--prepared``, what ``counterbench run`` does):
  the CLI already wrote run.json and set the initial state, and reads the final
  state after Locust exits; this process only drives load and writes history. Its scenario and
  target come by environment (``COUNTERBENCH_TARGET``), or from the master on another machine.
- plain ``locust -f locustfiles/<workload>.py --scenario NAME --target-url URL``:
  each test start prepares a fresh run folder, each test stop concludes it (final read, verdict)
  through ``harness.pipeline``, as ``counterbench run`` does. That is ``harness.locustfile``'s (a face,
  which locustfiles import), handed over through ``harness.load.plain``: this stage knows no pipeline
  or check.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
from locust import events
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from harness.config.scenario import Scenario
from harness.core.errors import CounterbenchError, HistoryError
from harness.core.ops import Completion, Outcome, op_token
from harness.core.runfolder import RunFolder, worker_name
from harness.core.secrets import register_run, scrub
from harness.history import HistoryWriter
from harness.load import plain, webtab
from harness.load.distributed import MasterSide, WorkerSide
from harness.load.runner import SHIP_ENV, TARGET_ENV
from harness.load.watchdog import Watchdog
from harness.metrics.latencies import HistoryLatencies
from harness.metrics.recorder import LatencyRecorder
from harness.targets.address import check_target_safe

if TYPE_CHECKING:
    from harness.load.user import CounterUser

log = logging.getLogger("counterbench")

# for bench/ only: run without history and latency histograms, to measure what recording costs (no
# verdict); the per-window CPU log stays on, so the two runs' CPU per op compare
NO_RECORD_ENV = "COUNTERBENCH_BENCH_NO_RECORD"
# one clock for scheduling, latency and history: the history's records carry monotonic_ns readings
_now = time.monotonic
_now_ns = time.monotonic_ns
_OK = Outcome.OK


class _NullWriter:
    """Stands in for the history writer when a benchmark measures the cost of recording."""

    def __init__(self) -> None:
        self._n = 0

    def invoke(self, key: str, kind: str, amount: int, t_ns: int | None = None) -> int:
        self._n += 1
        return self._n

    def complete(self, op_id: int, done: Completion, t_ns: int | None = None) -> None:
        pass

    def record(self, key: str, kind: str, amount: int, t0_ns: int, done: Completion, t1_ns: int) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class OpNotOk(Exception):
    """How a fail or indeterminate op shows in Locust's failure table."""


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("counterbench")
    group.add_argument("--scenario", default="", help="counterbench scenario name (scenarios.yaml)")
    group.add_argument("--scenarios-file", default="",
                       help="the scenario file (default ./scenarios.yaml, else the shipped one)")
    group.add_argument("--target-url", default="", help="redis://host:port/db or http://host:port")
    group.add_argument("--run-dir", default="", help="run folder (default reports/<run-id>)")
    group.add_argument("--prepared", action="store_true", default=False,
                       help="the run folder is prepared by `counterbench run`; only drive load")


@dataclass
class Run:
    """One test's state in this process."""

    scenario: Scenario
    folder: RunFolder
    target_url: str
    keys: list[str]
    run_id: str = ""
    writer: HistoryWriter | None = None
    shared: dict[str, Any] = field(default_factory=dict)  # clients the users share (one per process)
    recorder: LatencyRecorder | None = None
    record_latency: bool = True  # False only for bench/'s recording-off runs
    watchdog: Watchdog | None = None  # times out blocked Redis and HTTP calls (no timer per op)
    worker: str = ""
    shipped: bool = False
    started: float = field(default_factory=_now)  # steps and rates count from here
    # wall clock minus monotonic clock: Locust's start_time without another clock read per op
    wall_offset: float = field(default_factory=lambda: time.time() - _now())
    background: list[Any] = field(default_factory=list)


class Session:
    """Process-wide counterbench state, built from the parsed options at init."""

    def __init__(self, environment: Environment) -> None:
        self.env = environment
        self.opts = environment.parsed_options
        self.run: Run | None = None
        self.failed: str | None = None
        self._tests = 0
        # a worker on another machine (`counterbench worker`) stages its files here and ships them
        self.ship_dir = os.environ.get(SHIP_ENV) or None
        self.run_doc: dict[str, Any] | None = None  # the run and its target, as the master sent them
        self.users: set[CounterUser] = set()  # this process's users: their ops in flight reach the history
        runner = environment.runner
        self.master = MasterSide(environment, runner) if isinstance(runner, MasterRunner) else None
        self.worker_side = WorkerSide(runner, lambda doc: setattr(self, "run_doc", doc)) \
            if isinstance(runner, WorkerRunner) else None

    @property
    def prepared(self) -> bool:
        # read late: a worker gets the master's options (--prepared, --run-dir) only when spawning
        return bool(self.opts and getattr(self.opts, "prepared", False))

    def fatal(self, message: str) -> None:
        """Stop the whole run loudly: Locust would otherwise log and swallow the error."""
        if self.failed is None:
            self.failed = message = scrub(message)
            log.critical("counterbench: %s", message)
            sys.stderr.write(f"counterbench: {message}\n")
        self.env.process_exit_code = 2
        if self.env.runner is not None:
            gevent.spawn_later(0, self.env.runner.quit)

    def load_run(self) -> Run:
        opts = self.opts
        if opts is None:
            raise CounterbenchError("counterbench users need Locust's command-line options")
        if not self.prepared:  # each test of a plain Locust run is a run of its own: <host>-<pid>-<test>
            self._tests += 1
            scenario, folder, url, keys = plain.face().start(opts, first_test=self._tests == 1)
            return Run(scenario=scenario, folder=folder, target_url=url, keys=keys,
                       run_id=folder.read(folder.run_json)["run_id"])
        folder = RunFolder(Path(opts.run_dir))
        given = json.loads(os.environ[TARGET_ENV]) if os.environ.get(TARGET_ENV) else None
        if self.run_doc is not None:  # a remote worker: the run came from the master
            doc, given = self.run_doc["run"], self.run_doc["target"]
            folder = RunFolder(Path(self.ship_dir or opts.run_dir))
        else:
            doc = folder.read(folder.run_json)
        if given is None:
            raise CounterbenchError(f"the load process got no target ({TARGET_ENV} is not set)")
        scenario = Scenario.model_validate(given["scenario"])  # run.json's copy has its credentials redacted
        register_run(given["scenario"], given["target_url"])
        check_target_safe(scenario, given["target_url"])  # every process refuses, not only the CLI
        return Run(scenario=scenario, folder=folder, target_url=given["target_url"], keys=list(doc["keys"]),
                   run_id=str(doc["run_id"]))

    def test_start(self) -> None:
        self.users = set()  # a new test: users of an earlier one had their ops written at its stop
        try:
            run = self.run = self.load_run()
            if self.master is not None:
                # workers on other machines cannot read run.json: the master sends it, and the target
                sent = {"run": run.folder.read(run.folder.run_json), "target": {
                    "scenario": run.scenario.model_dump(mode="json"), "target_url": run.target_url}}
                run.background.append(self.master.start(run.folder, sent if self.prepared else None))
            else:
                self._start_recording(run)
            if run.scenario.load.steps and not run.scenario.load.open_model and self.worker_side is None:
                run.background.append(gevent.spawn(self._steps, run))
            if not self.prepared and plain.PLAIN is not None and self.worker_side is None:
                run.background.append(gevent.spawn(plain.watch_online, plain.PLAIN, run.scenario, run.started,
                                                   self.env))
        except (CounterbenchError, OSError) as e:
            self.fatal(str(e))

    def _start_recording(self, run: Run) -> None:
        """A process that sends load: its history, latency windows, progress, and the watchdog."""
        run.watchdog = Watchdog()
        worker = run.worker = worker_name(self._tests)
        folder = run.folder
        run.recorder = LatencyRecorder(folder.latency_log(worker), cpu=folder.cpu_log(worker),
                                       progress=folder.progress_file(worker))
        if os.environ.get(NO_RECORD_ENV):  # bench/: the cost of recording
            run.writer, run.record_latency = _NullWriter(), False  # type: ignore[assignment]
        else:
            # latencies come from the history's blocks, in bulk: nothing per op but two records
            run.writer = HistoryWriter(folder.history_file(worker), worker=worker, run_id=folder.path.name,
                                       scenario=run.scenario.name, on_latencies=HistoryLatencies(run.recorder))
        if self.worker_side is not None:
            self.worker_side.hello(worker, ships=bool(self.ship_dir))
            if self.ship_dir:  # from another machine: the files go to the master as they grow
                self.worker_side.start_shipping(folder, worker)
        run.background.append(gevent.spawn(self._tick, run))

    def _tick(self, run: Run) -> None:
        """Every 200 ms: flush the history block (which feeds its latencies to the recorder), close the
        latency windows that have passed, refresh progress (and send it, from another machine)."""
        remote = self.worker_side if self.ship_dir else None
        sent = 0.0
        while run.recorder is not None:
            try:
                if run.writer is not None:
                    self.write_in_flight(run.writer)
                    run.writer.flush()
                run.recorder.tick()
            except (OSError, HistoryError) as e:
                self.fatal(f"cannot write history or metrics: {e}")
                return
            if remote is not None and _now() - sent >= 1.0:  # the master shows other machines' figures live
                sent = _now()
                remote.progress(run.worker, run.recorder.progress_doc())
            gevent.sleep(0.2)

    def _steps(self, run: Run) -> None:
        """Closed-model steps: change the number of users as each step begins."""
        load = run.scenario.load
        for span in load.timeline()[1:]:
            gevent.sleep(max(0.0, run.started + span.start - _now()))
            if self.env.runner is not None and span.step.users is not None:
                self.env.runner.start(span.step.users, load.spawn_rate)

    def test_stop(self) -> None:
        run = self.run
        if run is None:
            return
        for g in run.background:
            g.kill(block=False)
        if run.watchdog is not None:
            run.watchdog.close()
        try:
            if run.writer is not None:
                self.write_in_flight(run.writer)  # ops cut off by the stop: invoked, never completed
                run.writer.close()
            if run.recorder is not None:
                recorder, run.recorder = run.recorder, None
                recorder.close()
            if self.ship_dir and self.worker_side is not None and not run.shipped:
                run.shipped = True
                self.worker_side.ship(run.folder, run.worker)
            if self.master is not None:
                self.master.collect()
            if not self.prepared and self.worker_side is None:
                plain.face().conclude(run.folder, scenario=run.scenario, target_url=run.target_url)
        except (CounterbenchError, OSError) as e:
            self.fatal(str(e))

    def write_in_flight(self, writer: HistoryWriter) -> None:
        """Invoke records for the ops still out, so that every op sent before a block is handed to
        the OS has its invoke in it (``execute`` records a completed op whole, both records at once)."""
        for user in self.users:
            if user.in_flight is not None and user.in_flight_ids is None:
                batch, t0, kind = user.in_flight
                user.in_flight_ids = [writer.invoke(key, kind, amount, t0) for key, amount in batch]

    def execute(self, user: CounterUser, batch: list[tuple[str, int]], kind: str | None = None) -> None:
        """Ops sent together (one, or a pipelined batch): the call, then each op's invoke and
        completion records, then one Locust request event. Runs once per op: keep it lean. The two
        clock readings stamp the history's records, and the latency histograms come from them."""
        run = self.run
        if run is None or run.writer is None or self.failed:
            raise StopUser()
        writer = run.writer
        kind = kind or user.kind
        t0 = _now_ns()
        user.in_flight = (batch, t0, kind)  # the history's writer sees it if a block is handed over meanwhile
        try:
            if kind == "read":
                dones = [user.ops.read(batch[0][0])]
            elif user.tokens:  # the op's idempotency key names its op id: invoke first, then send
                user.in_flight_ids = [writer.invoke(key, kind, amount, t0) for key, amount in batch]
                key, amount = batch[0]
                token = op_token(run.run_id, run.worker, user.in_flight_ids[0])
                dones = [user.ops.incr(key, amount, token=token) if kind == "incr"
                         else user.ops.decr_if_positive(key, token=token)]
            elif len(batch) > 1:
                dones = user.ops.batch(batch)  # type: ignore[attr-defined]
            elif kind == "incr":
                dones = [user.ops.incr(*batch[0])]
            else:
                dones = [user.ops.decr_if_positive(batch[0][0])]
        except Exception as e:  # a harness bug: the ops may have been applied, so their fate is unknown
            log.exception("counterbench: the op client raised; recorded as indeterminate")
            dones = [Completion.indeterminate(f"harness error: {type(e).__name__}: {e}")] * len(batch)
        t1 = _now_ns()
        ids, user.in_flight = user.in_flight_ids, None
        try:
            if ids is not None:  # its invokes went out with a block while it was in flight
                user.in_flight_ids = None
                for op_id, done in zip(ids, dones, strict=True):
                    writer.complete(op_id, done, t1)
            elif len(batch) == 1:
                writer.record(batch[0][0], kind, batch[0][1], t0, dones[0], t1)
            else:
                for (key, amount), done in zip(batch, dones, strict=True):
                    writer.record(key, kind, amount, t0, done, t1)
        except HistoryError as e:
            self.fatal(str(e))
            raise StopUser() from e
        bad = None
        for done in dones:
            if done.outcome is not _OK:
                bad = done
                break
        if user.intended is not None and run.record_latency and run.recorder is not None:
            self._record_intended(run.recorder, user, dones, t0, t1, read=kind == "read")
        label = "read" if kind == "read" else user.request_type
        self.env.events.request.fire(
            request_type=label if len(batch) == 1 else f"{label} x{len(batch)}",
            name=user.workload, response_time=(t1 - t0) / 1e6, response_length=0,
            start_time=t0 / 1e9 + run.wall_offset, context={}, url=None, response=None,
            exception=None if bad is None else OpNotOk(f"{bad.outcome.value}: {bad.error}"),
        )

    def _record_intended(self, recorder: LatencyRecorder, user: CounterUser, dones: list[Completion],
                         t0: int, t1: int, *, read: bool = False) -> None:
        """Open model: wrk2's correction, latency from when each op should have been sent, and how
        late the send was when it was late."""
        assert user.intended is not None
        tags = user.read_tags if read else user.intended_tags
        for done in dones:
            recorder.record(tags[done.outcome], (t1 / 1e9 - user.intended) * 1e6, t1)
        lag = t0 / 1e9 - user.intended
        if lag > max(0.010, user.interval):
            recorder.record(user.late_tag, lag * 1e6, t1)


SESSION: Session | None = None


class _ScrubLogs(logging.Filter):
    """Every line Locust logs (locust.log, the console) is scrubbed of the run's credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_info:
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        return True


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global SESSION
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ScrubLogs())
    SESSION = Session(environment)
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is not None and plain.PLAIN is not None and not SESSION.prepared:
        webtab.install(web_ui, plain.PLAIN)
    # Locust starts its --run-time timer right after this, on the event loop's cached clock, which has
    # not moved since the loop last ran -- before the imports and this set-up: the load would end over
    # a second early (a 3 s run sent for 2.2 s, and a fault planned near the end could miss it)
    gevent.get_hub().loop.update_now()


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if SESSION is not None:
        SESSION.test_start()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if SESSION is not None:
        SESSION.test_stop()
