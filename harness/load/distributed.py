"""Distributed runs: what a master and its workers say to each other over Locust's messages.

    cb_run       master -> workers   the run (run.json) and its target, before they spawn
    cb_hello     worker -> master    its counterbench name, and whether it ships its files
    cb_progress  worker -> master    its figures, every second (workers on other machines)
    cb_chunk     worker -> master    what one of its files gained: name, offset, bytes, SHA-256 (every
                                     second while the run goes, the rest at its end)
    cb_ack       master -> worker    the master took (or refused) a chunk: it leaves the worker's window
    cb_done      worker -> master    the manifest of what it shipped (sizes, SHA-256), after its last chunk
    cb_bye       master -> worker    the master has its files: leave
    cb_clock     both ways           every second, the master asks each worker for its clock; the
                                     answers place every worker's ops on the master's timeline

Workers forked on this machine (``--processes``) write straight into the run folder; workers on
other machines (``counterbench worker``) stage their files and ship them as they grow
(``harness.load.shipping``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from harness.core.runfolder import RunFolder, write_json
from harness.load.clock import ClockSamples
from harness.load.shipping import SEND_EVERY, Receiver, Shipper

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
        self._heard: dict[str, float] = {}  # node id -> when it last said anything of counterbench's (monotonic)
        runner.register_message("cb_hello", lambda msg, **_: self._hello(msg))
        runner.register_message("cb_progress", lambda msg, **_: self._remote_progress(msg))
        runner.register_message("cb_chunk", lambda msg, **_: self._chunk(msg))
        runner.register_message("cb_done", lambda msg, **_: self._done(msg))
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
        """Every second, ask each worker for its clock (one question out at a time per worker); every few
        seconds write the samples so far, which place the workers' ops for the online checks."""
        rounds = 0
        while True:
            for c in self.runner.clients.all:
                if c.state != "missing":
                    self._asked[c.id] = time.monotonic_ns()
                    self.runner.send_message("cb_clock", None, client_id=c.id)
            gevent.sleep(1.0)
            rounds += 1
            if rounds % 3 == 0:
                try:
                    self.write_clocks()
                except OSError as e:
                    log.error("counterbench: clock samples: %s", e)

    def _clock_answer(self, msg: Message) -> None:
        answered = time.monotonic_ns()
        self._heard[msg.node_id] = time.monotonic()
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
        self._heard[msg.node_id] = time.monotonic()
        self.names[msg.node_id] = str(msg.data["worker"])
        if msg.data.get("ships", True):
            self.shippers.add(str(msg.data["worker"]))

    def _remote_progress(self, msg: Message) -> None:
        """A remote worker's figures of the last second, for the live progress line."""
        self._heard[msg.node_id] = time.monotonic()
        doc: dict[str, Any] = msg.data
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

    def _chunk(self, msg: Message) -> None:
        """A chunk of a worker's file: on disk at once, then acknowledged (which frees the worker's window)."""
        self._heard[msg.node_id] = time.monotonic()
        self.runner.send_message("cb_ack", self._receiver().chunk(msg.data), client_id=msg.node_id)

    def _done(self, msg: Message) -> None:
        self._heard[msg.node_id] = time.monotonic()
        self._receiver().done(msg.data)

    def _gone(self, worker: str, quiet_for: float) -> bool:
        """Whether a worker that has not sent its manifest will never send it: Locust found it missing (no
        heartbeat), or it left Locust's roster (stopped, quit or dead) and has said nothing for ``quiet_for`` s."""
        node = next((n for n, w in self.names.items() if w == worker), None)
        if node is None:
            return False  # never said hello: the deadline decides
        client = self.runner.clients.get(node)
        if client is not None:
            return bool(client.state == "missing")
        return time.monotonic() - self._heard.get(node, 0.0) > quiet_for

    def collect(self, timeout: float = 30.0) -> None:
        """At the end of the run: stop every worker (each drains its in-flight ops and writes its final
        files, or ships what they gained since its last send), wait -- bounded -- until all have stopped
        and every shipping worker's manifest is in or that worker is gone, then record who sent what.

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
        rec = self._receiver()
        rec.stopping()
        began = time.monotonic()
        ids = [client.id for client in runner.clients.all]  # Locust forgets a worker once it has stopped
        for client_id in ids:
            runner.server.send_to_client(Message("stop", None, client_id))
        stop_timeout = self.env.stop_timeout or 0
        # a stopped worker is silent while Locust's stop handler sleeps stop_timeout (its acks wait too)
        quiet_for = stop_timeout + 5.0
        deadline = began + stop_timeout + timeout
        while time.monotonic() < deadline:
            waiting = {w for w in self.shippers if not rec.has_manifest(w) and not self._gone(w, quiet_for)}
            if runner.user_count == 0 and not waiting:
                break
            gevent.sleep(0.1)
        waited = time.monotonic() - began
        # Locust's own "quit" only reaches workers it still knows, and it forgets stopped ones:
        # tell each worker to leave; it reads this after its stop handler's pause
        for client_id in ids:
            runner.send_message("cb_bye", None, client_id=client_id)
        gevent.sleep(0.5)  # let the messages leave before the master can exit
        vanished = rec.vanished(self.shippers)
        rec.write(end_wait_s=round(waited, 3))
        if vanished:
            log.error("counterbench: no final files from %s", ", ".join(
                f"{w} (it shipped {rec.status[w]['bytes']} bytes)" for w in vanished))


class WorkerSide:
    """A worker's part: take the run from the master, name itself, report, ship its files."""

    def __init__(self, runner: WorkerRunner, on_run: Callable[[dict[str, Any]], None]) -> None:
        self.runner = runner
        self.shipper: Shipper | None = None
        self._final = False
        self._wake = Event()  # an ack freed the window, or the test stopped
        self._sending = Semaphore()  # one send at a time: the loop's, or the stop handler's
        runner.register_message("cb_run", lambda msg, **_: on_run(msg.data))
        runner.register_message("cb_ack", lambda msg, **_: self._ack(msg.data))
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

    def start_shipping(self, staging: RunFolder, worker: str) -> None:
        """Ship the staged files as they grow, until ``ship`` is called at the test's stop."""
        self.shipper = Shipper(staging, worker, self.runner.send_message,
                               lambda m: log.error("counterbench: shipping: %s", m))
        self._final = False
        gevent.spawn(self._keep_shipping, self.shipper)  # not the test's background: it outlives the stop

    def _keep_shipping(self, shipper: Shipper) -> None:
        """Every second, and whenever an ack frees a full window, send what the files gained; after the
        test's stop, the rest and the manifest."""
        while not shipper.done:
            self._wake.clear()
            try:
                self._send(shipper)
            except Exception as e:  # a broken link (Locust's RPCError) ends the shipping, never the load
                log.error("counterbench: shipping stopped: %s", e)
                return
            self._wake.wait(SEND_EVERY)

    def _send(self, shipper: Shipper) -> None:
        with self._sending:  # a shipper a later test replaced has stopped too
            shipper.send(final=self._final or shipper is not self.shipper)

    def _ack(self, ack: dict[str, Any]) -> None:
        # runs in Locust's receiving greenlet: it only frees the window, the shipping greenlet sends
        if self.shipper is not None and ack.get("worker") == self.shipper.worker:  # not an earlier test's
            self.shipper.ack(ack)
            if self.shipper.blocked:
                self._wake.set()

    def ship(self, staging: RunFolder, worker: str) -> None:
        """The test stopped and its files are closed: send the rest at once as far as the window allows (in
        Locust's stop handler no ack comes in; a worker quitting on a signal gets no later chance), and
        let the shipping greenlet send what the window held back, then the manifest."""
        if self.shipper is None or self.shipper.worker != worker:
            self.start_shipping(staging, worker)
        assert self.shipper is not None
        self._final = True
        try:
            self._send(self.shipper)
        except Exception as e:  # a broken link: the master keeps what came, a prefix of each file
            log.error("counterbench: shipping stopped: %s", e)
        self._wake.set()
