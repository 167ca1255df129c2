"""The streamed checks (harness.checks.stream) against the in-memory ones, on the oracle's random histories:
the same results, witness for witness, while the window holds the history; the same verdicts past it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from harness.checks import Completeness, run_checks
from harness.checks import holes as holes_module
from harness.checks import windows as windows_module
from harness.checks.columns import ColumnTally
from harness.checks.stream import Stream, Unstreamable
from harness.checks.timed import Clock
from harness.core.ops import Op
from harness.history import OpColumns
from tests.oracle import KEY, History, history_at

CHECKS = ("bounds", "unique-values", "realtime-order", "reads", "gaps")


def in_order(h: History) -> list[Op]:
    """Each process's ops as its file holds them: by answer, the never answered last."""
    return [o for w in sorted({o.worker for o in h.ops})
            for o in sorted((o for o in h.ops if o.worker == w),
                            key=lambda o: (o.completed_us is None, o.completed_us or 0))]


def batches(ops: list[Op], size: int) -> dict[str, list[OpColumns]]:
    """Each process's batches as a reader hands them over, each saying what is still open after it."""
    out: dict[str, list[OpColumns]] = {}
    for w in sorted({o.worker for o in ops}):
        mine = [o for o in ops if o.worker == w]
        done = [o for o in mine if o.completed_us is not None]
        never = [o for o in mine if o.completed_us is None]
        parts = [done[i:i + size] for i in range(0, len(done), size)]
        out[w] = []
        for j, part in enumerate(parts):
            later = [o.invoked_us for p in parts[j + 1:] for o in p] + [o.invoked_us for o in never]
            last = max(o.completed_us or 0 for o in part)
            out[w].append(replace(OpColumns.from_ops(w, part), open_from_us=min([*later, last])))
        if never:
            out[w].append(OpColumns.from_ops(w, never))
    return out


def exact(workers: list[str]) -> dict[str, Clock]:
    return {w: Clock(0, 0) for w in workers}


def sampled(workers: list[str]) -> dict[str, Clock]:
    """Each process on another machine, placed by samples over part of the run (so drift widens the rest)."""
    return {w: Clock(300 * i - 200, 1500 + 700 * i, (400_000, 900_000)) for i, w in enumerate(workers)}


def streamed(h: History, ops: list[Op], *, size: int, chunk: int,
             clocks: Callable[[list[str]], dict[str, Clock]] = exact) -> dict[str, object]:
    """The history's tallies, folded as a stream: batches interleaved as the file reader interleaves them."""
    sink: list[Stream] = []
    tally = ColumnTally(resolutions=h.resolutions(), sink=lambda *b: sink[0].add(*b))
    workers = sorted({o.worker for o in ops})
    d = -1 if h.seats else 1
    stream = Stream(workers=workers, clocks=clocks(workers), initial={KEY: h.initial},
                    final={KEY: h.final}, direction=d, returns="after", name_of=tally.key_name, chunk=chunk)
    sink.append(stream)
    feeds = {w: list(bs) for w, bs in batches(ops, size).items()}
    last = {w: -(1 << 62) for w in feeds}
    while feeds:
        w = min(feeds, key=lambda w: last[w])
        if not feeds[w]:
            del feeds[w]
            stream.ended(w)
            continue
        c = feeds[w].pop(0)
        last[w] = stream.position(c)
        tally.add(c)
    tallies = tally.tallies()
    folded = stream.finish(tallies)
    for key, f in folded.items():
        tallies[key].streamed = f
    return tallies  # type: ignore[return-value]


def both(h: History, *, size: int = 3, chunk: int = 1,
         clocks: Callable[[list[str]], dict[str, Clock]] = exact) -> tuple[list, list]:
    ops = in_order(h)
    history = Completeness(complete=True, op_signs=frozenset({-1} if h.seats else {1}))
    kw = {"checks": CHECKS, "initial": {KEY: h.initial}, "final": {KEY: h.final}, "history": history}
    workers = sorted({o.worker for o in ops})
    held = ColumnTally(timed=True, clocks=clocks(workers), resolutions=h.resolutions())
    for w in workers:
        held.add(OpColumns.from_ops(w, [o for o in ops if o.worker == w]))
    memory = run_checks(tallies=held.tallies(), **kw)
    folded = run_checks(tallies=streamed(h, ops, size=size, chunk=chunk, clocks=clocks), **kw)
    return memory.checks, folded.checks


