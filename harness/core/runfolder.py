"""The run folder: every path and every file format of what one run leaves behind.

Each stage reads only what the stage before it wrote, and finds it here:

    reports/<run-id>/
      run.json          scenario as resolved, target, keys, environment, times, workers (credentials redacted)
      state.json        initial values as set, final values as read
      history/          one history per load process: <worker>.cbhist (harness.history; .jsonl before version 2)
      metrics/          <worker>.hlog latency histograms per 1 s window and tag; <worker>.cpu.csv its own CPU;
                        windows.csv the report's merge
      progress/         <worker>.json each local load process's figures, refreshed every second;
                        remote/<worker>.json a remote worker's, kept by the master; master.json its workers
      faults.jsonl      the nemesis's events: each planned fault opened, healed, failed or not opened, and why
      shipping.json     what each remote worker sent the master while the run went, and whether it arrived whole
      resolutions.json  uncertain ops looked up after the run by their idempotency keys: applied or not
      clocks.json       a distributed run's clock samples: the master's clock against each worker's
      locust.log, locust.json, locust.out   Locust's own log, final stats and output
      verdict.json      verdict, totals, per-check results with evidence
      summary.csv, steps.csv, *.png, report.html   the report

A load process is named ``<host>-<pid>-<test>``: its files carry the name, and a local one's pid is
read back from it (``worker_pid``) to make sure no load process outlives its run.

Every JSON file counterbench writes carries ``schema_version`` and goes through
``harness.core.secrets.clean``: no credential reaches the folder.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from secrets import token_hex
from typing import TYPE_CHECKING, Any

from harness.core.errors import RunFolderError
from harness.core.secrets import clean

if TYPE_CHECKING:
    from harness.config.scenario import Fault, Scenario

# Version history of run.json, state.json, verdict.json, shipping.json and progress files:
#   1: first version (verdict.json has since gained ``faults``: older verdicts lack it, "not recorded"; shipping.json
#      ``stopped_wall``, ``end_wait_s`` and, per worker, what came when: older ones lack them)
SCHEMA_VERSION = 1
# Version history of faults.jsonl (one event a line, each with its own schema_version):
#   1: ``begin`` and ``end`` of each window (action, server, at, duration, wall-clock time)
#   2: every outcome, each with ``time`` (wall clock) and ``t`` (s since the load's start), per fault
#      (``fault``: its place in the scenario's list): ``begin``, ``end`` (``at_load_end``), ``open-error``
#      and ``heal-error`` (``error``), ``not-opened`` (``why``: load-ended, load-never-started; ``load_ended_s``)
FAULTS_SCHEMA_VERSION = 2
SHIPPED = ("history", "metrics")  # the subfolders a remote worker ships to its master
_WORKER = re.compile(r"^(?P<host>.+)-(?P<pid>\d+)-(?P<test>\d+)$")


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
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}-{token_hex(2)}"


def worker_name(test: int) -> str:
    """This process's name as a load process of its ``test``-th test."""
    return f"{socket.gethostname()}-{os.getpid()}-{test}"


def worker_pid(worker: str) -> int | None:
    """The pid in a load process's name (None for a name of another shape)."""
    m = _WORKER.match(worker)
    return int(m.group("pid")) if m else None


def _safe(worker: str) -> str:
    """A worker name from the network becomes a file name: it may not leave its folder."""
    if not worker or "/" in worker or "\\" in worker or worker.startswith(".") or len(worker) > 200:
        raise ValueError(f"refusing a worker name {worker[:40]!r}")
    return worker


