"""Terminal output: a verdict first, then totals and latency; a table for suites."""

from __future__ import annotations

from typing import Any

from harness.checks.detection import sentence as detection_sentence

MARK = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN", "error": "ERROR"}
FINDINGS = ("lost", "duplicated", "duplicate_values", "oversold")


def finding(c: dict[str, Any]) -> str:
    """A check result's sentence (verdicts before sentences were written: worded now)."""
    if c.get("finding"):
        return str(c["finding"])
    from harness.checks import CHECKS
    from harness.checks.model import CheckResult

    r = CheckResult(name=c["name"], key=c["key"], valid=c["valid"], evidence=c.get("evidence") or {})
    check = CHECKS.get(c["name"])
    return check.sentence(r) if check is not None else str(c.get("evidence"))


def shown_totals(v: dict[str, Any]) -> dict[str, Any]:
    """Totals as a reader should see them: findings (lost, duplicated, ...) are counts a check proved,
    so an undecided verdict shows none of them -- not even zeros, which would read as a clean bill."""
    t = dict(v.get("totals") or {})
    if v.get("verdict") != "unknown":
        return t
    return {k: (None if k in FINDINGS else n) for k, n in t.items()}


def resolution_line(v: dict[str, Any]) -> str | None:
    """Uncertain ops looked up by idempotency key after the run, and retries an idempotency key made one op."""
    t = v.get("totals") or {}
    if "resolved_applied" not in t:
        return None
    line = (f"{t['resolved_applied'] + t['resolved_not_applied']} uncertain ops resolved by their idempotency "
            f"keys: {t['resolved_applied']} applied, {t['resolved_not_applied']} not applied")
    if t.get("unresolved_lookups"):
        line += f"; {t['unresolved_lookups']} could not be looked up (still indeterminate)"
    return line


def unexplained_line(v: dict[str, Any]) -> str | None:
    """For an undecided verdict: how far the final values lie beyond what the recorded ops explain."""
    n = (v.get("totals") or {}).get("unexplained")
    if v.get("verdict") != "unknown" or not n:
        return None
    return (f"{n} beyond the range the recorded ops explain: unexplained by the incomplete history, "
            "not a finding")


def _secs(x: float) -> str:
    return f"{round(x, 1):g}"


def fault_line(f: dict[str, Any]) -> str:
    """A planned fault in one sentence: when it opened and healed, or why it did not go as planned."""
    if f.get("why"):
        return str(f["why"])
    said = f"{f['action']} planned at {_secs(f['at'])} s"
    if f["server"] != "target":
        said += f" on the {f['server']}"
    if f.get("opened_s") is not None:
        said += f" opened at {_secs(f['opened_s'])} s"
    if f.get("healed_s") is not None:
        said += f", healed at {_secs(f['healed_s'])} s" + (" (when the load ended)" if f.get("healed_at_load_end")
                                                            else "")
    elif f.get("duration") is None:
        said += ", and stays open (no duration)"
    if f.get("promoted"):
        said += f"; {f['promoted']} was promoted meanwhile"
    return said


