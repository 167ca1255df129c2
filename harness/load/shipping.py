"""Ship a remote worker's files (history, latency and CPU logs) to the master while the run goes, in
chunks over Locust's messages.

Workers on other machines write into a local staging folder (a run folder of their own). About every
second a worker sends what each of its files gained since its last send (``Shipper``); the master
checks each chunk, appends it to its run folder at once and acknowledges it (``Receiver``). When the
test stops the worker sends the rest, then a manifest: each file's size and SHA-256, hashed as its
chunks went out, so the end never reads a file again. The end of a run thus waits for about a second
of data however long the run was, and a worker that dies mid-run leaves on the master a byte prefix
of each of its files: an incomplete history (a torn tail), not an error.

The rules both sides keep:

- A chunk is a file's name, the byte offset it starts at, its bytes and their SHA-256. The master
  takes it only at the offset of the bytes it already holds of that file and with a matching
  SHA-256; otherwise it logs, keeps its copy as it was (still a prefix of the worker's file), takes
  no more of that file, and marks the worker's shipping unverified.
- Backpressure: a worker has at most ``WINDOW_CHUNKS`` chunks and ``WINDOW_BYTES`` bytes sent and
  not yet acknowledged (``cb_ack``), and reads a file ``CHUNK`` bytes at a time, so a backlog never
  sits in memory whole, on either side.
- Files only grow (``shipped_as``): text files are sent up to their last line end while the run
  goes, a file written in place is sent whole at the end, and a file seen to shrink was rewritten
  under the shipper: it is sent no further and the manifest names it.

No Locust here: ``harness.load.distributed`` carries the messages and calls these two classes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal

from harness.core.runfolder import RunFolder

CHUNK = 256 * 1024  # bytes read, sent and acknowledged at a time
WINDOW_CHUNKS = 16  # chunks a worker may have sent ahead of the master's acks
WINDOW_BYTES = 4 * 1024 * 1024  # ... and bytes
SEND_EVERY = 1.0  # seconds between sends while the run goes
_PROBLEMS = 20  # problems kept per worker in shipping.json (each one is logged as well)

# Every file a worker ships today (``RunFolder.shippable``) is only appended to: the history writer opens its
# file "xb", the latency recorder its .hlog and .cpu.csv "x". So each send is what a file gained since the
# last. Text files go up to their last line end, so that the master's copy of a worker lost mid-run ends with
# a whole line (a torn history record reads as an incomplete history; a torn log line would not read at all).
# A file rewritten in place would match SHIPPED_WHOLE: shipped whole at the end.
SHIPPED_TEXT = (".hlog", ".csv", ".jsonl")
SHIPPED_WHOLE: tuple[str, ...] = ()  # fnmatch patterns of shipped names ("metrics/*.json")
ShippedAs = Literal["bytes", "lines", "whole"]

Send = Callable[[str, dict[str, Any]], None]
Log = Callable[[str], None]


def shipped_as(name: str) -> ShippedAs:
    """How a shipped file (``metrics/<worker>.hlog``) goes to the master while the run goes."""
    if any(fnmatch(name, p) for p in SHIPPED_WHOLE):
        return "whole"
    return "lines" if name.endswith(SHIPPED_TEXT) else "bytes"


@dataclass
class _Outgoing:
    """A staged file as the worker ships it."""

    path: Path
    how: ShippedAs
    sent: int = 0  # bytes sent: the next chunk's offset
    sha: Any = field(default_factory=hashlib.sha256)  # of the bytes sent, for the manifest
    broken: str | None = None  # why it is sent no further


class Shipper:
    """The worker's side: chunks of what each staged file gained, within the window of unacknowledged ones."""

    def __init__(self, staging: RunFolder, worker: str, send: Send, log: Log, *, chunk: int = CHUNK,
                 window_chunks: int = WINDOW_CHUNKS, window_bytes: int = WINDOW_BYTES) -> None:
        if not 0 < chunk <= window_bytes or window_chunks < 1:
            raise ValueError("the window must hold at least one chunk")
        self.staging = staging
        self.worker = worker
        self._send = send
        self._log = log
        self.chunk = chunk
        self.window_chunks = window_chunks
        self.window_bytes = window_bytes
        self._files: dict[str, _Outgoing] = {}
        self._unacked: dict[int, int] = {}  # chunk seq -> its bytes
        self._unacked_bytes = 0
        self._seq = 0
        self.blocked = False  # the last send stopped at the window: an ack should send more
        self.done = False  # the manifest went

    @property
    def in_flight(self) -> tuple[int, int]:
        """Chunks and bytes sent and not yet acknowledged."""
        return len(self._unacked), self._unacked_bytes

    def send(self, *, final: bool = False) -> bool:
        """Send what the files gained since the last send, as far as the window allows; with ``final``
        (the test stopped, its files are closed) everything, then the manifest. True once it went."""
        if self.done:
            return True
        for name, path in self.staging.shippable():  # files appear as the test opens them
            if name not in self._files:
                self._files[name] = _Outgoing(path, shipped_as(name))
        self.blocked = False
        for name, out in self._files.items():
            while (n := self._available(name, out, final)) > 0:
                if len(self._unacked) >= self.window_chunks or self._unacked_bytes + n > self.window_bytes:
                    self.blocked = True
                    return False
                data = self._read(name, out, n, final)
                if not data:
                    break
                self._chunk(name, out, data)
        if not final:
            return False
        self._send("cb_done", {"worker": self.worker, "files": {
            name: {"bytes": out.sent, "sha256": out.sha.hexdigest(), **({"error": out.broken} if out.broken else {})}
            for name, out in self._files.items()}})
        self.done = True
        return True

    def ack(self, ack: dict[str, Any]) -> None:
        """The master took (or refused) a chunk: it leaves the window."""
        n = self._unacked.pop(int(ack["seq"]), None)
        if n is not None:
            self._unacked_bytes -= n
        out = self._files.get(str(ack.get("name")))
        if not ack.get("ok") and out is not None and out.broken is None:  # it will refuse the rest too
            self._broken(str(ack.get("name")), out, f"the master refused it: {ack.get('why')}")

    def _broken(self, name: str, out: _Outgoing, why: str) -> None:
        out.broken = why
        self._log(f"{name}: {why}; shipped no further")

    def _available(self, name: str, out: _Outgoing, final: bool) -> int:
        """Bytes to send next from this file (at most a chunk)."""
        if out.broken is not None or (out.how == "whole" and not final):
            return 0
        try:
            size = out.path.stat().st_size
        except OSError as e:
            self._broken(name, out, f"cannot read it: {e}")
            return 0
        if size < out.sent:
            self._broken(name, out, f"it shrank from {out.sent} to {size} bytes: rewritten, not appended")
            return 0
        return min(self.chunk, size - out.sent)

    def _read(self, name: str, out: _Outgoing, n: int, final: bool) -> bytes:
        try:
            with open(out.path, "rb") as f:
                f.seek(out.sent)
                data = f.read(n)
        except OSError as e:
            self._broken(name, out, f"cannot read it: {e}")
            return b""
        if out.how == "lines" and not final:
            end = data.rfind(b"\n") + 1
            if end:
                return data[:end]
            if len(data) < self.chunk:
                return b""  # the line is still being written: it goes whole with a later send
        return data

    def _chunk(self, name: str, out: _Outgoing, data: bytes) -> None:
        seq = self._seq
        self._send("cb_chunk", {"worker": self.worker, "name": name, "seq": seq, "offset": out.sent, "data": data,
                                "sha256": hashlib.sha256(data).hexdigest()})
        self._seq += 1
        out.sent += len(data)
        out.sha.update(data)
        self._unacked[seq] = len(data)
        self._unacked_bytes += len(data)