def write_json(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """Atomically (readers poll some of these files while they are rewritten), versioned, cleaned of
    credentials; returns what was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = clean({"schema_version": SCHEMA_VERSION, **doc})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return written


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

    # --- files of the run -------------------------------------------------------------------------

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
    def faults_jsonl(self) -> Path:
        return self.path / "faults.jsonl"

    @property
    def shipping_json(self) -> Path:
        return self.path / "shipping.json"

    @property
    def resolutions_json(self) -> Path:
        return self.path / "resolutions.json"

    @property
    def clocks_json(self) -> Path:
        return self.path / "clocks.json"

    @property
    def locust_log(self) -> Path:
        return self.path / "locust.log"

    @property
    def locust_out(self) -> Path:
        return self.path / "locust.out"

    @property
    def locust_json_prefix(self) -> Path:
        """What Locust's ``--json-file`` takes: it writes ``locust.json``."""
        return self.path / "locust"

    @property
    def summary_csv(self) -> Path:
        return self.path / "summary.csv"

    @property
    def steps_csv(self) -> Path:
        return self.path / "steps.csv"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    @property
    def windows_csv(self) -> Path:
        return self.metrics_dir / "windows.csv" if self.metrics_dir.is_dir() else self.path / "windows.csv"

    # --- per load process ---------------------------------------------------------------------------

    @property
    def history_dir(self) -> Path:
        return self.path / "history"

    @property
    def metrics_dir(self) -> Path:
        return self.path / "metrics"

    @property
    def progress_dir(self) -> Path:
        return self.path / "progress"

    def history_file(self, worker: str) -> Path:
        from harness.history.format import history_file

        return history_file(self.history_dir, _safe(worker))

    def latency_log(self, worker: str) -> Path:
        return self.metrics_dir / f"{_safe(worker)}.hlog"

    def cpu_log(self, worker: str) -> Path:
        return self.metrics_dir / f"{_safe(worker)}.cpu.csv"

    def latency_logs(self) -> list[Path]:
        return sorted(self.metrics_dir.glob("*.hlog")) if self.metrics_dir.is_dir() else []

    def cpu_logs(self) -> list[Path]:
        return sorted(self.metrics_dir.glob("*.cpu.csv")) if self.metrics_dir.is_dir() else []

    def progress_file(self, worker: str) -> Path:
        return self.progress_dir / f"{_safe(worker)}.json"

    def remote_progress_file(self, worker: str) -> Path:
        """Where the master keeps a remote worker's latest figures (the name comes over the network)."""
        return self.progress_dir / "remote" / f"{_safe(worker)}.json"

    @property
    def roster_file(self) -> Path:
        return self.progress_dir / "master.json"

    def progress_files(self) -> list[Path]:
        """Every load process's latest figures: this machine's, and other machines' the master keeps."""
        local = [p for p in self.progress_dir.glob("*.json") if worker_pid(p.stem) is not None]
        return sorted(local) + sorted((self.progress_dir / "remote").glob("*.json"))

    def local_worker_pids(self) -> set[int]:
        """The pids of this machine's load processes of this run (from their progress files)."""
        return {pid for p in self.progress_dir.glob("*.json") if (pid := worker_pid(p.stem)) is not None}

    def progress(self) -> dict[str, dict[str, Any]]:
        """Every load process's latest figures, by its file's name (a file being replaced now is skipped)."""
        docs = {}
        for f in self.progress_files():
            try:
                docs[f.stem] = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
        return docs

    def roster(self) -> dict[str, Any] | None:
        """The master's view of its workers (distributed runs only)."""
        try:
            return dict(json.loads(self.roster_file.read_text()))
        except (OSError, ValueError):
            return None

    def load_started(self) -> float | None:
        """Wall-clock start of the load, as the earliest load process reported it."""
        starts = []
        for doc in self.progress().values():
            try:
                starts.append(float(doc["start_wall"]))
            except (KeyError, TypeError, ValueError):
                continue
        return min(starts) if starts else None

    # --- faults and shipping --------------------------------------------------------------------

    def record_fault(self, *, event: str, wall: float, t: float | None, fault: int | None = None,
                     planned: Fault | None = None, **detail: str | float | bool | None) -> None:
        """A nemesis event appended to faults.jsonl (FAULTS_SCHEMA_VERSION above): ``fault`` the planned
        fault's place in the scenario's list, ``wall`` the wall clock, ``t`` seconds since the load started."""
        which = {} if planned is None else {"fault": fault, "action": planned.action, "server": planned.server,
                                            "at": planned.at, "duration": planned.duration}
        line = {"schema_version": FAULTS_SCHEMA_VERSION, "event": event, **which, "time": wall,
                "t": None if t is None else round(t, 3), **detail}
        with open(self.faults_jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps(clean(line)) + "\n")  # an error's text may quote a URL with its credentials

    def fault_events(self) -> list[dict[str, Any]] | None:
        """faults.jsonl's events in order (versions 1 and 2); None when the run has no faults.jsonl."""
        if not self.faults_jsonl.exists():
            return None
        events = []
        for n, line in enumerate(self.faults_jsonl.read_text(encoding="utf-8").splitlines(), 1):
            try:
                rec = json.loads(line)
                if rec.get("schema_version", 1) in (1, FAULTS_SCHEMA_VERSION) and isinstance(rec["event"], str):
                    events.append(rec)
                    continue
            except (ValueError, AttributeError, KeyError):
                pass
            raise RunFolderError(f"{self.faults_jsonl}:{n}: not a fault event of version 1 or {FAULTS_SCHEMA_VERSION}")
        return events

    def write_shipping(self, workers: list[dict[str, Any]], **about: Any) -> None:
        write_json(self.shipping_json, {"workers": workers, **about})  # about: the end as the master saw it

    def shipping(self) -> dict[str, dict[str, Any]]:
        """What each remote worker sent, by worker (empty without remote workers)."""
        doc = read_versioned(self.shipping_json, SCHEMA_VERSION, RunFolderError) if self.shipping_json.exists() else {}
        return {w["worker"]: w for w in doc.get("workers", [])}

    def shipped_file(self, name: str) -> Path:
        """Where a file a worker ships (``history/<worker>.cbhist``) goes; anything else is refused."""
        sub, _, base = name.partition("/")
        if sub not in SHIPPED or not base:
            raise ValueError(f"refusing to write {name!r}")
        return self.path / sub / _safe(base)

    def shippable(self) -> list[tuple[str, Path]]:
        """(name, path) of every file a worker ships, in order."""
        return [(f"{sub}/{p.name}", p) for sub in SHIPPED for p in sorted((self.path / sub).glob("*")) if p.is_file()]

    def write_resolutions(self, *, asked: int, applied: dict[str, dict[int, int]], not_applied: dict[str, list[int]],
                          errors: list[str], skipped: int) -> None:
        """What the lookups said of each uncertain op (by worker and op id)."""
        write_json(self.resolutions_json, {
            "asked": asked, "skipped": skipped, "errors": errors[:20], "error_count": len(errors),
            "workers": {w: {"applied": [[op, v] for op, v in sorted(applied.get(w, {}).items())],
                            "not_applied": sorted(not_applied.get(w, []))}
                        for w in sorted(set(applied) | set(not_applied))}})

    def resolutions(self) -> dict[str, Any] | None:
        """resolutions.json, or None when no op was looked up."""
        if not self.resolutions_json.exists():
            return None
        return read_versioned(self.resolutions_json, SCHEMA_VERSION, RunFolderError)

    def write_clocks(self, *, anchor_wall_ns: int, anchor_monotonic_ns: int,
                     samples: dict[str, list[tuple[int, int, int]]]) -> None:
        """The master's clock (its anchors) and, by worker, samples (master monotonic ns when asked,
        when answered, the worker's monotonic ns in between)."""
        write_json(self.clocks_json, {"anchor_wall_ns": anchor_wall_ns, "anchor_monotonic_ns": anchor_monotonic_ns,
                                      "workers": {w: [list(s) for s in ss] for w, ss in sorted(samples.items())}})

    def clocks(self) -> dict[str, Any] | None:
        """clocks.json, or None when no clock was sampled (a run on one machine)."""
        if not self.clocks_json.exists():
            return None
        return read_versioned(self.clocks_json, SCHEMA_VERSION, RunFolderError)

    # --- run.json, state.json, verdict.json -----------------------------------------------------

    def read(self, path: Path) -> dict[str, Any]:
        if not path.exists():
            raise RunFolderError(f"{path} is missing: {self.path} is not a finished run folder")
        return read_versioned(path, SCHEMA_VERSION, RunFolderError)

    def write(self, path: Path, doc: dict[str, Any]) -> dict[str, Any]:
        """Write atomically, so a reader never sees half a file; credentials never reach it
        (``harness.core.secrets.clean``). Returns what was written."""
        return write_json(path, doc)

    def scenario(self) -> Scenario:
        """The scenario run.json records (as resolved, credentials redacted), validated again."""
        from pydantic import ValidationError

        from harness.config.scenario import Scenario

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
