"""The check stage: a finished run folder -> verdict.json (offline, no backend needed)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from harness.checks import CHECKS, TOTAL_KEY, CheckReport, Completeness, run_checks
from harness.checks.columns import ColumnTally, Resolution, Resolved
from harness.checks.detection import detection
from harness.checks.model import merged
from harness.checks.stream import Stream, Streamed, Unstreamable
from harness.checks.timed import Clock, clocks
from harness.core.errors import HistoryError
from harness.core.runfolder import RunFolder
from harness.cost import MixTally
from harness.faults.outcomes import outcomes, with_faults
from harness.history import History, OpColumns, history_files, read_headers, read_history, read_history_interleaved
from harness.metrics import LogInterval, load_generator_cpu, merge, percentiles, read_log
from harness.metrics.tags import SERVICE, Tag

STREAM_ABOVE = 64 << 20  # bytes of history (some 9M ops of a real run) from which `check` streams it


def _logged_latency(folder: RunFolder) -> dict[str, Any] | None:
    """Latency of acknowledged ops from the exact HdrHistogram logs; None without any. Read window by
    window into one histogram: a day's logs are never held."""
    logs = folder.latency_logs()
    if not logs:
        return None
    span = [math.inf, -math.inf]

    def ok() -> Iterator[LogInterval]:
        for path in sorted(logs):
            for i in read_log(path):
                if (t := Tag.parse(i.tag)).outcome == "ok" and t.measure == SERVICE:
                    span[0], span[1] = min(span[0], i.start), max(span[1], i.start + i.length)
                    yield i

    h = merge(ok())
    if span[0] == math.inf:
        return None
    seconds = span[1] - span[0]
    return {"unit": "ms", **percentiles(h), "ok_ops_per_s": h.get_total_count() / seconds if seconds else None}


def _history_latency(tally: ColumnTally) -> dict[str, Any]:
    """Latency of acknowledged ops from the history's own timestamps (no latency log)."""
    lat = tally.latencies_us()
    n = len(lat)

    def pct(p: float) -> float | None:
        return int(lat[min(n - 1, int(p / 100 * n))]) / 1000 if n else None

    span = (tally.invoked_max - tally.invoked_min) / 1e6 \
        if tally.ops > 1 and tally.invoked_max is not None and tally.invoked_min is not None else 0.0
    return {"unit": "ms", "p50": pct(50), "p90": pct(90), "p99": pct(99), "p99.9": pct(99.9),
            "max": int(lat[-1]) / 1000 if n else None, "ok_ops_per_s": (n / span) if span else None}


def _streams(folder: RunFolder, stream: bool | None, placing: dict[str, Clock] | None,
             signs: frozenset[int]) -> bool:
    """Whether to check the history as it streams: asked for, or (``stream`` None) a history too large to
    hold placed in memory, whose processes' clocks are known, with a workload that moves its counter one way."""
    if stream is False or placing is None or len(signs) != 1:
        return False
    return stream is True or sum(p.stat().st_size for p in history_files(folder.history_dir)) >= STREAM_ABOVE


def _read_streamed(folder: RunFolder, headers: dict[str, dict[str, Any]], placing: dict[str, Clock],
                   resolutions: dict[str, Any] | None, initial: dict[str, int], final: dict[str, int | None],
                   scenario: Any, mix: MixTally, *, latencies: bool
                   ) -> tuple[ColumnTally, History, dict[str, Streamed]]:
    """Every file read at once, merged by time and folded as it comes (``harness.checks.stream``)."""
    sink: list[Stream] = []
    tally = ColumnTally(latencies=latencies, resolutions=Resolution.of(resolutions),
                        sink=lambda *batch: sink[0].add(*batch))
    stream = Stream(workers=sorted(headers), clocks=placing, initial=initial, final=final,
                    direction=next(iter(scenario.workload.signs)), returns=scenario.returns, name_of=tally.key_name)
    sink.append(stream)
    def prepare(c: OpColumns) -> tuple[Resolved, Any, Any]:  # in each file's reading thread: the batch alone
        r = tally.prepare(c)
        return r, stream.prepare(c, r.outcome, r.has_value, r.value), mix.count(c)

    def take(c: OpColumns, ready: tuple[Resolved, Any, Any]) -> None:
        tally.add(c, ready[0], ready[1])
        mix.add(c, ready[2])

    history = read_history_interleaved(folder.history_dir, take, position=stream.position, on_ended=stream.ended,
                                       prepare=prepare)
    return tally, history, stream.finish(tally.keys())


