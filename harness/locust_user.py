"""The Locust side: custom arguments, run hooks, and the abstract counter user.

This is the only harness module that imports Locust (and so gevent's socket
patching); it drives load. Concrete users in locustfiles/ hold only a @task.

Two modes:
- prepared (``--run-dir`` with ``--prepared``, what ``counterbench run`` does):
  the CLI already wrote run.json and set the initial state, and reads the final
  state after Locust exits; this process only drives load and writes history.
- plain ``locust -f locustfiles/<workload>.py --scenario NAME --target-url URL``:
  each test start prepares a fresh run folder, each test stop reads the final
  state and writes verdict.json, so ``counterbench check`` can judge it too.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import User, events
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
from locust.exception import StopUser
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner
from locust.user.task import LOCUST_STATE_STOPPING

from harness import lifecycle
from harness.config import ApiGatewayTarget, DynamoTarget, HttpTarget, Scenario, get_scenario, with_overrides
from harness.errors import CounterbenchError, HistoryError
from harness.history import HistoryWriter, history_file
from harness.judge import judge
from harness.load import TARGET_ENV
from harness.metrics import LatencyRecorder, op_label, op_tag
from harness.metrics.latencies import HistoryLatencies
from harness.ops import Completion, Outcome
from harness.progress import ROSTER, remote_progress_file, write_json
from harness.runfolder import RunFolder, new_run_id
from harness.secrets import register_run, scrub
from harness.shipping import Receiver, chunks
from harness.targets import OpClient
from harness.targets.address import check_target_safe
from harness.targets.apigateway import ApiGatewayOps, sigv4_signer
from harness.targets.dynamodb import dynamodb_client
from harness.targets.factory import make_dynamo_ops, make_redis_ops
from harness.targets.http import BaseUrl, HttpOps, Transport
from harness.targets.keepalive import KeepAliveConnection
from harness.watchdog import Watchdog
from harness.workloads import OpChooser, scenario_keys, sharded

log = logging.getLogger("counterbench")

SHIP_ENV = "COUNTERBENCH_WORKER_DIR"
# for bench/ only: run without history and latency histograms, to measure what recording costs (no
# verdict); the per-window CPU log stays on, so the two runs' CPU per op compare
NO_RECORD_ENV = "COUNTERBENCH_BENCH_NO_RECORD"
# closed model without think time: a user runs ops back to back for this long per Locust task
BURST_S = 0.02
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
    group.add_argument("--scenarios-file", default="scenarios.yaml", help="the scenario file")
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
    writer: HistoryWriter | None = None
    shared_client: Any = None  # one botocore client per process: heavy to build, safe to share
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
        self.run_doc: dict[str, Any] | None = None  # run.json as the master sent it
        self.receiver: Receiver | None = None
        self.shippers: set[str] = set()  # workers that announced they will ship their files
        self.names: dict[str, str] = {}  # the master's: Locust node id -> counterbench worker name
        self.users: set[CounterUser] = set()  # this process's users: their ops in flight reach the history

    @property
    def prepared(self) -> bool:
        # read late: a worker gets the master's options (--prepared, --run-dir) only when spawning
        return bool(self.opts and getattr(self.opts, "prepared", False))

    def register(self) -> None:
        runner = self.env.runner
        if isinstance(runner, WorkerRunner):
            runner.register_message("cb_run", lambda msg, **_: setattr(self, "run_doc", msg.data))
            # the master has this worker's files: leave now rather than trust that Locust's quit,
            # sent half a second before the master exits, arrives
            runner.register_message("cb_bye", lambda msg, **_: gevent.spawn_later(0.2, runner.quit))
        elif isinstance(runner, MasterRunner):
            runner.register_message("cb_hello", lambda msg, **_: self._hello(msg))
            runner.register_message("cb_progress", lambda msg, **_: self._remote_progress(msg.data))
            runner.register_message("cb_file", lambda msg, **_: self._receiver().file(msg.data))
            runner.register_message("cb_done", lambda msg, **_: self._receiver().done(msg.data))

    def _hello(self, msg: Message) -> None:
        """A worker names itself (and says whether it will ship its files: it is on another machine)."""
        self.names[msg.node_id] = str(msg.data["worker"])
        if msg.data.get("ships", True):
            self.shippers.add(str(msg.data["worker"]))

    def _remote_progress(self, doc: dict[str, Any]) -> None:
        """A remote worker's figures of the last second, for the live progress line."""
        if self.run is not None:
            try:
                write_json(remote_progress_file(self.run.folder.path, str(doc.get("worker"))), doc)
            except (ValueError, OSError) as e:
                log.warning("counterbench: progress of a worker: %s", e)

    def _roster(self, run: Run) -> None:
        """The master, every second: the workers it expects and those connected, for the progress line."""
        runner = self.env.runner
        assert isinstance(runner, MasterRunner)
        expected = int(getattr(self.opts, "expect_workers", 0) or 0)
        while True:
            connected = [self.names.get(c.id, c.id) for c in runner.clients.all if c.state != "missing"]
            try:
                write_json(run.folder.path / "progress" / ROSTER, {"expected": expected, "connected": connected})
            except OSError as e:
                log.warning("counterbench: worker roster: %s", e)
            gevent.sleep(1.0)

    def _receiver(self) -> Receiver:
        if self.receiver is None:
            assert self.run is not None
            self.receiver = Receiver(self.run.folder.path, lambda m: log.error("counterbench: %s", m))
        return self.receiver

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
        if self.prepared:
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
            return Run(scenario=scenario, folder=folder, target_url=given["target_url"], keys=list(doc["keys"]))
        if not opts.scenario:
            raise CounterbenchError("--scenario NAME is required (see scenarios.yaml)")
        scenario = get_scenario(opts.scenarios_file, opts.scenario)
        url = opts.target_url or scenario.target.url
        if not url:
            raise CounterbenchError("--target-url is required (the scenario names no target url)")
        scenario = with_overrides(scenario, target_url=url)
        run_id = new_run_id(scenario.name)
        self._tests += 1
        given = Path(opts.run_dir) if opts.run_dir and self._tests == 1 else None
        folder = RunFolder(given or Path("reports") / run_id)
        if folder.run_json.exists():
            raise CounterbenchError(f"{folder.path} already holds a run; choose a new --run-dir")
        lifecycle.prepare(folder, scenario=scenario, run_id=run_id, target_url=url,
                          extra={"mode": "locust", "workers": []})
        return Run(scenario=scenario, folder=folder, target_url=url, keys=scenario_keys(scenario, run_id))

    def test_start(self) -> None:
        self.users = set()  # a new test: users of an earlier one had their ops written at its stop
        try:
            run = self.run = self.load_run()
            runner = self.env.runner
            if isinstance(runner, MasterRunner) and self.prepared:
                # workers on other machines cannot read run.json: send it, and the target with its
                # credentials (held in memory there, never written), before they spawn
                runner.send_message("cb_run", {"run": run.folder.read(run.folder.run_json), "target": {
                    "scenario": run.scenario.model_dump(mode="json"), "target_url": run.target_url}})
            target = run.scenario.target
            if isinstance(target, DynamoTarget) and not isinstance(self.env.runner, MasterRunner):
                # built before users start: building it from every user at once would stall them all
                run.shared_client = dynamodb_client(
                    url=run.target_url or None, region=target.region, timeout=target.timeout,
                    max_attempts=target.max_attempts, pool=max(10, run.scenario.load.users))
            if not isinstance(self.env.runner, MasterRunner):
                run.watchdog = Watchdog()
                worker = f"{socket.gethostname()}-{os.getpid()}-{self._tests}"
                run.recorder = LatencyRecorder(run.folder.path / "metrics" / f"{worker}.hlog",
                                               progress=run.folder.path / "progress" / f"{worker}.json")
                if os.environ.get(NO_RECORD_ENV):  # bench/: the cost of recording
                    run.writer, run.record_latency = _NullWriter(), False  # type: ignore[assignment]
                else:
                    # latencies come from the history's blocks, in bulk: nothing per op but two records
                    run.writer = HistoryWriter(history_file(run.folder.history_dir, worker), worker=worker,
                                               run_id=run.folder.path.name, scenario=run.scenario.name,
                                               on_latencies=HistoryLatencies(run.recorder))
                run.worker = worker
                if isinstance(self.env.runner, WorkerRunner):
                    self.env.runner.send_message("cb_hello", {"worker": worker, "ships": bool(self.ship_dir)})
                run.background.append(gevent.spawn(self._tick, run))
            if isinstance(self.env.runner, MasterRunner):
                run.background.append(gevent.spawn(self._roster, run))
            if run.scenario.load.steps and not run.scenario.load.open_model and not isinstance(
                    self.env.runner, WorkerRunner):
                run.background.append(gevent.spawn(self._steps, run))
        except (CounterbenchError, OSError) as e:
            self.fatal(str(e))

    def _tick(self, run: Run) -> None:
        """Every 200 ms: flush the history block (which feeds its latencies to the recorder), close the
        latency windows that have passed, refresh progress."""
        remote = self.ship_dir is not None and isinstance(self.env.runner, WorkerRunner)
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
            if remote and _now() - sent >= 1.0:  # the master shows other machines' figures live
                sent = _now()
                self.env.runner.send_message("cb_progress", {"worker": run.worker, **run.recorder.progress_doc()})
            gevent.sleep(0.2)

    def _steps(self, run: Run) -> None:
        """Closed-model steps: change the number of users at each step boundary."""
        load = run.scenario.load
        for previous, step in zip(load.steps, load.steps[1:], strict=False):
            gevent.sleep(previous.duration)
            if self.env.runner is not None and step.users is not None:
                self.env.runner.start(step.users, load.spawn_rate)

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
            if self.ship_dir and isinstance(self.env.runner, WorkerRunner) and not run.shipped:
                run.shipped = True
                for kind, part in chunks(run.folder.path, run.worker):
                    self.env.runner.send_message(kind, part)
            if isinstance(self.env.runner, MasterRunner):
                self._stop_workers_and_collect()
            if not self.prepared and not isinstance(self.env.runner, WorkerRunner):
                lifecycle.finish(run.folder, scenario=run.scenario, target_url=run.target_url)
                verdict = judge(run.folder)
                log.info("counterbench: verdict %s (%s): %s", verdict["verdict"], run.folder.path, verdict["reason"])
        except (CounterbenchError, OSError) as e:
            self.fatal(str(e))

    def _stop_workers_and_collect(self, timeout: float = 30.0) -> None:
        """The master, at the end of the run: stop every worker (each drains its in-flight ops and
        writes or ships its final files), wait -- bounded -- until all have stopped and every shipping
        worker's files are in, then record who sent what.

        Locust's own quit tells workers to quit and exits half a second later, so their last
        messages could race the master's shutdown; stopping them first closes that race.
        """
        runner = self.env.runner
        assert isinstance(runner, MasterRunner)
        if not self.shippers:
            return  # forked workers on this machine write straight into the run folder
        ids = [client.id for client in runner.clients.all]  # Locust forgets a worker once it has stopped
        for client_id in ids:
            runner.server.send_to_client(Message("stop", None, client_id))
        deadline = time.monotonic() + (self.env.stop_timeout or 0) + timeout
        while time.monotonic() < deadline:
            done = {w for w, st in (self.receiver.status.items() if self.receiver else []) if st["done"]}
            if runner.user_count == 0 and self.shippers <= done:
                break
            gevent.sleep(0.1)
        # Locust's own "quit" only reaches workers it still knows, and it forgets stopped ones:
        # tell each worker to leave; it reads this after its stop handler's pause
        for client_id in ids:
            runner.send_message("cb_bye", None, client_id=client_id)
        gevent.sleep(0.5)  # let the messages leave before the master can exit
        if self.shippers:
            rec = self._receiver()
            for w in self.shippers - set(rec.status):
                rec.status[w] = {"worker": w, "files": {}, "done": False, "verified": None}
            rec.write()
            missing = [w for w, st in rec.status.items() if not st["done"]]
            if missing:
                log.error("counterbench: no final files from %s", ", ".join(missing))

    def write_in_flight(self, writer: HistoryWriter) -> None:
        """Invoke records for the ops still out, so that every op sent before a block is handed to
        the OS has its invoke in it (``execute`` records a completed op whole, both records at once)."""
        for user in self.users:
            if user.in_flight is not None and user.in_flight_ids is None:
                batch, t0 = user.in_flight
                user.in_flight_ids = [writer.invoke(key, user.kind, amount, t0) for key, amount in batch]

    def execute(self, user: CounterUser, batch: list[tuple[str, int]]) -> None:
        """Ops sent together (one, or a pipelined batch): the call, then each op's invoke and
        completion records, then one Locust request event. Runs once per op: keep it lean. The two
        clock readings stamp the history's records, and the latency histograms come from them."""
        run = self.run
        if run is None or run.writer is None or self.failed:
            raise StopUser()
        writer = run.writer
        kind = user.kind
        t0 = _now_ns()
        user.in_flight = (batch, t0)  # the history's writer sees it if a block is handed over meanwhile
        try:
            if len(batch) > 1:
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
            self._record_intended(run.recorder, user, dones, t0, t1)
        self.env.events.request.fire(
            request_type=user.request_type if len(batch) == 1 else f"{user.request_type} x{len(batch)}",
            name=user.workload, response_time=(t1 - t0) / 1e6, response_length=0,
            start_time=t0 / 1e9 + run.wall_offset, context={}, url=None, response=None,
            exception=None if bad is None else OpNotOk(f"{bad.outcome.value}: {bad.error}"),
        )

    def _record_intended(self, recorder: LatencyRecorder, user: CounterUser, dones: list[Completion],
                         t0: int, t1: int) -> None:
        """Open model: wrk2's correction, latency from when each op should have been sent, and how
        late the send was when it was late."""
        assert user.intended is not None
        for done in dones:
            recorder.record(user.intended_tags[done.outcome], (t1 / 1e9 - user.intended) * 1e6, t1)
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
    SESSION.register()


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if SESSION is not None:
        SESSION.test_start()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if SESSION is not None:
        SESSION.test_stop()


