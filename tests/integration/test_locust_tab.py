"""Plain Locust with its web UI: the "Correctness" tab shows the online checks' violations while the test runs
and, after Stop, the verdict with its checks as sentences and a link to report.html -- started, swarmed and
stopped through the UI's own HTTP endpoints, the tab rendered by headless Chromium (Debian's ``chromium``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.stack.process import free_port
from tests.integration.conftest import ROOT, SHIPPED

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as r:
        return bytes(r.read())


def post(url: str, form: dict[str, str] | None = None) -> None:
    data = urllib.parse.urlencode(form or {}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=10):
        pass


def rows(base: str) -> list[dict[str, str]]:
    doc = json.loads(get(f"{base}/stats/requests"))
    tab = [t for t in doc.get("extended_stats", []) if t["key"] == "correctness"]
    return tab[0]["data"] if tab else []


def wait_for(what: str, test: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = test()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def locust_ui(tmp_path: Path, redis_url: str) -> Any:
    def start(scenario: str) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "counter.py"), "--web-host", "127.0.0.1",
             "--web-port", str(port), "--scenario", scenario, "--scenarios-file", str(SHIPPED), "--target-url",
             redis_url, "--run-dir", str(tmp_path / scenario), "--stop-timeout", "2"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_for("the web UI", lambda: get(base + "/"))
        return base

    procs: list[subprocess.Popen[bytes]] = []
    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_the_correctness_tab_shows_a_violation_live_and_the_verdict_after_stop(locust_ui):
    base = locust_ui("redis-counter-unsafe")
    post(f"{base}/swarm", {"user_count": "8", "spawn_rate": "8", "host": ""})
    live = wait_for("a violation in the tab while the test runs",
                    lambda: [r for r in rows(base) if r["what"] == "VIOLATION"], timeout=30)
    assert "unique-values" in live[0]["finding"] or "realtime-order" in live[0]["finding"]
    post(f"{base}/stop")
    done = wait_for("the verdict after Stop", lambda: [r for r in rows(base) if r["what"] == "report"])
    table = {r["what"]: r["finding"] for r in rows(base)}
    assert table["verdict"].startswith("FAIL - "), table
    assert any(w.startswith("bounds [") and "missing" in f for w, f in table.items()), table  # a check's sentence
    assert b"<html" in get(base + done[0]["finding"]).lower()  # report.html, served by the web UI
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000",
                          "--dump-dom", f"{base}/?tab=correctness"], capture_output=True, text=True, timeout=90).stdout
    for text in ("Correctness", "FAIL - ", "VIOLATION", "report.html"):
        assert text in dom, f"{text!r} is not on the rendered tab"


def test_a_pass_shows_what_the_run_could_have_caught(locust_ui):
    base = locust_ui("redis-counter")
    post(f"{base}/swarm", {"user_count": "4", "spawn_rate": "4", "host": ""})
    checked = re.compile(r"no violation in [1-9][0-9,]* ops so far")
    wait_for("ops to be checked online", lambda: any(checked.match(r["finding"]) for r in rows(base)), timeout=30)
    post(f"{base}/stop")
    wait_for("the verdict after Stop", lambda: any(r["what"] == "report" for r in rows(base)))
    table = {r["what"]: r["finding"] for r in rows(base)}
    assert table["verdict"] == "PASS - every check holds", table
    assert "would have caught" in table["detection power"]
