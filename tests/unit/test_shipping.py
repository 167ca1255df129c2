"""Shipping while the run goes: the worker's chunker and the master's receiver, over real files.

The link between them is a list of messages: what Locust would carry, in order."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import harness.load.shipping as shipping
from harness.core.ops import Completion, Outcome
from harness.core.runfolder import RunFolder
from harness.history import HistoryWriter, read_history, read_worker_history
from harness.load.shipping import Receiver, Shipper, shipped_as

KIB = 1024


class Link:
    """Messages from one worker, delivered to the master when the test says."""

    def __init__(self, master: Receiver) -> None:
        self.master = master
        self.queue: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.acks: list[dict[str, Any]] = []

    def send(self, kind: str, part: dict[str, Any]) -> None:
        self.queue.append((kind, dict(part)))
        self.sent.append((kind, part))

    def deliver(self, shipper: Shipper | None = None) -> list[dict[str, Any]]:
        """Hand every queued message to the master; its acks go back to ``shipper``."""
        acks = []
        for kind, part in self.queue:
            if kind == "cb_chunk":
                acks.append(self.master.chunk(part))
            else:
                self.master.done(part)
        self.queue = []
        self.acks += acks
        if shipper is not None:
            for a in acks:
                shipper.ack(a)
        return acks

    def chunks(self) -> list[dict[str, Any]]:
        return [p for k, p in self.sent if k == "cb_chunk"]


def pair(tmp_path: Path, **window: int) -> tuple[RunFolder, RunFolder, Shipper, Link, list[str]]:
    staging, master = RunFolder(tmp_path / "staging"), RunFolder(tmp_path / "master")
    logged: list[str] = []
    receiver = Receiver(master, logged.append)
    link = Link(receiver)
    shipper = Shipper(staging, "w1", link.send, logged.append, **window)
    return staging, master, shipper, link, logged


def grow(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.write(data)


def test_a_growing_file_goes_as_it_grows_and_arrives_whole(tmp_path):
    staging, master, shipper, link, logged = pair(tmp_path)
    hist = staging.path / "history" / "w1.cbhist"
    whole = b""
    for i in range(4):
        data = bytes([i]) * (100 + 37 * i)
        grow(hist, data)
        whole += data
        shipper.send()
        link.deliver(shipper)
        # the master's copy is the file as it was at the send: on disk at once
        assert (master.path / "history" / "w1.cbhist").read_bytes() == whole
    offsets = [c["offset"] for c in link.chunks()]
    assert offsets == [0, 100, 237, 411] and all(c["name"] == "history/w1.cbhist" for c in link.chunks())
    assert all(c["sha256"] == hashlib.sha256(c["data"]).hexdigest() for c in link.chunks())
    shipper.send()
    assert link.queue == []  # nothing new, nothing sent
    assert shipper.send(final=True) and shipper.done
    link.deliver(shipper)
    st = link.master.status["w1"]
    assert (st["done"], st["verified"], st["vanished"], st["bytes"], st["chunks"]) == (True, True, False, 622, 4)
    assert st["files"] == {"history/w1.cbhist": 622} and st["first_chunk_wall"] <= st["last_chunk_wall"]
    manifest = link.sent[-1]
    assert manifest == ("cb_done", {"worker": "w1", "files": {"history/w1.cbhist": {
        "bytes": 622, "sha256": hashlib.sha256(whole).hexdigest()}}})
    assert logged == []


def test_the_manifest_is_hashed_as_the_chunks_went_out(tmp_path, monkeypatch):
    """The end does not read the files again: only what they gained since the last send."""
    staging, _master, shipper, link, _ = pair(tmp_path)
    grow(staging.path / "history" / "w1.cbhist", b"x" * 5000)
    shipper.send()
    opened: list[str] = []

    def spy(path: Path, *args: Any) -> Any:
        opened.append(str(path))
        return open(path, *args)

    monkeypatch.setattr(shipping, "open", spy, raising=False)
    shipper.send(final=True)
    assert opened == []  # the worker's side; the master opens its copy to append
    link.deliver(shipper)
    assert link.master.status["w1"]["verified"] is True


def test_the_master_refuses_a_chunk_at_another_offset(tmp_path):
    staging, master, shipper, link, logged = pair(tmp_path)
    grow(staging.path / "history" / "w1.cbhist", b"a" * 300)
    shipper.send()
    link.deliver(shipper)
    copy = master.path / "history" / "w1.cbhist"
    data = b"b" * 50
    ack = link.master.chunk({"worker": "w1", "name": "history/w1.cbhist", "seq": 99, "offset": 250, "data": data,
                             "sha256": hashlib.sha256(data).hexdigest()})
    assert ack["ok"] is False and "at byte 250, but the master holds 300" in ack["why"]
    assert copy.read_bytes() == b"a" * 300  # still a prefix of the worker's file
    st = link.master.status["w1"]
    assert st["verified"] is False and st["bytes"] == 300 and "at byte 250" in st["problems"][0]
    assert len(logged) == 1 and "w1: history/w1.cbhist: a chunk at byte 250" in logged[0]
    # the file takes nothing more, even at the right offset: its copy stays a prefix; logged once
    grow(staging.path / "history" / "w1.cbhist", b"c" * 10)
    shipper.send()
    assert link.deliver(shipper)[0]["ok"] is False
    assert copy.read_bytes() == b"a" * 300 and len(logged) == 2  # the second line: the worker's, once
    shipper.send(final=True)
    link.deliver(shipper)
    assert st["done"] is True and st["verified"] is False


def test_the_master_refuses_a_chunk_whose_sha256_does_not_match(tmp_path):
    staging, master, shipper, link, logged = pair(tmp_path)
    grow(staging.path / "history" / "w1.cbhist", b"a" * 300)
    shipper.send()
    (_kind, part), = link.queue
    part["data"] = b"a" * 299 + b"!"  # damaged on the way
    acks = link.deliver(shipper)
    assert acks[0]["ok"] is False and "fails its SHA-256" in acks[0]["why"]
    assert not (master.path / "history" / "w1.cbhist").exists()
    assert shipper.in_flight == (0, 0)  # a refusal leaves the window too
    shipper.send(final=True)
    link.deliver(shipper)
    st = link.master.status["w1"]
    assert (st["done"], st["verified"], st["bytes"]) == (True, False, 0)
    assert any("fails its SHA-256" in p for p in st["problems"])
    assert any("refused" in m for m in logged)  # the worker says so too


def test_a_manifest_that_disagrees_leaves_the_worker_unverified(tmp_path):
    staging, _master, shipper, link, logged = pair(tmp_path)
    grow(staging.path / "history" / "w1.cbhist", b"a" * 300)
    shipper.send(final=True)
    link.queue[-1][1]["files"]["history/w1.cbhist"]["bytes"] = 301
    link.deliver(shipper)
    st = link.master.status["w1"]
    assert (st["done"], st["verified"]) == (True, False) and "arrived damaged (300 of 301 bytes)" in logged[0]


def test_the_window_bounds_what_is_unacknowledged(tmp_path):
    staging, master, shipper, link, _ = pair(tmp_path, chunk=1 * KIB, window_chunks=3, window_bytes=64 * KIB)
    backlog = bytes(range(256)) * 400  # 100 KiB behind
    grow(staging.path / "history" / "w1.cbhist", backlog)
    assert shipper.send() is False
    assert len(link.queue) == 3 and shipper.in_flight == (3, 3 * KIB) and shipper.blocked
    assert shipper.send() is False and len(link.queue) == 3  # no ack, nothing more
    peak = 0
    while not shipper.done:
        link.deliver(shipper)
        assert not shipper.blocked or shipper.in_flight[0] == 0
        shipper.send(final=True)
        peak = max(peak, shipper.in_flight[0])
        assert shipper.in_flight[0] <= 3
    link.deliver(shipper)
    assert peak == 3 and all(len(c["data"]) <= KIB for c in link.chunks())
    assert (master.path / "history" / "w1.cbhist").read_bytes() == backlog
    assert link.master.status["w1"]["verified"] is True


def test_the_window_in_bytes(tmp_path):
    staging, _master, shipper, link, _ = pair(tmp_path, chunk=1 * KIB, window_chunks=100, window_bytes=2 * KIB + 500)
    grow(staging.path / "history" / "w1.cbhist", b"z" * 10 * KIB)
    shipper.send()
    assert shipper.in_flight == (2, 2 * KIB) and shipper.blocked
    link.deliver(shipper)
    assert shipper.in_flight == (0, 0)


def test_text_files_go_in_whole_lines_while_the_run_goes(tmp_path):
    staging, master, shipper, link, _ = pair(tmp_path)
    log = staging.path / "metrics" / "w1.hlog"
    assert shipped_as("metrics/w1.hlog") == "lines" and shipped_as("history/w1.cbhist") == "bytes"
    grow(log, b"#[header]\nTag=a,0.000,1.000,")
    shipper.send()
    link.deliver(shipper)
    copy = master.path / "metrics" / "w1.hlog"
    assert copy.read_bytes() == b"#[header]\n"
    grow(log, b"2.0,HISTFAAA\nTag=b,1.0")
    shipper.send()
    link.deliver(shipper)
    assert copy.read_bytes() == b"#[header]\nTag=a,0.000,1.000,2.0,HISTFAAA\n"
    shipper.send(final=True)  # the test stopped: everything, a last unfinished line too
    link.deliver(shipper)
    assert copy.read_bytes() == log.read_bytes() and link.master.status["w1"]["verified"] is True


def test_a_line_longer_than_a_chunk_still_goes(tmp_path):
    staging, master, shipper, link, _ = pair(tmp_path, chunk=1 * KIB)
    grow(staging.path / "metrics" / "w1.hlog", b"y" * 3000)
    shipper.send()
    link.deliver(shipper)
    assert (master.path / "metrics" / "w1.hlog").stat().st_size == 2 * KIB


def test_a_file_written_in_place_goes_whole_at_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(shipping, "SHIPPED_WHOLE", ("metrics/*.json",))
    staging, master, shipper, link, _ = pair(tmp_path)
    summary = staging.path / "metrics" / "w1.json"
    summary.parent.mkdir(parents=True)
    summary.write_text('{"n": 1}')
    shipper.send()
    assert link.queue == []
    summary.write_text('{"n": 22}')
    shipper.send(final=True)
    link.deliver(shipper)
    assert (master.path / "metrics" / "w1.json").read_text() == '{"n": 22}'
    assert link.master.status["w1"]["verified"] is True


def test_a_file_that_shrinks_was_rewritten_and_is_named(tmp_path):
    staging, _master, shipper, link, _logged = pair(tmp_path)
    path = staging.path / "metrics" / "w1.cpu.csv"
    grow(path, b"window_start_s,cpu_s\n0.000,0.1\n")
    shipper.send()
    path.write_bytes(b"window_start_s,cpu_s\n")
    shipper.send(final=True)
    link.deliver(shipper)
    st = link.master.status["w1"]
    assert (st["done"], st["verified"]) == (True, False)
    assert "it shrank from 31 to 21 bytes: rewritten, not appended" in st["problems"][0]


def test_an_empty_file_arrives_empty(tmp_path):
    staging, master, shipper, link, _ = pair(tmp_path)
    grow(staging.path / "metrics" / "w1.cpu.csv", b"")
    shipper.send(final=True)
    link.deliver(shipper)
    assert (master.path / "metrics" / "w1.cpu.csv").read_bytes() == b""
    assert link.master.status["w1"]["verified"] is True and link.chunks() == []


def test_the_master_writes_only_shipped_names_and_one_worker_per_file(tmp_path):
    master = RunFolder(tmp_path / "master")
    logged: list[str] = []
    rec = Receiver(master, logged.append)
    data = b"x"
    part = {"seq": 0, "offset": 0, "data": data, "sha256": hashlib.sha256(data).hexdigest()}
    assert rec.chunk({**part, "worker": "w1", "name": "../../etc/passwd"})["ok"] is False
    assert rec.chunk({**part, "worker": "w1", "name": "history/w1.cbhist"})["ok"] is True
    theirs = rec.chunk({**part, "worker": "w2", "name": "history/w1.cbhist", "offset": 1})
    assert theirs["ok"] is False and "w1 ships a file of that name" in theirs["why"]
    assert (master.path / "history" / "w1.cbhist").read_bytes() == b"x"
    assert not (tmp_path / "etc").exists()
    assert rec.status["w1"]["verified"] is False and rec.status["w2"]["verified"] is False


def test_a_worker_that_vanishes_leaves_a_prefix_read_as_an_incomplete_history(tmp_path):
    """A worker killed mid-run: the master keeps each file up to its last send, a byte prefix of the
    worker's file, which the history reader takes as an incomplete history (a torn tail), not an error."""
    staging, master, shipper, link, _ = pair(tmp_path)
    w = HistoryWriter(staging.history_file("w1"), worker="w1", run_id="r", scenario="s")
    for i in range(500):
        w.record("k", "incr", 1, i * 1000, Completion(Outcome.OK, i + 1), i * 1000 + 500)
    w.flush()
    shipper.send()
    link.deliver(shipper)
    for i in range(500, 700):
        w.record("k", "incr", 1, i * 1000, Completion(Outcome.OK, i + 1), i * 1000 + 500)
    w.flush()
    # the worker dies here: it never sends again, nor closes its history
    link.master.stopping()
    gone = link.master.vanished({"w1"})
    link.master.write(end_wait_s=0.1)
    worker_file, copy = staging.history_file("w1"), master.history_file("w1")
    assert copy.stat().st_size < worker_file.stat().st_size
    assert worker_file.read_bytes().startswith(copy.read_bytes())
    got = read_worker_history(copy)
    assert (got.complete, got.op_count) == (False, 500)
    assert len(read_history(master.history_dir).workers) == 1
    sent = master.shipping()["w1"]
    assert gone == ["w1"] and sent["vanished"] is True and sent["done"] is False
    assert sent["bytes"] == sent["bytes_at_stop"] == copy.stat().st_size == sent["files"]["history/w1.cbhist"]
    assert sent["verified"] is None  # what came was checked chunk by chunk; the whole never could be


