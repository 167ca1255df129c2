"""The online checks: while the load runs, the checks that a prefix of the history can decide, run on what
the load processes have written so far -- a value handed out twice, a value out of real-time order, a read
outside what the writes around it allow.

The history files are followed as they grow (``harness.history.follow``: the blocks each process hands to
the OS every 200 ms; a remote worker's as it ships them) and folded by the very code that checks a whole
history as it streams (``harness.checks.stream``), with no final value: an op is taken once every process
has written ops answered after it, an op still out counts as in flight, and a read is judged once every op
sent before its answer has been taken. So an online finding is the offline finding of that prefix, and
it stays one: ops still to come cannot take a duplicate, an order inversion or a stale read back (writes
still to come can only narrow a read further). The whole history's check after the run remains the
verdict; ``bounds`` and ``gaps`` need the final value and are never online.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checks import CHECKS
from harness.checks.columns import ColumnTally
from harness.checks.model import Completeness
from harness.checks.stream import Stream, Streamed, Unstreamable
from harness.checks.timed import clocks
from harness.core.errors import HistoryError, RunFolderError
from harness.core.runfolder import RunFolder
from harness.history import OpColumns, history_files
from harness.history.follow import Follower

ONLINE = ("unique-values", "realtime-order", "reads")  # decided on a prefix, never taken back
SHOWN = 5  # violations kept in run.json (the count stays exact)


@dataclass(frozen=True, kw_only=True)
class Violation:
    """A check proven violated while the load ran."""

    check: str
    key: str
    after_s: float  # seconds since the load started, when it was found
    sentence: str  # the check's own words for it

    def line(self) -> str:
        return f"VIOLATION at {self.after_s:.1f} s: {self.check} on {self.key}: {self.sentence}"

    def doc(self) -> dict[str, Any]:
        return {"check": self.check, "key": self.key, "after_s": round(self.after_s, 1), "sentence": self.sentence}


@dataclass(eq=False)
class _Process:
    follower: Follower
    waiting: list[OpColumns] = field(default_factory=list)  # handed over before every process was known
    ended: bool = False


class OnlineChecks:
    """The online checks of one run folder, polled while its load runs (``poll``)."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        scenario = folder.scenario()
        self.checks = tuple(c for c in scenario.checks if c in ONLINE)
        self.returns = scenario.returns
        signs = scenario.workload.signs
        self.d = next(iter(signs))
        self.expected = int(folder.read(folder.run_json).get("processes") or 1)
        self.off: str | None = None  # why nothing is checked online
        if not self.checks:
            self.off = "none of the scenario's checks can be decided before the final read"
        elif len(signs) != 1:
            self.off = "the workload moves its counters both ways"
        try:
            self.initial = dict(folder.state().initial)
        except (RunFolderError, OSError) as e:
            self.off = f"no initial state: {e}"
        self.processes: dict[Path, _Process] = {}
        self.tally: ColumnTally | None = None
        self.stream: Stream | None = None
        self.found: list[Violation] = []
        self._seen: set[tuple[str, str]] = set()
        self.counts: dict[str, int] = {}  # what each violated check counts so far (over keys)
        self.ops = 0  # ops handed over so far

    # --- following -----------------------------------------------------------------------------------

    def poll(self, after_s: float) -> list[Violation]:
        """Read what the load processes wrote since the last poll and fold it; the violations found now."""
        if self.off is not None:
            return []
        try:
            self._follow()
            if self.stream is None:
                return []
            self.stream.take_ready()
        except Unstreamable as e:
            self.off = f"cannot be checked as it streams ({e})"
            return []
        except HistoryError as e:
            self.off = f"stopped reading the history: {e}"
            return []
        except Exception as e:  # a bug here must not end the load: the verdict after the run stands alone
            self.off = f"stopped: internal error: {type(e).__name__}: {e}"
            return []
        return self._judge(after_s)

    def _follow(self) -> None:
        for path in history_files(self.folder.history_dir):
            if path.suffix == ".cbhist" and path not in self.processes:
                self.processes[path] = _Process(Follower(path))
        for p in self.processes.values():
            if p.ended:
                continue
            f = p.follower
            f.poll(p.waiting.append)
            if f.problem is not None:
                raise HistoryError(f.problem)
            if f.ended and f.reader is not None:
                f.reader.never_completed(p.waiting.append)  # cut off by the stop: in flight for good
        if self.stream is None and not self._start():
            return
        assert self.tally is not None and self.stream is not None
        for p in self.processes.values():
            batches, p.waiting = p.waiting, []
            for c in batches:
                self.ops += len(c)
                self.tally.add(c)
            if p.follower.ended and not p.ended:
                p.ended = True
                self.stream.ended(str(p.follower.worker))

    def _start(self) -> bool:
        """The stream, once every load process's header is in (until then an op cannot be placed among
        the ops of a process not yet heard from) and each can be placed on one timeline."""
        readers = [p.follower.reader for p in self.processes.values()]
        if len(readers) < self.expected or any(r is None for r in readers):
            return False
        headers = {r.worker: r.header for r in readers if r is not None}
        placing = clocks(headers, self.folder.clocks())
        if placing is None:
            return False  # other machines: not yet placed by the master's clock samples
        tally = ColumnTally(sink=lambda *batch: stream.add(*batch))
        stream = Stream(workers=sorted(headers), clocks=placing, initial=self.initial,
                        final=dict.fromkeys(self.initial), direction=self.d, returns=self.returns,
                        name_of=tally.key_name)
        self.tally, self.stream = tally, stream
        return True

    # --- judging -------------------------------------------------------------------------------------

    def _judge(self, after_s: float) -> list[Violation]:
        assert self.tally is not None and self.stream is not None
        stream = self.stream
        counted = self.tally.counted()
        history = Completeness(complete=True, op_signs=frozenset({self.d}))  # a prefix with every op of its span
        new: list[Violation] = []
        counts: dict[str, int] = {}
        for k, folds in stream.keys.items():
            suspects = [c for c in self.checks if _suspect(c, folds)]
            if not suspects:  # the usual case, and a cheap one however many keys
                continue
            key = self.tally.key_name(k)
            read = Streamed(folds=folds, workers=stream.workers, start_ns=stream.start_ns or 0, d=self.d)
            for check in suspects:
                r = read.result(check, key=key, initial=self.initial.get(key, 0), final=None, t=counted[key],
                                history=history, returns=self.returns)
                if r.valid is not False:
                    continue
                found = CHECKS[check].findings
                counts[check] = counts.get(check, 0) + max(int(r.evidence.get(found[0][0], 0) or 0), 1)
                if (check, key) not in self._seen:
                    self._seen.add((check, key))
                    new.append(Violation(check=check, key=key, after_s=after_s, sentence=CHECKS[check].sentence(r)))
        self.counts = counts
        self.found += new
        return new

    def close(self) -> None:
        """Let go of the folds' thread."""
        if self.stream is not None:
            self.stream.pool.shutdown(wait=True)

    def status(self) -> dict[str, Any]:
        """What run.json keeps of it: the checks, how many ops they saw, the first violations."""
        return {"checks": list(self.checks), "off": self.off, "ops": self.ops, "counts": dict(self.counts),
                "violations": [v.doc() for v in self.found[:SHOWN]]}


def _suspect(check: str, folds: Any) -> bool:
    """Whether a key's folds hold anything the check could call a violation (the check itself decides)."""
    if check == "unique-values":
        h = folds.holes
        return bool(h.extra or h.outside_more or len(h.outside()))
    if check == "realtime-order":
        return bool(folds.order.order[0])
    o = folds.order
    return bool(o.counts["stale"] or o.counts["ahead"] or o.back[0] or o.late_ahead is not None)
