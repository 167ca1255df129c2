"""Ship a remote worker's files (history, latency log) to the master, in chunks over Locust's messages.

Workers on other machines write into a local staging folder (a run folder of their own); when their
test stops they send every file in order, then a manifest with each file's size and SHA-256. The
master appends the chunks into the run folder and checks the manifest; a worker whose manifest
never comes is named as missing.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from harness.runfolder import RunFolder

CHUNK = 256 * 1024


def chunks(staging: RunFolder, worker: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """("cb_file", part) for every chunk of every file, then ("cb_done", manifest)."""
    manifest: dict[str, dict[str, Any]] = {}
    for name, path in staging.shippable():
        data = path.read_bytes()
        manifest[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for seq, i in enumerate(range(0, max(len(data), 1), CHUNK)):
            yield "cb_file", {"worker": worker, "name": name, "seq": seq,
                              "data": base64.b64encode(data[i:i + CHUNK]).decode()}
    yield "cb_done", {"worker": worker, "files": manifest}


class Receiver:
    """The master's side: reassemble files into the run folder, check manifests."""

    def __init__(self, folder: RunFolder, log: Callable[[str], None]) -> None:
        self.folder = folder
        self.log = log
        self.status: dict[str, dict[str, Any]] = {}

    def _status(self, worker: str) -> dict[str, Any]:
        return self.status.setdefault(worker, {"worker": worker, "files": {}, "done": False, "verified": None})

    def file(self, part: dict[str, Any]) -> None:
        worker = str(part["worker"])
        st = self._status(worker)
        path = self.folder.shipped_file(str(part["name"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb" if part["seq"] == 0 else "ab") as f:
            f.write(base64.b64decode(part["data"]))
        st["files"][part["name"]] = path.stat().st_size

    def done(self, manifest: dict[str, Any]) -> None:
        worker = str(manifest["worker"])
        st = self._status(worker)
        ok = True
        for name, want in manifest["files"].items():
            path = self.folder.shipped_file(name)
            got = path.read_bytes() if path.exists() else b""
            if len(got) != want["bytes"] or hashlib.sha256(got).hexdigest() != want["sha256"]:
                ok = False
                self.log(f"{worker}: {name} arrived damaged ({len(got)} of {want['bytes']} bytes)")
        st.update(done=True, verified=ok)

    def missing(self, workers: set[str]) -> None:
        """Workers that said they would ship and sent nothing."""
        for w in workers - set(self.status):
            self._status(w)

    def write(self) -> None:
        self.folder.write_shipping(list(self.status.values()))