@dataclass
class _Incoming:
    """A file as the master receives it."""

    worker: str
    path: Path | None  # None: a name the master refuses to write
    held: int = 0  # bytes written: the next chunk's offset
    sha: Any = field(default_factory=hashlib.sha256)  # of the bytes written
    refused: str | None = None  # why the master takes no more of it


class Receiver:
    """The master's side: check each chunk, append it to the run folder at once, check the manifests,
    and keep per worker what arrived (shipping.json)."""

    def __init__(self, folder: RunFolder, log: Log, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.log = log
        self.clock = clock
        self.status: dict[str, dict[str, Any]] = {}
        self._files: dict[str, _Incoming] = {}
        self.stopped_wall: float | None = None  # when the master stopped its workers: the end of the load

    def _status(self, worker: str) -> dict[str, Any]:
        st = self.status.get(worker)
        if st is None:
            st = self.status[worker] = {
                "worker": worker, "files": {}, "bytes": 0, "chunks": 0, "first_chunk_wall": None,
                "last_chunk_wall": None, "bytes_at_stop": None if self.stopped_wall is None else 0,
                "done": False, "verified": None, "vanished": False, "problems": []}
        return st

    def _problem(self, st: dict[str, Any], why: str) -> None:
        st["verified"] = False
        self.log(f"{st['worker']}: {why}")
        if len(st["problems"]) < _PROBLEMS:
            st["problems"].append(why)

    def chunk(self, part: dict[str, Any]) -> dict[str, Any]:
        """Take a chunk (``Shipper._chunk``); returns the ack for its worker."""
        worker, name = str(part.get("worker")), str(part.get("name"))
        st = self._status(worker)
        f = self._files.get(name)
        if f is None:
            try:
                f = _Incoming(worker, self.folder.shipped_file(name))
            except ValueError as e:
                f = _Incoming(worker, None, refused=str(e))
                self._problem(st, str(e))
            self._files[name] = f
        if f.worker != worker:
            why = f"{name}: {f.worker} ships a file of that name"
            self._problem(st, why)
        elif f.refused is not None:
            why = f.refused  # logged once, when it was refused
        elif (taken := self._take(f, part)) is not None:
            f.refused = why = f"{name}: {taken}"
            self._problem(st, why)
        else:
            now = self.clock()
            st["files"][name] = f.held
            st["bytes"] += len(part["data"])
            st["chunks"] += 1
            st["first_chunk_wall"] = st["first_chunk_wall"] or now
            st["last_chunk_wall"] = now
            return {"worker": worker, "seq": part.get("seq"), "name": name, "ok": True}
        return {"worker": worker, "seq": part.get("seq"), "name": name, "ok": False, "why": why}

    def _take(self, f: _Incoming, part: dict[str, Any]) -> str | None:
        """Check a chunk and append it; None when taken, else why not."""
        data, offset = part.get("data"), part.get("offset")
        if not isinstance(data, bytes) or not isinstance(offset, int) or f.path is None:
            return "a malformed chunk"
        if hashlib.sha256(data).hexdigest() != part.get("sha256"):
            return f"the chunk at byte {offset} fails its SHA-256"
        if offset != f.held:
            return f"a chunk at byte {offset}, but the master holds {f.held} bytes of it"
        try:
            f.path.parent.mkdir(parents=True, exist_ok=True)
            with open(f.path, "ab" if f.held else "wb") as out:  # a first chunk replaces a stale file
                out.write(data)
        except OSError as e:
            return f"cannot write it: {e}"
        f.held += len(data)
        f.sha.update(data)
        return None

    def done(self, manifest: dict[str, Any]) -> None:
        """A worker's last word: each file's size and SHA-256 against what the master holds."""
        worker = str(manifest.get("worker"))
        st = self._status(worker)
        listed: dict[str, Any] = manifest.get("files") or {}
        for name, want in listed.items():
            f = self._files.get(name)
            mine = f is not None and f.worker == worker
            held, sha = (f.held, f.sha.hexdigest()) if f is not None and mine else (0, hashlib.sha256().hexdigest())
            if want.get("error"):
                self._problem(st, f"{name}: {want['error']} (on the worker)")
            elif held != want.get("bytes") or sha != want.get("sha256"):
                self._problem(st, f"{name} arrived damaged ({held} of {want.get('bytes')} bytes)")
            elif f is None:  # an empty file sends no chunk
                try:
                    path = self.folder.shipped_file(name)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
                except (ValueError, OSError) as e:
                    self._problem(st, f"{name}: {e}")
        for name, f in self._files.items():
            if f.worker == worker and name not in listed:
                self._problem(st, f"{name} is not in the worker's manifest")
        st.update(done=True, verified=st["verified"] is not False)

    def has_manifest(self, worker: str) -> bool:
        return worker in self.status and bool(self.status[worker]["done"])

    def stopping(self) -> None:
        """The master stops its workers now: what each has shipped so far came while the load ran."""
        self.stopped_wall = self.clock()
        for st in self.status.values():
            st["bytes_at_stop"] = st["bytes"]

    def vanished(self, workers: set[str]) -> list[str]:
        """Workers that said they would ship and never sent their manifest: what they shipped stays,
        a byte prefix of each file. Returns them."""
        gone = sorted(w for w in workers if not self._status(w)["done"])
        for w in gone:
            self.status[w]["vanished"] = True
        return gone

    def write(self, **about: Any) -> None:
        self.folder.write_shipping(list(self.status.values()), stopped_wall=self.stopped_wall, **about)
