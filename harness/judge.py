"""The check stage: a finished run folder -> verdict.json (offline, no backend needed)."""

from __future__ import annotations

from typing import Any

from harness.checks import CheckReport, Completeness, run_checks
from harness.config import Scenario
from harness.errors import HistoryError
from harness.history import History, read_history
from harness.metrics import load_generator_cpu, merge, percentiles, read_logs
from harness.ops import Outcome
from harness.runfolder import RunFolder


def _latency(folder: RunFolder, history: History) -> dict[str, Any]:
    """Latency of acknowledged ops: from the exact HdrHistogram logs, else from the history."""
    logs = sorted((folder.path / "metrics").glob("*.hlog"))
    if logs:
        ok = [i for i in read_logs(logs) if len(parts := i.tag.split(".")) == 2 and parts[1] == "ok"]
        if ok:
            h = merge(ok)
            span = max(i.start + i.length for i in ok) - min(i.start for i in ok)
            return {"unit": "ms", **percentiles(h), "ok_ops_per_s": h.get_total_count() / span if span else None}
    lat = sorted(op.latency_us for op in history.ops() if op.outcome is Outcome.OK and op.latency_us is not None)
    times = [op.invoked_us for op in history.ops()]

    def pct(p: float) -> float | None:
        if not lat:
            return None
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1000

    span = (max(times) - min(times)) / 1e6 if len(times) > 1 else 0.0
    return {"unit": "ms", "p50": pct(50), "p90": pct(90), "p99": pct(99), "p99.9": pct(99.9),
            "max": lat[-1] / 1000 if lat else None, "ok_ops_per_s": (len(lat) / span) if span else None}


def judge(folder: RunFolder) -> dict[str, Any]:
    """Run every check of the scenario on the folder; write and return verdict.json."""
    run = folder.read(folder.run_json)
    scenario = Scenario.model_validate(run["scenario"])
    state = folder.read(folder.state_json)
    final: dict[str, int | None] = state.get("final") or {}
    problems: list[str] = []
    try:
        history = read_history(folder.history_dir)
    except HistoryError as e:
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
    )
    report: CheckReport = run_checks(
        checks=scenario.checks, ops=history.ops(), initial=state["initial"], final=final, history=completeness,
        returns=scenario.returns)
    retried = [op.attempts for op in history.ops() if op.attempts > 1]
    totals = {**report.totals, "retried_ops": len(retried), "retry_attempts": sum(a - 1 for a in retried)}
    doc: dict[str, Any] = {
        "verdict": report.verdict,
        "reason": report.reason if state.get("final") is not None else "the final state was never read; "
        + report.reason,
        "expected": scenario.expect,
        "scenario": scenario.name,
        "target": run["target"],
        "run_id": run["run_id"],
        "totals": totals,
        "latency": _latency(folder, history),
        "load_generator": load_generator_cpu(folder.path / "metrics"),
        "history": {"workers": [{"worker": w.worker, "ops": len(w.ops), "complete": w.complete,
                                 "problem": w.problem} for w in history.workers],
                    "complete": completeness.complete, "missing": list(completeness.missing)},
        "checks": [c.to_json() for c in report.checks],
    }
    folder.write(folder.verdict_json, doc)
    return {"schema_version": 1, **doc}