def test_shipping_json_says_what_came_before_the_stop(tmp_path):
    staging, master, shipper, link, _ = pair(tmp_path)
    clock = iter([10.0, 11.0, 12.0, 13.0])
    link.master.clock = lambda: next(clock)
    grow(staging.path / "history" / "w1.cbhist", b"a" * 100)
    shipper.send()
    link.deliver(shipper)  # 10.0
    link.master.stopping()  # 11.0
    grow(staging.path / "history" / "w1.cbhist", b"b" * 20)
    shipper.send(final=True)
    link.deliver(shipper)  # 12.0
    link.master.write(end_wait_s=1.5)
    doc = (master.shipping_json).read_text()
    sent = master.shipping()["w1"]
    assert (sent["first_chunk_wall"], sent["last_chunk_wall"], sent["bytes_at_stop"], sent["bytes"]) == (
        10.0, 12.0, 100, 120)
    assert '"stopped_wall": 11.0' in doc and '"end_wait_s": 1.5' in doc


def test_the_window_must_hold_a_chunk(tmp_path):
    with pytest.raises(ValueError):
        Shipper(RunFolder(tmp_path), "w1", lambda k, p: None, print, chunk=10, window_bytes=5)


WORKER_SIDE = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import functools, json, sys, time
    from pathlib import Path
    import gevent
    import harness.load.distributed as distributed
    from harness.load.shipping import Receiver, Shipper
    from harness.core.runfolder import RunFolder

    tmp = Path(sys.argv[1])
    distributed.Shipper = functools.partial(Shipper, chunk=1024, window_chunks=2, window_bytes=2048)

    class Msg:
        def __init__(self, data):
            self.data = data

    class Runner:  # what WorkerSide uses of Locust's WorkerRunner
        def __init__(self):
            self.handlers, self.sent = {}, []
        def register_message(self, kind, fn, concurrent=False):
            self.handlers[kind] = fn
        def send_message(self, kind, data=None, client_id=None):
            self.sent.append((kind, data))
        def quit(self):
            pass

    runner = Runner()
    side = distributed.WorkerSide(runner, lambda doc: None)
    staging = RunFolder(tmp / "staging")
    master = Receiver(RunFolder(tmp / "master"), print)
    hist = staging.path / "history" / "w1.cbhist"
    hist.parent.mkdir(parents=True)
    hist.write_bytes(b"a" * 10 * 1024)
    out = {"rounds": []}

    def deliver():
        sent, runner.sent[:] = list(runner.sent), []
        out["rounds"].append([kind for kind, _ in sent])
        for kind, data in sent:
            if kind == "cb_chunk":
                runner.handlers["cb_ack"](msg=Msg(master.chunk(data)))
            elif kind == "cb_done":
                master.done(data)

    side.start_shipping(staging, "w1")
    gevent.sleep(0.1)
    # an earlier test's worker (its acks may come late) frees nothing of this one's window
    runner.handlers["cb_ack"](msg=Msg({"worker": "w0", "seq": 0, "name": "history/w1.cbhist", "ok": True}))
    out["after_foreign_ack"] = side.shipper.in_flight
    t0 = time.monotonic()
    deliver()  # the acks free the window: the shipping greenlet sends more at once, not at its next second
    gevent.sleep(0.1)
    with open(hist, "ab") as f:
        f.write(b"b" * 3000)
    out["before_stop"] = len(runner.sent)
    side.ship(staging, "w1")  # the stop: the window is full, so nothing goes until acks come
    out["at_stop"] = len(runner.sent)
    while not side.shipper.done and time.monotonic() - t0 < 5:
        deliver()
        gevent.sleep(0.05)
    deliver()
    out["seconds"] = time.monotonic() - t0
    out["status"] = master.status["w1"]
    out["same"] = (tmp / "master" / "history" / "w1.cbhist").read_bytes() == hist.read_bytes()
    print(json.dumps(out))
""")


def test_the_worker_sends_as_acks_free_the_window_and_finishes_after_the_stop(tmp_path):
    """distributed.WorkerSide's loop, in a child process patched by gevent as Locust's workers are: an ack
    that frees a full window sends more at once; the stop sends what the window allows, the loop the rest."""
    proc = subprocess.run([sys.executable, "-c", WORKER_SIDE, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    rounds = out["rounds"]
    assert rounds[0] == ["cb_chunk", "cb_chunk"] and rounds[1] == ["cb_chunk", "cb_chunk"]  # 0.1 s apart
    assert out["after_foreign_ack"] == [2, 2048]
    assert out["before_stop"] == out["at_stop"] == 2 and all(r.count("cb_chunk") <= 2 for r in rounds)
    assert rounds[-1][-1] == "cb_done" and sum(r.count("cb_done") for r in rounds) == 1
    assert sum(r.count("cb_chunk") for r in rounds) == 13 and out["seconds"] < 2  # 13,240 bytes in 1 KiB chunks
    assert out["status"]["verified"] is True and out["same"] is True
