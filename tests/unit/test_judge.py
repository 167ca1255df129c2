"""The check stage on a hand-built version-1 run folder, offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.core.errors import RunFolderError
from harness.core.runfolder import RunFolder
from harness.judge import judge

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run-v1"


@pytest.fixture
def folder(tmp_path: Path) -> RunFolder:
    shutil.copytree(FIXTURE, tmp_path / "run")
    return RunFolder(tmp_path / "run")


@pytest.fixture(autouse=True, params=["in memory", "streamed"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here twice: the history held in memory, and streamed wherever it can be (any size)."""
    if request.param == "streamed":
        monkeypatch.setattr("harness.judge.STREAM_ABOVE", 0)
    return str(request.param)


def edit(path: Path, **fields: object) -> None:
    doc = json.loads(path.read_text())
    doc.update(fields)
    path.write_text(json.dumps(doc))


def test_v1_folder_passes(folder):
    # 1 ok, 1 fail, 1 never completed: final 2 is within [1, 2]
    v = judge(folder)
    assert v["verdict"] == "pass"
    assert v["totals"] == {"ops": 3, "reads": 0, "ok": 1, "fail": 1, "indeterminate": 1, "keys": 1, "lost": 0,
                           "duplicated": 0, "duplicate_values": 0, "oversold": 0, "out_of_order": 0,
                           "overlapping": 0, "bad_reads": 0, "phantoms": 0, "unexplained": 0, "retried_ops": 0,
                           "retry_attempts": 0}
    assert json.loads(folder.verdict_json.read_text())["schema_version"] == 1


def test_final_outside_bounds_fails(folder):
    edit(folder.state_json, final={"cb:r:counter": 0})
    v = judge(folder)
    assert v["verdict"] == "fail" and v["totals"]["lost"] == 1


def test_final_never_read_is_unknown(folder):
    edit(folder.state_json, final=None)
    v = judge(folder)
    assert v["verdict"] == "unknown" and "never read" in v["reason"]


def test_crashed_load_process_is_unknown(folder):
    edit(folder.run_json, load_exit_code=2)
    v = judge(folder)
    assert v["verdict"] == "unknown" and "exited with code 2" in v["reason"]


def test_missing_history_is_unknown(folder):
    shutil.rmtree(folder.history_dir)
    v = judge(folder)
    assert v["verdict"] == "unknown" and "no history" in v["reason"]


def test_unknown_run_json_version_is_refused(folder):
    edit(folder.run_json, schema_version=7)
    with pytest.raises(RunFolderError, match="schema_version 7"):
        judge(folder)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="not a finished run folder"):
        judge(RunFolder(tmp_path))


# --- version 2 histories: the same verdict as version 1 ------------------------------------------

FIXTURE_V2 = Path(__file__).resolve().parents[1] / "fixtures" / "run-v2"


def copy(src: Path, dest: Path, *, metrics: bool = True) -> RunFolder:
    shutil.copytree(src, dest)
    if not metrics:
        shutil.rmtree(dest / "metrics")
    return RunFolder(dest)


@pytest.mark.parametrize("metrics", [True, False])
def test_v2_fixture_gives_the_v1_fixture_verdict(tmp_path, metrics):
    v1 = judge(copy(FIXTURE, tmp_path / "v1", metrics=metrics))
    v2 = judge(copy(FIXTURE_V2, tmp_path / "v2", metrics=metrics))
    assert v2 == v1
    assert v2["verdict"] == "pass" and v2["totals"]["ops"] == 3
    if not metrics:  # latency from the history: one ok op of 240 us over 250 us of invokes
        assert v2["latency"]["p50"] == v2["latency"]["max"] == 0.24
        assert v2["latency"]["ok_ops_per_s"] == pytest.approx(4000)


