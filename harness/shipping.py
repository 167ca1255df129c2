"""Ship a remote worker's files (history, latency log) to the master, in chunks over Locust's messages.

Workers on other machines write into a local staging folder; when their test
stops they send every file in order, then a manifest with each file's size and
SHA-256. The master appends the chunks into the run folder and checks the
manifest; a worker whose manifest never comes is named as missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CHUNK = 256 * 1024
SHIPPED = ("history", "metrics")


def chunks(root: Path, worker: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """("cb_file", part) for every chunk of every file, then ("cb_done", manifest)."""
    manifest: dict[str, dict[str, Any]] = {}
    for sub in SHIPPED:
        for path in sorted((root / sub).glob("*")):
            name = f"{sub}/{path.name}"
            data = path.read_bytes()
            manifest[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for seq, i in enumerate(range(0, max(len(data), 1), CHUNK)):
                yield "cb_file", {"worker": worker, "name": name, "seq": seq,
                                  "data": base64.b64encode(data[i:i + CHUNK]).decode()}
    yield "cb_done", {"worker": worker, "files": manifest}


def _safe_name(name: str) -> str:
    sub, _, base = name.partition("/")
    if sub not in SHIPPED or not base or "/" in base or base.startswith("."):
        raise ValueError(f"refusing to write {name!r}")
    return name


class Receiver:
    """The master's side: reassemble files into the run folder, check manifests."""

    def __init__(self, root: Path, log: Callable[[str], None]) -> None:
        self.root = root
        self.log = log
        self.status: dict[str, dict[str, Any]] = {}

    def file(self, part: dict[str, Any]) -> None:
        worker = str(part["worker"])
        st = self.status.setdefault(worker, {"worker": worker, "files": {}, "done": False, "verified": None})
        name = _safe_name(str(part["name"]))
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb" if part["seq"] == 0 else "ab") as f:
            f.write(base64.b64decode(part["data"]))
        st["files"][name] = path.stat().st_size

    def done(self, manifest: dict[str, Any]) -> None:
        worker = str(manifest["worker"])
        st = self.status.setdefault(worker, {"worker": worker, "files": {}, "done": False, "verified": None})
        ok = True
        for name, want in manifest["files"].items():
            path = self.root / _safe_name(name)
            got = path.read_bytes() if path.exists() else b""
            if len(got) != want["bytes"] or hashlib.sha256(got).hexdigest() != want["sha256"]:
                ok = False
                self.log(f"{worker}: {name} arrived damaged ({len(got)} of {want['bytes']} bytes)")
        st.update(done=True, verified=ok)

    def write(self) -> None:
        (self.root / "shipping.json").write_text(json.dumps(
            {"schema_version": 1, "workers": list(self.status.values())}, indent=2) + "\n")
