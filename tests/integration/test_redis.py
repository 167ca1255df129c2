"""The shipped Redis scenarios on a real redis-server: safe ones pass, unsafe ones are caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.history import RECORD_BYTES, history_files, read_history
from harness.targets.redis import RedisAddress, RedisAdmin
from tests.integration.conftest import SHIPPED, SHORT, run_cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("scenario", ["redis-counter", "redis-seats", "redis-amount", "redis-unique-ids",
                                      "redis-page-views"])
def test_safe_scenario_passes(tmp_path, redis_url, scenario):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", scenario, "--target-url", redis_url, *SHORT)
    assert v is not None, "no verdict written"
    assert (code, v["verdict"]) == (0, "pass"), v["reason"]
    assert v["totals"]["ok"] > 100
    assert v["totals"]["lost"] == v["totals"]["duplicated"] == v["totals"]["oversold"] == 0
    # the verdict agrees with the store itself
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    admin = RedisAdmin(RedisAddress.parse(redis_url))
    assert admin.read(list(state["final"])) == state["final"]
    admin.close()
    # the load lasted its duration (2 s): Locust's timer once ran on the event loop's stale clock, 1.2 s short
    first, last = [], []
    read_history(tmp_path / "run" / "history",
                 lambda c: (first.append(int(c.invoked_us.min())), last.append(int(c.invoked_us.max()))))
    assert 1.8 <= (max(last) - min(first)) / 1e6 <= 2.5


def test_reads_during_the_run_are_checked_against_the_writes_around_them(tmp_path, redis_url):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter-reads", "--target-url", redis_url, *SHORT)
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v and v["reason"]
    assert v["totals"]["reads"] > 50 and v["totals"]["bad_reads"] == 0
    reads = next(c for c in v["checks"] if c["name"] == "reads")
    assert reads["valid"] is True and reads["evidence"]["reads"] == v["totals"]["reads"]
    order = next(c for c in v["checks"] if c["name"] == "realtime-order")
    assert order["valid"] is True and order["evidence"]["compared"] == v["totals"]["ok"]


def test_read_modify_write_loses_updates(tmp_path, redis_url):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter-unsafe", "--target-url", redis_url, *SHORT)
    assert v is not None
    assert (code, v["verdict"]) == (1, "fail")
    assert v["totals"]["lost"] > 0 and v["totals"]["duplicate_values"] > 0
    bounds = next(c for c in v["checks"] if c["name"] == "bounds")
    assert bounds["valid"] is False and bounds["evidence"]["final"] < bounds["evidence"]["lower"]


def test_check_then_act_oversells(tmp_path, redis_url):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-seats-unsafe", "--target-url", redis_url,
                      "--users", "32", "--duration", "2")
    assert v is not None
    assert (code, v["verdict"]) == (1, "fail")
    assert v["totals"]["oversold"] > 0
    over = next(c for c in v["checks"] if c["name"] == "no-oversell")
    assert over["evidence"]["sold"] > over["evidence"]["capacity"]


def test_local_stack_starts_its_own_redis(tmp_path):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter", *SHORT)
    assert v is not None and (code, v["verdict"]) == (0, "pass")
    assert v["target"]["url"].startswith("redis://127.0.0.1:")


def test_check_reruns_offline_and_an_incomplete_history_is_unknown(tmp_path, redis_url, capsys):
    code, _ = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter", "--target-url", redis_url, *SHORT)
    assert code == 0
    run = tmp_path / "run"
    assert main(["check", str(run)]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    hist = history_files(copy / "history")[0]
    hist.write_bytes(hist.read_bytes()[:-RECORD_BYTES])  # the worker "died" writing its last block (the footer's)
    assert main(["check", str(copy)]) == 2
    verdict = json.loads((copy / "verdict.json").read_text())
    assert verdict["verdict"] == "unknown" and "is torn" in verdict["reason"]


def test_remote_target_is_refused_before_anything_is_sent(tmp_path, capsys):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter", "--target-url", "redis://192.0.2.1:6379/0")
    assert code == 2 and v is None
    assert "allow_remote: true" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_unreachable_target_is_a_clear_error(tmp_path, capsys):
    from harness.stack.process import free_port

    code, _ = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter",
                      "--target-url", f"redis://127.0.0.1:{free_port()}/0")
    assert code == 2
    assert "unreachable" in capsys.readouterr().err


def test_bad_scenario_file_names_file_line_and_key(tmp_path, capsys):
    bad = tmp_path / "s.yaml"
    bad.write_text("schema_version: 1\nscenarios:\n  x:\n    target: {kind: redis}\n    workload: {kind: countr}\n")
    code, _ = run_cli(tmp_path, "-f", str(bad), "-s", "x")
    assert code == 2
    assert f"{bad}:5: scenarios.x.workload.kind:" in capsys.readouterr().err


def test_suite_exit_code_follows_expectations(tmp_path, redis_url):
    code = main(["run", "-q", "--no-report", "-f", str(SHIPPED), "-s", "redis-counter", "-s", "redis-counter-unsafe",
                 "--target-url", redis_url, *SHORT, "--out", str(tmp_path / "suite")])
    assert code == 0  # the safe one passed and the unsafe one failed, as each expects
    assert {p.name for p in (tmp_path / "suite").iterdir()} == {"redis-counter", "redis-counter-unsafe"}


def test_locust_native_run_then_check(tmp_path, redis_url):
    import subprocess
    import sys

    run = tmp_path / "native"
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(Path(__file__).parents[2] / "locustfiles" / "counter.py"),
         "--headless", "-u", "8", "-r", "8", "-t", "2s", "--stop-timeout", "3", "--only-summary",
         "--scenario", "redis-counter", "--scenarios-file", str(SHIPPED), "--target-url", redis_url,
         "--run-dir", str(run)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((run / "verdict.json").read_text())["verdict"] == "pass"
    assert main(["check", str(run)]) == 0


def test_history_write_failure_fails_the_run_loudly(tmp_path, redis_url):
    import subprocess
    import sys

    run = tmp_path / "native"
    run.mkdir()
    (run / "history").write_text("not a folder")  # the history cannot be created
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(Path(__file__).parents[2] / "locustfiles" / "counter.py"),
         "--headless", "-u", "2", "-r", "2", "-t", "2s", "--only-summary",
         "--scenario", "redis-counter", "--scenarios-file", str(SHIPPED), "--target-url", redis_url,
         "--run-dir", str(run)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert "cannot write history" in proc.stderr


def test_a_paused_server_times_out_ops_that_are_classified_not_crashed_on(tmp_path):
    import os
    import signal
    import threading

    from harness.stack.redis import RedisServer
    from tests.integration.conftest import TEST_SCENARIOS

    with RedisServer() as server:
        assert server.pid is not None
        pid = server.pid

        def pause() -> None:
            os.kill(pid, signal.SIGSTOP)
            threading.Event().wait(1.2)  # four times the target's 0.3 s timeout
            os.kill(pid, signal.SIGCONT)

        timer = threading.Timer(2.5, pause)  # the load process needs ~1 s to start
        timer.start()
        try:
            code, v = run_cli(tmp_path, "-f", str(TEST_SCENARIOS), "-s", "redis-counter-short-timeout",
                              "--target-url", server.url)
        finally:
            timer.join()
    assert v is not None
    assert (code, v["verdict"]) == (0, "pass"), v["reason"]
    assert v["totals"]["indeterminate"] > 0


def test_pipelined_increments_are_each_their_own_op(tmp_path, redis_url):
    from harness.core.ops import Outcome
    from harness.history import read_history

    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter-pipelined", "--target-url", redis_url,
                      *SHORT)
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v and v["reason"]
    ops = list(read_history(tmp_path / "run" / "history").ops())
    values = [o.value for o in ops if o.outcome is Outcome.OK]
    assert len(values) == v["totals"]["ok"] > 1000 and len(set(values)) == len(values)


def test_a_password_in_the_target_url_never_reaches_the_run_folder(tmp_path, redis_url):
    # the local redis has no password: AUTH is refused, the run stops with an error, and still
    # nothing written may contain the secret
    url = redis_url.replace("redis://", "redis://:s3cret-pw@")
    run_cli(tmp_path, "-f", str(SHIPPED), "-s", "redis-counter", "--target-url", url, *SHORT)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert b"s3cret-pw" not in path.read_bytes(), path
