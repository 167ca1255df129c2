"""The online checks (harness.checks.online) replayed against the offline ones: the oracle's random histories
written by the real writer a block at a time, as load processes write them, followed as they grow, and
checked after every block; then the whole history checked offline. No false stop: every violation found
online is one the offline check finds. And none missed that a prefix can prove: a value handed out twice or
an order inversion offline was found online."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from harness.checks import Completeness, run_checks
from harness.checks.columns import ColumnTally
from harness.checks.online import ONLINE, OnlineChecks
from harness.checks.timed import Clock
from harness.core.ops import Completion
from harness.core.runfolder import RunFolder
from harness.history import HistoryWriter, OpColumns, history_file
from harness.history.follow import Follower
from tests.oracle import KEY, History, history_at

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run-v2"


def folder_for(tmp_path: Path, h: History, name: str) -> RunFolder:
    """A run folder prepared as `counterbench run` prepares one, before any load."""
    dest = tmp_path / name
    shutil.copytree(FIXTURE, dest)
    shutil.rmtree(dest / "history")
    shutil.rmtree(dest / "metrics")
    run = json.loads((dest / "run.json").read_text())
    run["scenario"]["checks"] = list(ONLINE)
    if h.seats:
        run["scenario"]["workload"] = {**run["scenario"]["workload"], "kind": "seats", "amount": {"min": 1, "max": 1}}
    run["processes"] = len({o.worker for o in h.ops})
    run["keys"] = [KEY]
    (dest / "run.json").write_text(json.dumps(run))
    RunFolder(dest).write(RunFolder(dest).state_json, {"initial": {KEY: h.initial}, "final": None})
    return RunFolder(dest)


def replay(folder: RunFolder, h: History, *, steps: int = 6) -> OnlineChecks:
    """Each process's ops written as the load writes them -- an op whole once it has completed, the invoke
    of one still out at each hand-over -- in ``steps`` hand-overs over the history's time, some processes a
    hand-over or two behind the others (as files lag on a loaded machine, or a remote worker's chunks),
    checked online after each."""
    workers = sorted({o.worker for o in h.ops})
    writers: dict[str, HistoryWriter] = {}  # a process's file appears when it first writes (some start late)
    # every writer's clock is this host's monotonic clock; ops are stamped after every writer's anchor (a
    # writer never stamps an op before it was made), here a minute ahead of now
    base = time.monotonic_ns() + 60 * 10**9
    online = OnlineChecks(folder)
    ends = sorted({o.completed_us for o in h.ops if o.completed_us is not None} | {o.invoked_us for o in h.ops})
    cuts = [ends[min(len(ends) - 1, (i + 1) * len(ends) // steps)] for i in range(steps)]
    written: dict[int, int] = {}  # index in h.ops -> op id of an invoke already written
    done: set[int] = set()
    for step in range(steps + 2):
        for j, w in enumerate(workers):
            behind = step - j % 3
            if behind < 0:
                continue
            cut = cuts[min(behind, steps - 1)]
            if w not in writers:
                writers[w] = HistoryWriter(history_file(folder.history_dir, w), worker=w, run_id="r", scenario="s")
            writer = writers[w]
            mine = [(i, o) for i, o in enumerate(h.ops) if o.worker == w and i not in done]
            for i, o in sorted(mine, key=lambda p: (p[1].completed_us is None, p[1].completed_us or 0)):
                if o.completed_us is not None and o.completed_us <= cut:
                    answer = Completion(o.outcome, o.value, o.error, o.attempts)
                    if i in written:
                        writer.complete(written.pop(i), answer, base + o.completed_us * 1000)
                    else:
                        writer.record(o.key, o.kind, o.amount, base + o.invoked_us * 1000, answer,
                                      base + o.completed_us * 1000)
                    done.add(i)
            for i, o in mine:  # still out at the hand-over: its invoke goes with this block
                if i not in done and i not in written and o.invoked_us <= cut:
                    written[i] = writer.invoke(o.key, o.kind, o.amount, base + o.invoked_us * 1000)
            if behind == steps - 1:
                writer.close()
            elif behind < steps - 1:
                writer.flush()
        online.poll(float(step))
    online.close()
    return online


def offline(h: History, *, lookups: bool = True) -> tuple[dict[str, bool | None], dict[str, dict[str, Any]]]:
    """The whole history's verdict by each online check (and its evidence), the final value known; ``lookups``:
    the uncertain ops looked up after the run applied (online has none of them)."""
    held = ColumnTally(timed=True, clocks={w: Clock(0, 0) for w in {o.worker for o in h.ops}},
                       resolutions=h.resolutions() if lookups else None)
    for w in sorted({o.worker for o in h.ops}):
        held.add(OpColumns.from_ops(w, [o for o in h.ops if o.worker == w]))
    r = run_checks(tallies=held.tallies(), checks=ONLINE, initial={KEY: h.initial}, final={KEY: h.final},
                   history=Completeness(complete=True, op_signs=frozenset({-1} if h.seats else {1})))
    return {c.name: c.valid for c in r.checks}, {c.name: c.evidence for c in r.checks}


def streamable(h: History) -> bool:
    return h.domain in ("unit-with-values", "without-values", "seats") and len(h.ops) > 0


@pytest.mark.parametrize("seed", [11])
def test_online_findings_are_offline_findings_and_none_a_prefix_proves_is_missed(tmp_path, seed):
    found = {c: 0 for c in ONLINE}
    failed = 0
    n = 0
    for i in range(700):
        h = history_at(seed, i)
        if not streamable(h):
            continue
        n += 1
        online = replay(folder_for(tmp_path, h, f"h{i}"), h)
        assert online.off is None, (online.off, h.literal())
        valid, _ = offline(h)
        failed += any(v is False for v in valid.values())
        for v in online.found:  # no false stop
            assert valid[v.check] is False, (v.line(), h.literal())
            found[v.check] += 1
        got = {v.check for v in online.found}
        valid, evidence = offline(h, lookups=False)  # what the history as written proves
        if evidence["unique-values"].get("duplicate_values"):
            assert "unique-values" in got, h.literal()
        if valid["realtime-order"] is False:
            assert "realtime-order" in got, h.literal()
    assert n > 100 and failed > 20
    assert all(found[c] >= 5 for c in ONLINE), found  # the histories make each check find something online


def test_a_block_not_yet_whole_is_read_at_the_next_poll(tmp_path):
    path = history_file(tmp_path, "w0")
    w = HistoryWriter(path, worker="w0", run_id="r", scenario="s")
    for v in range(1, 4):
        w.complete(w.invoke("k", "incr", 1), Completion.ok(v))
    w.flush()
    whole = path.read_bytes()
    w.complete(w.invoke("k", "incr", 1), Completion.ok(4))
    w.close()
    rest = path.read_bytes()[len(whole):]
    path.write_bytes(whole + rest[:len(rest) // 2])  # the writer is in its write
    got: list[OpColumns] = []
    f = Follower(path)
    f.poll(got.append)
    assert sum(len(c) for c in got) == 3 and f.problem is None and not f.ended
    path.write_bytes(whole + rest)
    f.poll(got.append)
    assert sum(len(c) for c in got) == 4 and f.ended and f.problem is None


def test_a_damaged_block_stops_the_following_and_says_where(tmp_path):
    path = history_file(tmp_path, "w0")
    w = HistoryWriter(path, worker="w0", run_id="r", scenario="s")
    w.complete(w.invoke("k", "incr", 1), Completion.ok(1))
    w.close()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    f = Follower(path)
    f.poll(lambda c: None)
    assert f.problem is not None and "CRC" in f.problem and "byte" in f.problem


def test_a_scenario_with_no_check_a_prefix_decides_is_not_checked_online_and_says_why(tmp_path):
    h = next(h for i in range(50) if streamable(h := history_at(3, i)))
    folder = folder_for(tmp_path, h, "x")
    run = json.loads(folder.run_json.read_text())
    run["scenario"]["checks"] = ["bounds", "gaps"]
    folder.run_json.write_text(json.dumps(run))
    online = OnlineChecks(folder)
    assert online.off is not None and "final read" in online.off
    assert online.poll(1.0) == [] and online.status()["off"] == online.off
