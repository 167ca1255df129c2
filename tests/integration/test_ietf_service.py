"""Issue 21's "what done looks like": a correct service with IETF-draft idempotency keys, slow the way
real ones are, passes; the same service applying a retried key twice fails.

The service (tests/integration/ietf_service.py) runs on 127.0.0.1 in a subprocess; counterbench is driven
like a user would (`counterbench run -f ietf_scenarios.yaml -s ... --target-url ...`): a client that gives
up after 0.3 s and retries twice with the same key. The service also keeps its own books (how often each
key was applied, which keys it fenced), so each run is judged against the truth, not only against the
checker's word.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.core.ops import op_token
from harness.stack.process import free_port
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "ietf_scenarios.yaml"


@contextmanager
def ietf_service(log: Path, *flags: str) -> Iterator[str]:
    """The service on a free loopback port, its log in ``log``; stopped (by its own pid) afterwards."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(HERE / "ietf_service.py"), "--port", str(port), *flags],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the ietf service did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def audit(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/audit", timeout=10) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


def run(tmp_path: Path, scenario: str, *flags: str) -> tuple[int, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One `counterbench run` against a fresh service: exit code, verdict, resolutions and the service's books."""
    with ietf_service(tmp_path / "service.log", *flags) as url:
        code, verdict = run_cli(tmp_path, "-f", str(SCENARIOS), "-s", scenario, "--target-url", url)
        books = audit(url)
    (tmp_path / "audit.json").write_text(json.dumps(books))  # kept beside the run folder, for a post-mortem
    assert verdict is not None, "no verdict written"
    path = tmp_path / "run" / "resolutions.json"
    resolutions: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"workers": {}}
    print(summary(scenario, code, verdict, books))  # the record of what counterbench said (pytest -s)
    return code, verdict, resolutions, books


def summary(scenario: str, code: int, v: dict[str, Any], books: dict[str, Any]) -> str:
    t = v["totals"]
    shown = ("ops", "ok", "fail", "indeterminate", "retried_ops", "resolved_applied", "resolved_not_applied",
             "lost", "duplicated", "duplicate_values", "phantoms")
    lines = [f"{scenario}: exit {code}, {v['verdict']}: {v['reason']}",
             "  totals: " + ", ".join(f"{k} {t.get(k)}" for k in shown),
             f"  service: {json.dumps(books['seen'], sort_keys=True)}; applied twice: {len(books['twice'])}"]
    lines += [f"  invalid {c['name']} ({c['key']}): {c['finding']}" for c in v["checks"] if c["valid"] is False]
    return "\n".join(lines)


def invalid(v: dict[str, Any]) -> list[str]:
    return [f"{c['name']}: {c['finding']}" for c in v["checks"] if c["valid"] is not True]


@pytest.mark.parametrize(("scenario", "seed"), [
    *(("ietf-counter", seed) for seed in range(1, 6)),  # five runs out of five
    ("ietf-counter-reads", 6), ("ietf-amount", 7),
])
def test_a_correct_service_with_idempotency_keys_passes(tmp_path: Path, scenario: str, seed: int) -> None:
    code, v, resolutions, books = run(tmp_path, scenario, "--seed", str(seed))
    # the service's own books first: it applied no key twice, and it was as slow as it should be
    assert books["twice"] == [], "the service itself applied a key twice: the service is wrong, not the checker"
    for seen in ("slow", "stuck", "slow-ack", "409-in-progress", "replayed"):
        assert books["seen"].get(seen, 0) > 0, f"the service never did {seen!r}: the run proves less than it says"

    # each lookup told the truth: applied with the value the key left, or never applied (and fenced)
    keys, run_id = books["keys"], v["run_id"]
    for worker, res in resolutions["workers"].items():
        for op, value in res["applied"]:
            k = keys[op_token(run_id, worker, op)]
            assert (k["state"], k["value"], k["applied"]) == ("done", value, 1)
        for op in res["not_applied"]:
            k = keys[op_token(run_id, worker, op)]
            assert (k["state"], k["applied"]) == ("fenced", 0)

    # counterbench: a pass, no check invalid (or undecided)
    assert (code, v["verdict"], invalid(v)) == (0, "pass", []), summary(scenario, code, v, books)
    # and the mechanisms were exercised: retries, and lookups resolving ops both ways -- "not applied"
    # exactly for the keys the lookup fenced, among them requests still held up when it asked
    t = v["totals"]
    assert t["retried_ops"] > 0
    assert t["resolved_applied"] > 0
    fenced = [k for k in keys.values() if k["state"] == "fenced"]  # only a lookup fences
    assert any(k["fenced_in_progress"] for k in fenced), "no request was held up at the lookup"
    assert t["resolved_not_applied"] == len(fenced)
    assert t["reads"] > 0 or "reads" not in scenario


def test_the_same_service_applying_a_retried_key_twice_fails(tmp_path: Path) -> None:
    code, v, _, books = run(tmp_path, "ietf-counter", "--seed", "8", "--double-apply")
    assert books["twice"], "the bug never fired: the test proves nothing"
    t = v["totals"]
    assert (code, v["verdict"]) == (1, "fail"), summary("ietf-counter --double-apply", code, v, books)
    assert t["duplicated"] > 0 or t["phantoms"] > 0 or t["duplicate_values"] > 0, v["reason"]