def streamable(h: History) -> bool:
    return h.domain in ("unit-with-values", "without-values", "seats")


def cases(n: int, seed: int) -> list[History]:
    return [h for i in range(n) if streamable(h := history_at(seed, i))]


@pytest.mark.parametrize(("seed", "clocks"), [(3, exact), (4, exact), (7, sampled)])
def test_streamed_results_are_the_in_memory_ones_witness_for_witness(seed, clocks):
    compared = failed = 0
    for h in cases(400, seed):
        memory, folded = both(h, size=random.Random(seed).randint(1, 5), clocks=clocks)
        duplicated = any(r.name == "unique-values" and r.evidence.get("duplicate_values") for r in memory)
        for m, f in zip(memory, folded, strict=True):
            if m.name == "gaps" and duplicated:  # the one result a fold cannot give
                assert f.valid is None and "handed out twice" in f.evidence["reason"], h.literal()
                continue
            assert (m.name, m.valid, m.evidence) == (f.name, f.valid, f.evidence), h.literal()
            compared += 1
            failed += m.valid is False
    assert compared > 800 and failed > 50  # the histories hold both


@pytest.mark.parametrize(("seed", "clocks"), [(5, exact), (6, sampled)])
def test_past_the_window_the_verdicts_and_counts_are_the_same(monkeypatch, seed, clocks):
    """Ops leave the window at every chunk, and holes settle: the verdicts hold, and so do the counts, but
    for reads a later write shows ahead once judged (at least one; never more than there are)."""
    monkeypatch.setattr(windows_module, "WINDOW", 0)
    monkeypatch.setattr(holes_module, "SETTLE_AT", 0)  # holes settle at every chunk too
    exact = ("out_of_order", "stale", "lost_state", "backwards", "phantoms", "gaps", "duplicate_values",
             "out_of_range")
    n = 0
    for h in cases(400, seed):
        memory, folded = both(h, size=2, chunk=1, clocks=clocks)
        duplicated = any(r.name == "unique-values" and r.evidence.get("duplicate_values") for r in memory)
        for m, f in zip(memory, folded, strict=True):
            if m.name == "gaps" and duplicated:
                continue
            assert m.valid == f.valid, h.literal()
            assert {k: m.evidence.get(k) for k in exact} == {k: f.evidence.get(k) for k in exact}, h.literal()
            for k in ("ahead", "bad_reads"):
                assert (f.evidence.get(k) or 0) <= (m.evidence.get(k) or 0), h.literal()
                assert bool(f.evidence.get(k)) == bool(m.evidence.get(k)), h.literal()
            n += 1
    assert n > 800


def test_a_write_of_another_amount_is_not_streamed():
    ops = [Op("w0", 0, KEY, "incr", 2, "ok", 2, None, 0, 10), Op("w0", 1, KEY, "incr", 1, "ok", 3, None, 11, 20)]
    h = History(ops=tuple(ops), initial=0, final=3)
    with pytest.raises(Unstreamable, match="by one"):
        streamed(h, in_order(h), size=1, chunk=1)


def test_check_reads_a_history_it_cannot_stream_in_memory_and_says_why(tmp_path):
    from harness.cli import main
    from harness.core.ops import Completion
    from harness.history import HistoryWriter, history_file
    from harness.judge import judge
    from tests.unit.test_judge import edit, written_run

    folder = written_run(tmp_path, "run")
    assert main(["check", "--read", "streamed", str(folder.path)]) == 0
    assert json.loads(folder.verdict_json.read_text())["history"]["read"] == "streamed"
    w = HistoryWriter(history_file(folder.history_dir, "w2"), worker="w2", run_id="r", scenario="redis-counter")
    w.complete(w.invoke("cb:r:a", "incr", 2), Completion.ok(10_000))  # an increment by two
    w.close()
    final = json.loads(folder.state_json.read_text())["final"]
    edit(folder.state_json, final={**final, "cb:r:a": final["cb:r:a"] + 2})
    v = judge(folder, stream=True)
    assert v["history"]["read"] == "in memory (not streamed: writes that do not move the counter by one, its way)"
    assert v == {**judge(folder, stream=False), "history": v["history"]}