def written_run(tmp_path: Path, name: str, *, lose: int = 0, repeat: int = 0) -> RunFolder:
    """A run folder whose history the real writer wrote: two workers, three keys, every outcome."""
    from harness.core.ops import Completion, Outcome
    from harness.history import HistoryWriter, history_file

    folder = copy(FIXTURE, tmp_path / name, metrics=False)
    shutil.rmtree(folder.history_dir)
    keys = ["cb:r:a", "cb:r:b", "cb:r:ü"]
    value = dict.fromkeys(keys, 0)
    last = dict.fromkeys(keys, 0)
    for w in range(2):
        writer = HistoryWriter(history_file(folder.history_dir, f"w{w}"), worker=f"w{w}", run_id="r",
                               scenario="redis-counter")
        for i in range(300):
            key = keys[(i * 7 + w) % 3]
            op = writer.invoke(key, "incr", 1)
            if i % 10 == 3:
                writer.complete(op, Completion.fail("not sent"))
            elif i % 10 == 7:  # the client gave up after 2 attempts; this one was not applied
                writer.complete(op, Completion(Outcome.INDETERMINATE, None, "timeout", 2))
            elif i % 50 == 9:
                pass  # never completed, and never applied
            else:
                value[key] += 1
                # a repeated value: two ops read the same state (a retry made the total look right)
                last[key] = last[key] if repeat and i % 100 == 50 else value[key]
                writer.complete(op, Completion.ok(last[key]))
        writer.close()
    value[keys[1]] -= lose
    edit(folder.state_json, initial=dict.fromkeys(keys, 0), final=value)
    return folder


def as_v1(folder: RunFolder, dest: Path) -> RunFolder:
    """The same run with its history rewritten as version-1 files."""
    from harness.history import history_files, read_worker_history
    from tests.unit.histories import write_v1

    out = copy(folder.path, dest)
    for p in history_files(out.history_dir):
        h = read_worker_history(p)
        p.unlink()
        write_v1(out.history_dir / f"{h.worker}.jsonl", h.worker, h.ops)
    return out


@pytest.mark.parametrize(("lose", "repeat", "want"), [(0, 0, "pass"), (3, 0, "fail"), (0, 1, "fail")])
def test_v2_written_run_judged_as_its_v1_twin(tmp_path, lose, repeat, want):
    v2_folder = written_run(tmp_path, "v2", lose=lose, repeat=repeat)
    v2 = judge(v2_folder)
    v1 = judge(as_v1(v2_folder, tmp_path / "v1"))
    assert v2["verdict"] == v1["verdict"] == want
    assert v2["totals"] == v1["totals"]
    assert v2["checks"] == v1["checks"]
    assert v2["latency"] == v1["latency"]
    assert [w["ops"] for w in v2["history"]["workers"]] == [300, 300]
    assert v2["totals"]["retried_ops"] == 60 and v2["totals"]["retry_attempts"] == 60
    if lose:
        assert v2["totals"]["lost"] == 3 and "3 lost" in v2["reason"]
    if repeat:
        assert v2["totals"]["duplicate_values"] == 6 and "unique-values" in v2["reason"]


def test_v2_incomplete_history_is_unknown(tmp_path):
    folder = written_run(tmp_path, "run")
    p = next(folder.history_dir.iterdir())
    p.write_bytes(p.read_bytes()[:-40])  # the footer and part of the last record are gone
    v = judge(folder)
    assert v["verdict"] == "unknown" and "torn" in v["reason"]


# --- an incomplete or damaged history: fail only where no missing op could explain it ------------

def seats_run(tmp_path: Path, *, taken: int, final: int, capacity: int = 50) -> RunFolder:
    """A seats run whose one worker took ``taken`` seats (each acknowledged), the store holding ``final``."""
    from harness.core.ops import Completion
    from harness.history import HistoryWriter, history_file

    folder = copy(FIXTURE, tmp_path / "seats", metrics=False)
    shutil.rmtree(folder.history_dir)
    run = json.loads(folder.run_json.read_text())
    run["scenario"]["workload"] = {**run["scenario"]["workload"], "kind": "seats", "initial": capacity}
    run["scenario"]["checks"] = ["bounds", "unique-values", "no-oversell"]
    run["keys"] = ["cb:r:seats"]
    folder.run_json.write_text(json.dumps(run))
    edit(folder.state_json, initial={"cb:r:seats": capacity}, final={"cb:r:seats": final})
    w = HistoryWriter(history_file(folder.history_dir, "w0"), worker="w0", run_id="r", scenario="redis-seats")
    for i in range(taken):
        w.complete(w.invoke("cb:r:seats", "decr_if_positive", -1), Completion.ok(capacity - i - 1))
        if i % 10 == 4:
            w.flush()  # a block per 10 ops, as a process writes them over time
    w.close()
    return folder


def last_block(path: Path) -> int:
    """The byte offset of a version-5 history's last block."""
    from harness.history.format import FRAME_V5

    data = path.read_bytes()
    at = data.index(b"\n") + 1
    while True:
        length = FRAME_V5.unpack_from(data, at)[3]
        if at + FRAME_V5.size + length >= len(data):
            return at
        at += FRAME_V5.size + length


