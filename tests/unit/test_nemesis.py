"""The nemesis records every outcome in faults.jsonl, and the judge's reading of it gives each fault's fate:
on toy servers that only note what was done to them (the real ones: tests/integration/test_faults.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.config.scenario import Fault
from harness.core.runfolder import RunFolder
from harness.faults.nemesis import Nemesis
from harness.faults.outcomes import outcomes


class ToyServer:
    """Notes every kill, restart, pause and resume; ``broken`` ones raise on each."""

    def __init__(self, *, broken: bool = False) -> None:
        self.done: list[str] = []
        self.broken = broken

    def _do(self, what: str) -> None:
        if self.broken:
            raise RuntimeError(f"cannot {what}")
        self.done.append(what)

    def kill(self) -> None:
        self._do("kill")

    def restart(self) -> None:
        self._do("restart")

    def pause(self) -> None:
        self._do("pause")

    def resume(self) -> None:
        self._do("resume")


def started(tmp_path: Path) -> RunFolder:
    """A run folder whose load started now (its progress file says so)."""
    folder = RunFolder(tmp_path / "run")
    folder.progress_dir.mkdir(parents=True)
    folder.progress_file("host-1-0").write_text(json.dumps({"start_wall": time.time()}))
    return folder


def run(folder: RunFolder, faults: list[Fault], server: ToyServer, *, duration: float = 10, stop_after: float,
        stopped_by: str | None = None) -> Nemesis:
    nemesis = Nemesis(tuple(faults), folder=folder, servers={"target": server}, proxy=None, load_duration=duration)
    nemesis.start()
    time.sleep(stop_after)
    if stopped_by:
        nemesis.load_over(stopped_by)
        time.sleep(0.2)
    nemesis.finish()
    return nemesis


def events(folder: RunFolder) -> list[tuple[str, int]]:
    return [(e["event"], e["fault"]) for e in folder.fault_events() or []]


def test_a_window_opens_and_heals_on_time(tmp_path):
    folder, server = started(tmp_path), ToyServer()
    run(folder, [Fault(at=0.1, action="pause", duration=0.2)], server, stop_after=1.2)
    assert server.done == ["pause", "resume"] and events(folder) == [("begin", 0), ("end", 0)]
    (o,) = outcomes([Fault(at=0.1, action="pause", duration=0.2)], folder.fault_events())
    assert o.status == "healed" and not o.healed_at_load_end
    assert 0.1 <= o.opened_s < 0.6 and 0.3 <= o.healed_s < 1.2


def test_a_window_that_outlasts_the_load_heals_when_it_ends(tmp_path):
    folder, server = started(tmp_path), ToyServer()
    run(folder, [Fault(at=0.1, action="kill", duration=30)], server, stop_after=0.4)
    assert server.done == ["kill", "restart"]
    assert json.loads(folder.faults_jsonl.read_text().splitlines()[-1])["at_load_end"] is True


def test_a_stop_before_a_fault_keeps_it_from_opening_and_says_why(tmp_path):
    folder, server = started(tmp_path), ToyServer()
    faults = [Fault(at=0.1, action="pause", duration=0.1), Fault(at=1.5, action="kill")]
    run(folder, faults, server, stop_after=0.5, stopped_by="SIGTERM")  # ``finish`` ended the nemesis: no kill
    assert server.done == ["pause", "resume"]
    kill = outcomes(faults, folder.fault_events())[1]
    assert (kill.status, kill.stopped_by) == ("load-ended", "SIGTERM") and 0.5 <= kill.load_ended_s < 1.5


def test_a_fault_past_the_planned_end_of_the_load_is_not_opened(tmp_path):
    folder, server = started(tmp_path), ToyServer()
    run(folder, [Fault(at=0.3, action="kill")], server, duration=0.2, stop_after=0.6)
    assert server.done == []
    (o,) = outcomes([Fault(at=0.3, action="kill")], folder.fault_events())
    assert (o.status, o.load_ended_s) == ("load-ended", 0.2)


def test_an_open_that_raises_is_recorded_and_never_healed(tmp_path):
    folder = started(tmp_path)
    nemesis = run(folder, [Fault(at=0.1, action="pause", duration=0.1)], ToyServer(broken=True), stop_after=0.4)
    assert events(folder) == [("open-error", 0)]  # no heal of a window that never opened
    assert nemesis.errors == ["pause at 0.1 s: RuntimeError: cannot pause"]
    (o,) = outcomes([Fault(at=0.1, action="pause", duration=0.1)], folder.fault_events())
    assert o.why() == "pause planned at 0.1 s did not happen: it raised RuntimeError: cannot pause"


def test_a_load_that_never_started_opens_nothing(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    run(folder, [Fault(at=0.1, action="kill")], ToyServer(), stop_after=0.3)
    assert events(folder) == [("not-opened", 0)]
    (o,) = outcomes([Fault(at=0.1, action="kill")], folder.fault_events())
    assert o.status == "load-never-started"