def planned_fault_rows(v: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdict's planned faults as table rows (none for verdicts written before faults were judged)."""
    return [{"fault": f["action"], "server": f["server"], "planned at (s)": f["at"], "duration (s)": f["duration"],
             "opened at (s)": f.get("opened_s"), "healed at (s)": f.get("healed_s"),
             "as planned": "yes" if not f.get("why") else "NO", "what happened": fault_line(f)}
            for f in v.get("faults") or []]


def reason_lines(v: dict[str, Any], *, top: int = 3) -> list[str]:
    """The most frequent reasons ops failed or stayed indeterminate, each with its sample answer."""
    out = []
    for outcome in ("indeterminate", "fail"):
        for r in (v.get("reasons") or {}).get(outcome, [])[:top]:
            sample = r.get("sample") or ""
            quoted = sample[len(r["reason"]):].lstrip(": ") if sample.startswith(r["reason"]) else sample
            out.append(f"{outcome} {r['ops']:,}: {r['reason']}" + (f" (e.g. {quoted[:120]})" if quoted else ""))
    return out


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def quiet_line(v: dict[str, Any]) -> str:
    """What ``-q`` prints of one scenario's run: its verdict, why, and its run folder."""
    return f"{v['scenario']}: {MARK[v['verdict']]} - {v['reason']}" + (
        f"  (run folder {v['run_dir']})" if v.get("run_dir") else "")


def print_summary(v: dict[str, Any]) -> None:
    t, lat = v["totals"], v["latency"]
    expected = "" if v["verdict"] == v.get("expected", "pass") else f"  (expected {v.get('expected')})"
    print(f"\n{v['scenario']}: {MARK[v['verdict']]}{expected} - {v['reason']}")
    reads = f"  reads {t['reads']}" if t.get("reads") else ""
    print(f"  ops {t['ops']}  ok {t['ok']}  fail {t['fail']}  indeterminate {t['indeterminate']}{reads}"
          f"  keys {t['keys']}")
    if v["verdict"] == "unknown":
        print("  lost, duplicated, duplicate values, oversold: not decided")
        extra = unexplained_line(v)
        if extra:
            print(f"  {extra}")
    else:
        print(f"  lost {t['lost']}  duplicated {t['duplicated']}  duplicate values {t['duplicate_values']}"
              f"  oversold {t['oversold']}")
    for line in reason_lines(v):
        print(f"  {line}")
    if t.get("retried_ops"):
        print(f"  retried ops {t['retried_ops']} ({t['retry_attempts']} extra attempts)")
    resolved = resolution_line(v)
    if resolved:
        print(f"  {resolved}")
    rate = "-" if lat.get("ok_ops_per_s") is None else f"{lat['ok_ops_per_s']:.0f}"
    print(f"  latency ms  p50 {_ms(lat['p50'])}  p99 {_ms(lat['p99'])}  max {_ms(lat['max'])}  ok ops/s {rate}")
    gen = v.get("load_generator") or {}
    if gen.get("saturated"):
        print("  warning: the load generator was CPU-saturated; its latencies include its own queueing "
              "(use --processes)")
    for c in v["checks"]:
        if c["valid"] is not True:
            state = "invalid" if c["valid"] is False else "unknown"
            print(f"  {c['name']} [{c['key']}] {state}: {finding(c)}")
    power = detection_sentence(v.get("detection"))
    if power and v["verdict"] == "pass":
        print(f"  {power}")
    faults = v.get("faults") or []
    if faults:
        missed = sum(1 for f in faults if f.get("why"))
        print(f"  faults: {len(faults) - missed} of {len(faults)} as planned" + (
            "; a run whose planned faults did not all happen cannot pass" if missed else ""))
        for f in faults:
            print(f"    {fault_line(f)}")
    if v.get("stopped"):
        print(f"  {stopped_line(v['stopped'])}")
    if v.get("error"):
        print(f"  error: {v['error']}")
    if v.get("run_dir"):
        print(f"  run folder {v['run_dir']}")
    if v.get("report"):
        print(f"  report     {v['report']}")


def stopped_line(stopped: dict[str, Any]) -> str:
    """Why the load ended before its duration: a stop signal, or the first violation proven online."""
    found = stopped.get("violation")
    if found:
        return (f"stopped at the first violation, {stopped['after_s']} s in (stop_on_violation): {found['check']} "
                f"on {found['key']}; the verdict covers what ran")
    return (f"stopped by {stopped['signal']} after {stopped['after_s']} s: the load ended early, and the verdict "
            "covers what ran")


def print_table(rows: list[dict[str, Any]]) -> None:
    head = ["scenario", "verdict", "expected", "ok", "fail", "indet", "lost", "dup", "dup-values", "oversold",
            "p50 ms", "p99 ms", "ok/s"]
    body = []
    for r in rows:
        t, lat = shown_totals(r), r.get("latency", {})
        rate = lat.get("ok_ops_per_s")
        body.append([r["scenario"], MARK.get(r["verdict"], r["verdict"]), r.get("expected", "-"),
                     *("-" if t.get(k) is None else str(t[k]) for k in (
                         "ok", "fail", "indeterminate", "lost", "duplicated", "duplicate_values", "oversold")),
                     _ms(lat.get("p50")), _ms(lat.get("p99")), "-" if rate is None else f"{rate:.0f}"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    print()
    for row in (head, *body):
        print("  ".join(str(x).ljust(w) if i < 3 else str(x).rjust(w) for i, (x, w) in enumerate(zip(row, widths,
                                                                                                   strict=True))))