def test_seats_run_without_its_history_is_unknown_never_lost(tmp_path, capsys):
    from harness.cli import main

    folder = seats_run(tmp_path, taken=50, final=0)
    assert judge(folder)["verdict"] == "pass"
    shutil.rmtree(folder.history_dir)
    v = judge(folder)
    assert v["verdict"] == "unknown", v["reason"]
    assert v["totals"]["lost"] == 0 and v["totals"]["unexplained"] == 50
    capsys.readouterr()
    assert main(["check", str(folder.path)]) == 2
    out = capsys.readouterr().out
    # the terminal states no finding, and labels the gap as unexplained rather than lost
    assert "UNKNOWN" in out and "lost 0" not in out and "lost 50" not in out
    assert "not decided" in out and "50 beyond the range the recorded ops explain" in out


def test_seats_run_with_a_damaged_history_keeps_what_came_before(tmp_path):
    folder = seats_run(tmp_path, taken=50, final=0)
    p = next(folder.history_dir.iterdir())
    data = bytearray(p.read_bytes())
    at = last_block(p)  # the last block (5 ops and the footer), garbled
    data[-12:] = b"\xff" * 12
    p.write_bytes(bytes(data))
    v = judge(folder)
    assert v["verdict"] == "unknown", v["reason"]
    assert "damaged" in v["reason"] and f"block at byte {at}" in v["reason"]
    assert v["totals"]["ok"] == 45  # what could be read was judged, not thrown away
    assert v["totals"]["lost"] == 0


def test_seats_run_with_a_damaged_history_still_proves_lost_reservations(tmp_path):
    # over 50 seats acknowledged before the damage, yet the store still holds 70 of 100: no missing take
    # can put seats back
    folder = seats_run(tmp_path, taken=60, final=70, capacity=100)
    p = next(folder.history_dir.iterdir())
    data = bytearray(p.read_bytes())
    data[-12:] = b"\xff" * 12  # the last block (5 ops and the footer)
    p.write_bytes(bytes(data))
    v = judge(folder)
    assert v["verdict"] == "fail", v["reason"]
    assert v["totals"]["lost"] > 0


def test_a_load_process_that_wrote_no_history_makes_it_unknown_not_applied_twice(tmp_path):
    folder = written_run(tmp_path, "run")
    edit(folder.run_json, processes=2)
    assert judge(folder)["verdict"] == "pass"
    next(folder.history_dir.iterdir()).unlink()  # one of the two processes left no file
    v = judge(folder)
    assert v["verdict"] == "unknown", v["reason"]
    assert "1 of 2 load processes wrote no history" in v["reason"]
    assert v["totals"]["duplicated"] == 0 and v["totals"]["unexplained"] > 0