class _NoEvents:
    """FastHttpSession reports every request itself; counterbench reports the classified op instead."""

    def fire(self, **_: Any) -> None:
        pass


class CounterUser(User):
    """Owns the op client and draws ops; concrete users only add a @task calling ``step``."""

    abstract = True
    workload: str = ""  # the workload kind this locustfile drives
    ops: OpClient

    intended: float | None = None  # open model: when the current op was due (time.monotonic seconds)
    interval: float = 0.0
    kind: str = "incr"
    request_type: str = ""
    intended_tags: dict[Outcome, str]
    late_tag: str = ""
    open_model: bool = False
    think: float = 0.0  # closed model: the scenario's wait between ops
    in_flight: tuple[list[tuple[str, int]], int] | None = None  # the ops out now, and when they were sent
    in_flight_ids: list[int] | None = None  # their op ids, once their invokes are in the history

    def wait_time(self) -> float:
        if SESSION is None or SESSION.run is None:
            return 0.0
        if not self.open_model:
            return self.think
        load = SESSION.run.scenario.load
        # open model: each user owns an equal share of the arrival rate, on a fixed schedule
        now = _now()
        rate = load.rate_at(now - SESSION.run.started) or 1.0
        self.interval = load.users / rate  # the pool shares the rate, whichever process each user is in
        self.next_due = (self.next_due or now) + self.interval
        return max(0.0, self.next_due - now)

    def on_start(self) -> None:
        if SESSION is None or SESSION.run is None or SESSION.failed:
            raise StopUser()
        run = SESSION.run
        self.next_due: float | None = None
        if run.scenario.workload.kind != self.workload:
            SESSION.fatal(f"scenario {run.scenario.name} is a {run.scenario.workload.kind} workload; "
                          f"run it with locustfiles/{run.scenario.workload.kind.replace('-', '_')}.py")
            raise StopUser()
        self.chooser = OpChooser(run.scenario.workload, run.keys, seed=random.SystemRandom().randrange(2**32),
                                   uniform=sharded(run.scenario))
        self.ops = self._make_ops(run)
        # Redis pipelining: several increments per round trip, each still its own op in the history
        self.pipeline = getattr(run.scenario.target, "pipeline", 1)
        # what every op needs, worked out once
        self.kind = run.scenario.workload.op
        self.request_type = op_label(self.kind)
        self.intended_tags = {o: op_tag(self.kind, o.value, "intended") for o in Outcome}
        self.late_tag = op_tag(self.kind, "late")
        self.open_model = run.scenario.load.open_model
        self.think = run.scenario.load.wait
        SESSION.users.add(self)

    def _http_transport(self, base_url: str, timeout: float, watchdog: Watchdog | None) -> Transport:
        """A lean keep-alive connection for http://; Locust's FastHttpSession (geventhttpclient,
        without retries or redirects) for https://. Either way each path gets the base URL's path in
        front and its query behind, and its user and password as Basic auth (``BaseUrl``)."""
        base = BaseUrl.parse(base_url)
        parts = urlsplit(base_url)
        if parts.scheme == "http" and parts.hostname:
            conn = KeepAliveConnection(parts.hostname, parts.port or 80, timeout=timeout, deadlines=watchdog)
            if not base.prefix and not base.query and base.authorization is None:
                return conn

            def via(method: str, path: str, body: bytes | None,
                    headers: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
                return conn(method, base.path(path), body, base.headers(headers))

            via.close = conn.close  # type: ignore[attr-defined]
            return via
        session = FastHttpSession(base_url=base.origin, request_event=_NoEvents(), user=self, max_retries=0,
                                  max_redirects=0, network_timeout=timeout, connection_timeout=timeout)

        def send(method: str, path: str, body: bytes | None,
                 headers: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
            resp = session.request(method, base.path(path), data=body, headers=dict(base.headers(headers)))
            if not resp.status_code:  # no answer at all: the transport error decides
                raise resp.error or ConnectionError("no response")
            return resp.status_code, dict(resp.headers or {}), resp.content or b""

        return send

    def _make_ops(self, run: Run) -> OpClient:
        target = run.scenario.target
        if isinstance(target, HttpTarget):
            return HttpOps(target.contract, self._http_transport(run.target_url, target.timeout, run.watchdog))
        if isinstance(target, ApiGatewayTarget):
            parts = urlsplit(run.target_url)
            signer = sigv4_signer(target.item.region) if target.sigv4 else None
            return ApiGatewayOps(target, run.target_url,
                                 self._http_transport(f"{parts.scheme}://{parts.netloc}", target.timeout,
                                                      run.watchdog), signer)
        if isinstance(target, DynamoTarget):
            return make_dynamo_ops(run.scenario, run.shared_client)
        return make_redis_ops(run.scenario, run.target_url, deadlines=run.watchdog)

    def on_stop(self) -> None:
        ops = getattr(self, "ops", None)
        if ops is not None:
            ops.close()
        if SESSION is not None and self.in_flight is None:
            SESSION.users.discard(self)  # a user cut off mid-op stays: its invokes must reach the history

    def step(self) -> None:
        """One op or pipelined batch; in the closed model without think time, a burst of them.

        Locust's scheduling around each task (and the yield after it) costs more than a Redis
        round trip, so back-to-back ops repeat here for up to BURST_S, checking between ops
        whether Locust asked the user to stop. Other users still run while this one waits for
        its replies; open-model and paced users return to Locust after every op.
        """
        session = SESSION
        assert session is not None and session.run is not None
        chooser, n = self.chooser, self.pipeline
        if self.open_model:
            self.intended = self.next_due or _now()
            session.execute(self, [chooser.next() for _ in range(n)])
            return
        end = _now() + BURST_S if self.think == 0 else 0.0
        while True:
            session.execute(self, [chooser.next()] if n == 1 else [chooser.next() for _ in range(n)])
            if self._state == LOCUST_STATE_STOPPING or _now() >= end:
                return
