"""The run folder: what each stage writes and the next one reads.

    reports/<run-id>/
      run.json        scenario as resolved, target (redacted), keys, environment, times
      state.json      initial values as set, final values as read
      history/        one history per worker (<worker>.cbhist, harness.history; .jsonl before version 2)
      locust.log, locust.json   Locust's own log and final stats
      verdict.json    verdict, totals, per-check results with evidence
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import RunFolderError
from harness.secrets import clean

if TYPE_CHECKING:
    from harness.config import Scenario

# Version history of run.json, state.json and verdict.json:
#   1: first version
SCHEMA_VERSION = 1


def read_versioned(path: Path, version: int, error: type[Exception]) -> dict[str, Any]:
    """A JSON object file of the given schema_version; anything else raises ``error``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise error(f"{path}: cannot read: {e}") from e
    found = doc.get("schema_version") if isinstance(doc, dict) else None
    if found != version:
        raise error(f"{path}: schema_version {found!r} is not supported (this counterbench reads {version})")
    return doc  # type: ignore[no-any-return]


def new_run_id(scenario: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}-{secrets.token_hex(2)}"


@dataclass(frozen=True, kw_only=True)
class State:
    """state.json: every key's initial value as set, and its final value as read (None: not read)."""

    initial: dict[str, int]
    final: dict[str, int | None] | None


def _int_map(doc: Any, what: str, *, nullable: bool) -> dict[str, Any]:
    if not isinstance(doc, dict) or not all(
            isinstance(k, str) and (type(v) is int or (nullable and v is None)) for k, v in doc.items()):
        raise ValueError(f"{what}: a mapping of key -> integer{' or null' if nullable else ''}")
    return doc


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def state_json(self) -> Path:
        return self.path / "state.json"

    @property
    def verdict_json(self) -> Path:
        return self.path / "verdict.json"

    @property
    def history_dir(self) -> Path:
        return self.path / "history"

    @property
    def locust_log(self) -> Path:
        return self.path / "locust.log"

    def read(self, path: Path) -> dict[str, Any]:
        if not path.exists():
            raise RunFolderError(f"{path} is missing: {self.path} is not a finished run folder")
        return read_versioned(path, SCHEMA_VERSION, RunFolderError)

    def write(self, path: Path, doc: dict[str, Any]) -> dict[str, Any]:
        """Write atomically, so a reader never sees half a file; credentials never reach it
        (``harness.secrets.clean``). Returns what was written."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        written: dict[str, Any] = clean({"schema_version": SCHEMA_VERSION, **doc})
        tmp.write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return written

    def scenario(self) -> Scenario:
        """The scenario run.json records (as resolved, credentials redacted), validated again."""
        from pydantic import ValidationError

        from harness.config import Scenario

        run = self.read(self.run_json)
        try:
            return Scenario.model_validate(run.get("scenario"))
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RunFolderError(f"{self.run_json}: scenario.{where}: {first['msg']} ({e.error_count()} problem(s)); "
                                 "was it written by another counterbench?") from None

    def state(self) -> State:
        """state.json, validated: a missing or malformed field is a RunFolderError naming it."""
        doc = self.read(self.state_json)
        try:
            if "initial" not in doc:
                raise ValueError("initial: required key is missing")
            return State(initial=_int_map(doc["initial"], "initial", nullable=False),
                         final=None if doc.get("final") is None else _int_map(doc["final"], "final", nullable=True))
        except ValueError as e:
            raise RunFolderError(f"{self.state_json}: {e}") from None

    def update(self, path: Path, **fields: Any) -> None:
        doc = self.read(path)
        doc.update(fields)
        doc.pop("schema_version")
        self.write(path, doc)


def environment() -> dict[str, Any]:
    """Versions and host facts, recorded with every result."""
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {
        "counterbench": version("counterbench"),
        "locust": version("locust"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
    }