def test_a_damaged_counter_history_still_proves_loss(tmp_path):
    folder = written_run(tmp_path, "run")
    final = json.loads(folder.state_json.read_text())["final"]
    edit(folder.state_json, final={**final, "cb:r:b": 0})  # every increment of b gone
    p = next(folder.history_dir.iterdir())
    data = bytearray(p.read_bytes())
    data[len(data) // 2:len(data) // 2 + 32] = b"\xff" * 32
    p.write_bytes(bytes(data))
    v = judge(folder)
    assert v["verdict"] == "fail" and v["totals"]["lost"] > 0


# --- planned faults: part of the verdict, rebuilt from the run folder alone ----------------------

KILL = {"at": 3, "action": "kill", "duration": 1}
START = 1795784679.0


def with_faults(folder: RunFolder, faults: list[dict[str, object]], events: list[dict[str, object]] | None,
                **load: object) -> RunFolder:
    """The fixture's run with these faults planned in run.json and these faults.jsonl events (None: no file)."""
    run = json.loads(folder.run_json.read_text())
    run["scenario"]["faults"] = faults
    run["scenario"]["load"].update(load)
    folder.run_json.write_text(json.dumps(run))
    if events is not None:
        folder.faults_jsonl.write_text("".join(json.dumps(e) + "\n" for e in events))
    return folder


def event(name: str, t: float | None = None, version: int = 2, **extra: object) -> dict:
    """An event about the one planned fault, as the nemesis writes it (version 1 names no fault)."""
    about = {**({"fault": 0} if version == 2 else {}), **KILL, "server": "target"}
    return {"schema_version": version, "event": name, **about, "time": START + (t or 0.0),
            **({"t": t} if version == 2 else {}), **extra}


def test_a_run_without_faults_lists_none_and_passes(folder):
    v = judge(folder)
    assert v["faults"] == [] and v["verdict"] == "pass"


def test_a_fault_that_opened_and_healed_keeps_the_pass(folder):
    with_faults(folder, [KILL], [event("begin", 3.002), event("end", 4.21)])
    v = judge(folder)
    assert v["verdict"] == "pass", v["reason"]
    (f,) = v["faults"]
    assert (f["action"], f["at"], f["duration"], f["status"], f["opened_s"], f["healed_s"], f["why"]) == (
        "kill", 3.0, 1.0, "healed", 3.002, 4.21, None)


def test_a_fault_planned_after_the_load_ended_makes_a_pass_unknown(folder):
    with_faults(folder, [KILL], [event("not-opened", 2.0, why="load-ended", load_ended_s=2.0, stopped_by=None)])
    v = judge(folder)
    assert v["verdict"] == "unknown"
    assert v["reason"] == "kill planned at 3 s did not happen: the load ended at 2 s"
    assert v["faults"][0]["status"] == "load-ended" and v["faults"][0]["happened"] is False


def test_a_fault_whose_open_raised_makes_a_pass_unknown_naming_the_error(folder):
    with_faults(folder, [KILL], [event("open-error", 3.0, error="StackError: redis-server is not running")])
    v = judge(folder)
    assert v["verdict"] == "unknown" and "it raised StackError: redis-server is not running" in v["reason"]


def test_planned_faults_without_a_faults_file_make_a_pass_unknown(folder):
    with_faults(folder, [KILL], None)
    v = judge(folder)
    assert v["verdict"] == "unknown" and "there is no faults.jsonl" in v["reason"]


def test_a_fail_stays_a_fail_when_a_fault_did_not_happen(folder):
    with_faults(folder, [KILL], [event("not-opened", None, why="load-never-started")])
    edit(folder.state_json, final={"cb:r:counter": 0})
    v = judge(folder)
    assert v["verdict"] == "fail" and v["totals"]["lost"] == 1
    assert v["faults"][0]["why"] == "kill planned at 3 s did not happen: the load never started"


def test_a_version_1_faults_file_is_still_read_with_times_from_the_progress_files(folder):
    with_faults(folder, [KILL], [event("begin", 3.0, version=1), event("end", 4.5, version=1)])
    (folder.progress_dir).mkdir()
    (folder.progress_dir / "fixture-1-0.json").write_text(json.dumps({"start_wall": START}))
    v = judge(folder)
    assert v["verdict"] == "pass", v["reason"]
    assert (v["faults"][0]["status"], v["faults"][0]["opened_s"], v["faults"][0]["healed_s"]) == ("healed", 3.0, 4.5)


def test_an_older_run_that_planned_a_fault_after_its_end_is_still_judged(folder, capsys):
    """Before the rule, `--duration 2` with a fault at 3 s ran and passed: re-judged, it is unknown."""
    from harness.cli import main

    with_faults(folder, [KILL], [], duration=2)
    v = judge(folder)
    assert v["verdict"] == "unknown" and v["reason"] == \
        "kill planned at 3 s did not happen: faults.jsonl has no record of it"
    capsys.readouterr()
    assert main(["check", str(folder.path)]) == 2
    out = capsys.readouterr().out
    assert "UNKNOWN  (expected pass) - kill planned at 3 s did not happen" in out
    assert "faults: 0 of 1 as planned" in out


def test_a_garbled_faults_file_is_named_not_skipped(folder):
    with_faults(folder, [KILL], [event("begin", 3.0)])
    folder.faults_jsonl.write_text(folder.faults_jsonl.read_text() + '{"schema_version": 9, "event": "begin"}\n')
    with pytest.raises(RunFolderError, match=r"faults.jsonl:2: not a fault event of version 1 or 2"):
        judge(folder)


def test_a_history_read_as_it_streams_says_so_and_judges_the_same(tmp_path, reading):
    for lose, repeat, want in ((0, 0, "pass"), (2, 0, "fail"), (0, 1, "fail")):
        v = judge(written_run(tmp_path, f"run-{lose}-{repeat}", lose=lose, repeat=repeat))
        assert v["history"]["read"] == reading and v["verdict"] == want, v["reason"]
