"""Distributed runs: what a master and its workers say to each other over Locust's messages.

    cb_run       master -> workers   the run (run.json) and its target, before they spawn
    cb_hello     worker -> master    its counterbench name, and whether it ships its files
    cb_progress  worker -> master    its figures, every second (workers on other machines)
    cb_file      worker -> master    a chunk of a file it ships
    cb_done      worker -> master    the manifest of what it shipped (sizes, SHA-256)
    cb_bye       master -> worker    the master has its files: leave
    cb_clock     both ways           every second, the master asks each worker for its clock; the
                                     answers place every worker's ops on the master's timeline

Workers forked on this machine (``--processes``) write straight into the run folder; workers on
other machines (``counterbench worker``) stage their files and ship them (``harness.load.shipping``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from harness.load.clock import ClockSamples
from harness.load.shipping import Receiver, chunks
from harness.runfolder import RunFolder, write_json

log = logging.getLogger("counterbench")


class MasterSide:
    """The master's part: the roster of workers, their live figures, and their files at the end."""

    def __init__(self, env: Environment, runner: MasterRunner) -> None:
        self.env = env
        self.runner = runner
        self.folder: RunFolder | None = None
        self.receiver: Receiver | None = None
        self.shippers: set[str] = set()  # workers that announced they will ship their files
        self.names: dict[str, str] = {}  # Locust node id -> counterbench worker name
        runner.register_message("cb_hello", lambda msg, **_: self._hello(msg))
        runner.register_message("cb_progress", lambda msg, **_: self._remote_progress(msg.data))
        runner.register_message("cb_file", lambda msg, **_: self._receiver().file(msg.data))
        runner.register_message("cb_done", lambda msg, **_: self._receiver().done(msg.data))
        runner.register_message("cb_clock", lambda msg, **_: self._clock_answer(msg))
        self.anchor = (time.time_ns(), time.monotonic_ns())
        self.samples: dict[str, ClockSamples] = {}  # Locust node id -> its clock samples
        self._asked: dict[str, int] = {}  # node id -> when it was last asked (monotonic ns)

    def start(self, folder: RunFolder, sent: dict[str, Any] | None) -> Any:
        """Send the run to the workers before they spawn (``{"run": run.json, "target": ...}``: the
        target with its credentials is held in memory there, never written) and keep the roster;
        returns the roster's greenlet."""
        self.folder = folder
        if sent is not None:
            self.runner.send_message("cb_run", sent)
        gevent.spawn(self._sample_clocks)
        return gevent.spawn(self._roster)

    def _sample_clocks(self) -> None:
        """Every second, ask each worker for its clock (one question out at a time per worker)."""
        while True:
            for c in self.runner.clients.all:
                if c.state != "missing":
                    self._asked[c.id] = time.monotonic_ns()
                    self.runner.send_message("cb_clock", None, client_id=c.id)
            gevent.sleep(1.0)

    def _clock_answer(self, msg: Message) -> None:
        answered = time.monotonic_ns()
        asked = self._asked.pop(msg.node_id, None)
        if asked is not None:
            self.samples.setdefault(msg.node_id, ClockSamples()).add((asked, answered, int(msg.data["t"])))

    def write_clocks(self) -> None:
        """clocks.json: the samples by worker name (workers that never said hello are left out)."""
        named = {self.names[n]: kept for n, s in self.samples.items() if n in self.names and (kept := s.samples())}
        if named and self.folder is not None:
            self.folder.write_clocks(anchor_wall_ns=self.anchor[0], anchor_monotonic_ns=self.anchor[1],
                                     samples=named)

    def _hello(self, msg: Message) -> None:
        self.names[msg.node_id] = str(msg.data["worker"])
        if msg.data.get("ships", True):
            self.shippers.add(str(msg.data["worker"]))

    def _remote_progress(self, doc: dict[str, Any]) -> None:
        """A remote worker's figures of the last second, for the live progress line."""
        if self.folder is not None:
            try:
                write_json(self.folder.remote_progress_file(str(doc.get("worker"))), doc)
            except (ValueError, OSError) as e:
                log.warning("counterbench: progress of a worker: %s", e)

    def _roster(self) -> None:
        """Every second: the workers expected and those connected, for the progress line."""
        assert self.folder is not None
        expected = int(getattr(self.env.parsed_options, "expect_workers", 0) or 0)
        while True:
            connected = [self.names.get(c.id, c.id) for c in self.runner.clients.all if c.state != "missing"]
            try:
                write_json(self.folder.roster_file, {"expected": expected, "connected": connected})
            except OSError as e:
                log.warning("counterbench: worker roster: %s", e)
            gevent.sleep(1.0)

    def _receiver(self) -> Receiver:
        if self.receiver is None:
            assert self.folder is not None
            self.receiver = Receiver(self.folder, lambda m: log.error("counterbench: %s", m))
        return self.receiver

    def collect(self, timeout: float = 30.0) -> None:
        """At the end of the run: stop every worker (each drains its in-flight ops and writes or ships
        its final files), wait -- bounded -- until all have stopped and every shipping worker's files
        are in, then record who sent what.

        Locust's own quit tells workers to quit and exits half a second later, so their last
        messages could race the master's shutdown; stopping them first closes that race.
        """
        runner = self.runner
        try:
            self.write_clocks()
        except OSError as e:
            log.error("counterbench: clock samples: %s", e)
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
        rec = self._receiver()
        rec.missing(self.shippers)
        rec.write()
        missing = [w for w, st in rec.status.items() if not st["done"]]
        if missing:
            log.error("counterbench: no final files from %s", ", ".join(missing))


class WorkerSide:
    """A worker's part: take the run from the master, name itself, report, ship its files."""

    def __init__(self, runner: WorkerRunner, on_run: Callable[[dict[str, Any]], None]) -> None:
        self.runner = runner
        runner.register_message("cb_run", lambda msg, **_: on_run(msg.data))
        # the master has this worker's files: leave now rather than trust that Locust's quit,
        # sent half a second before the master exits, arrives
        runner.register_message("cb_bye", lambda msg, **_: gevent.spawn_later(0.2, runner.quit))
        # the clock the history's times are read from, as close to the question as a greenlet gets
        runner.register_message("cb_clock", lambda msg, **_: runner.send_message(
            "cb_clock", {"t": time.monotonic_ns()}))

    def hello(self, worker: str, *, ships: bool) -> None:
        self.runner.send_message("cb_hello", {"worker": worker, "ships": ships})

    def progress(self, worker: str, doc: dict[str, Any]) -> None:
        self.runner.send_message("cb_progress", {"worker": worker, **doc})

    def ship(self, staging: RunFolder, worker: str) -> None:
        for kind, part in chunks(staging, worker):
            self.runner.send_message(kind, part)