def test_a_hole_whose_only_higher_value_came_from_a_lookup_is_not_settled_before_an_answer_bounds_it(monkeypatch):
    monkeypatch.setattr(holes_module, "SETTLE_AT", 0)
    ops = (Op("w0", 1, KEY, "incr", 1, "ok", 1, None, 1, 2),
           Op("w0", 0, KEY, "incr", 1, "indeterminate", None, "timeout", 0, 10),  # looked up: it left 5
           Op("w0", 2, KEY, "incr", 1, "ok", 3, None, 12, 20),  # the counter passed 2 before this answer
           Op("w0", 3, KEY, "incr", 1, "ok", 4, None, 13, 21),
           Op("w0", 4, KEY, "incr", 1, "indeterminate", None, "timeout", 25, 30))  # sent too late to make 2
    h = History(ops=ops, initial=0, final=5, resolved=(("w0", 0, 5),))
    memory, folded = both(h, size=1, chunk=1)
    assert [r.evidence for r in memory if r.name == "gaps"] == [r.evidence for r in folded if r.name == "gaps"]
    assert [r.evidence.get("phantom_values") for r in folded if r.name == "gaps"] == [[2]]


def test_the_interleaved_reader_hands_over_every_batch_from_the_file_furthest_behind(tmp_path, monkeypatch):
    from harness.core.ops import Completion
    from harness.history import (
        HistoryWriter,
        history_file,
        read_headers,
        read_history,
        read_history_interleaved,
    )
    from harness.history import format as history_format

    monkeypatch.setattr(history_format, "_CHUNK_RECORDS", 8)  # many small batches (of records and op rows)
    t0 = 1_000_000_000
    for w, step in (("w0", 1_000), ("w1", 3_000)):  # w1's ops three times as long apart
        writer = HistoryWriter(history_file(tmp_path, w), worker=w, run_id="r", scenario="redis-counter")
        for i in range(200):
            writer.record("k", "incr", 1, t0 + i * step, Completion.ok(i + 1), t0 + i * step + 500)
            if i % 10 == 9:
                writer.flush()
        writer.close()
    (tmp_path / "w2.cbhist").write_bytes(b"not a history\n")  # unreadable: a worker whose history is missing
    anchor = {w: int(h["anchor_monotonic_ns"]) for w, h in read_headers(tmp_path).items()}

    def position(c: OpColumns) -> int:  # on one timeline: every writer has its own anchor
        return int(c.completed_us.max()) * 1000 + anchor[c.worker]

    events: list[tuple[str, str]] = []
    at = {"w0": -(1 << 62), "w1": -(1 << 62)}
    ended: set[str] = set()

    def batch(c: OpColumns) -> None:
        other = "w1" if c.worker == "w0" else "w0"
        assert other in ended or at[c.worker] <= at[other]  # it came from the worker furthest behind
        at[c.worker] = position(c)
        events.append(("batch", c.worker))

    got = read_history_interleaved(tmp_path, batch, position=position,
                                   on_ended=lambda w: (ended.add(w), events.append(("end", w))))
    whole = read_history(tmp_path)
    assert [(w.worker, w.op_count, w.complete, w.problem) for w in got.workers] == \
        [(w.worker, w.op_count, w.complete, w.problem) for w in whole.workers]
    assert ended == {"w0", "w1", "w2"}
    assert sum(e == ("batch", "w0") for e in events) > 10 and sum(e == ("batch", "w1") for e in events) > 10
    # w1's ops come three times as far apart: while both run, w0 hands over about three batches to one of w1's
    first_end = min(i for i, e in enumerate(events) if e[0] == "end" and e[1] != "w2")
    both = [w for kind, w in events[:first_end] if kind == "batch"]
    assert both.count("w0") > 2 * both.count("w1") > 0