def judge(folder: RunFolder, *, stream: bool | None = None) -> dict[str, Any]:
    """Run every check of the scenario on the folder; write and return verdict.json.

    The history is read in batches of columns and tallied per key as it is read (numpy), so
    memory grows with the values acknowledged ops returned, not with Python objects per op --
    or, streamed (``stream``; by default for a large history), with what was in flight.
    """

    run = folder.read(folder.run_json)
    scenario = folder.scenario()
    state = folder.state()
    final: dict[str, int | None] = state.final or {}
    latency = _logged_latency(folder)
    problems: list[str] = []
    resolutions = folder.resolutions()
    timed = any(CHECKS[c].timed for c in scenario.checks if c in CHECKS)
    mix = MixTally()  # what the run sent, by cost, for report (which then need not read the history again)
    headers = read_headers(folder.history_dir)
    placing = clocks(headers, folder.clocks())  # a stream is merged by them, whatever its checks
    streamed: dict[str, Streamed] | None = None
    read_as = "in memory"
    if _streams(folder, stream, placing, scenario.workload.signs):
        try:
            tally, history, streamed = _read_streamed(folder, headers, placing, resolutions, state.initial, final,
                                                      scenario, mix, latencies=latency is None)
            read_as = "streamed"
        except Unstreamable as e:  # read again, in memory
            read_as = f"in memory (not streamed: {e})"
        except HistoryError as e:
            history, problems, read_as = History(), [str(e)], "streamed"
            tally = ColumnTally()
    if streamed is None and not problems:
        tally = ColumnTally(latencies=latency is None, resolutions=Resolution.of(resolutions), timed=timed,
                            clocks=placing if timed else None)
        mix = MixTally()
        try:
            # a damaged file keeps what came before the damage: that worker's history is incomplete
            history = read_history(folder.history_dir, lambda c: (tally.add(c), mix.add(c)))
        except HistoryError as e:  # no history file at all
            history, problems = History(), [str(e)]
    expected = int(run.get("processes") or 1)
    if len(history.workers) < expected:
        problems.append(f"{expected - len(history.workers)} of {expected} load processes wrote no history")
    code = run.get("load_exit_code")
    if code not in (None, 0):
        problems.append(f"the load process exited with code {code} (see locust.log)")
    completeness = Completeness(
        complete=history.complete and not problems,
        missing=tuple([*problems, *(f"{w.worker}: {w.problem}" for w in history.incomplete_workers)]),
        op_signs=scenario.workload.signs,
    )
    tallies = tally.tallies()
    for key, folded in (streamed or {}).items():
        tallies[key].streamed = folded
    report: CheckReport = run_checks(checks=scenario.checks, tallies=tallies, initial=state.initial, final=final,
                                     history=completeness, returns=scenario.returns)
    totals = {**report.totals, "retried_ops": tally.retried_ops, "retry_attempts": tally.retry_attempts}
    if resolutions is not None:  # uncertain ops looked up after the run by their idempotency keys
        totals.update(resolved_applied=tally.resolved_applied, resolved_not_applied=tally.resolved_not_applied,
                      unresolved_lookups=int(resolutions.get("error_count", 0)) + int(resolutions.get("skipped", 0)))
    every = merged(TOTAL_KEY, tallies.values())  # the amounts of every key's ops, for the detection power
    reason = report.reason if state.final is not None else "the final state was never read; " + report.reason
    # every planned fault, and what became of it: a run that missed one proves nothing about it
    faults = outcomes(scenario.faults, folder.fault_events(), load_started=folder.load_started())
    verdict, reason = with_faults(report.verdict, reason, faults)
    doc: dict[str, Any] = {
        "verdict": verdict,
        "reason": reason,
        "expected": scenario.expect,
        "scenario": scenario.name,
        "target": run.get("target"),
        "run_id": run.get("run_id"),
        "totals": totals,
        "latency": latency if latency is not None else _history_latency(tally),
        "load_generator": load_generator_cpu(folder.cpu_logs()),
        "history": {"workers": [{"worker": w.worker, "ops": w.op_count, "complete": w.complete,
                                 "problem": w.problem} for w in history.workers],
                    "complete": completeness.complete, "missing": list(completeness.missing), "read": read_as},
        "checks": [c.to_json() for c in report.checks],
        "stopped": run.get("stopped"),  # the load ended early (a stop signal, a violation): the verdict covers what ran
        "online": run.get("online"),  # what the online checks found while the load ran
        "faults": [f.to_json() for f in faults],
        "detection": detection(ok_amounts=every.ok_amounts, uncertain_amounts=every.indeterminate_amounts),
        "op_mix": mix.to_json(complete=history.complete and len(history.workers) >= expected),
        "reasons": mix.reasons(),  # why ops failed or stayed indeterminate, most frequent first
    }
    return folder.write(folder.verdict_json, doc)
