"""Plain Locust runs, from the load stage's side: the hooks a face fills (``harness.locustfile`` calls
``use_plain`` when a locustfile imports it) and the greenlet that polls its online checks.

The load stage knows no pipeline, check or report: a plain run's run folder, verdict and Correctness tab
are the face's, reached only through ``PlainRuns``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol

import gevent

from harness.config.scenario import Scenario
from harness.core.errors import CounterbenchError
from harness.core.runfolder import RunFolder
from harness.load.progress import ONLINE_EVERY

log = logging.getLogger("counterbench")


class PlainRuns(Protocol):
    """What a plain Locust run needs beyond the load (``harness.locustfile.PlainRuns``): a run folder per test,
    the online checks, the verdict at its stop, and the web UI's Correctness tab."""

    def start(self, opts: Any, *, first_test: bool) -> tuple[Scenario, RunFolder, str, list[str]]: ...

    def poll(self, after_s: float) -> list[str]: ...

    def conclude(self, folder: RunFolder, *, scenario: Scenario, target_url: str) -> None: ...

    def rows(self) -> list[dict[str, str]]: ...

    def file(self, name: str) -> Path | None: ...


PLAIN: PlainRuns | None = None


def use_plain(runs: PlainRuns) -> None:
    """The face that runs plain Locust tests (``harness.locustfile`` calls it on import)."""
    global PLAIN
    PLAIN = runs


def face() -> PlainRuns:
    if PLAIN is None:
        raise CounterbenchError("a plain Locust run needs the locustfile to import its user from harness.locustfile "
                                "(`from harness.locustfile import CounterUser`)")
    return PLAIN


def watch_online(runs: PlainRuns, scenario: Scenario, started: float, env: Any) -> None:
    """A plain run's online checks, every half second: each violation logged as it is proven; with
    stop_on_violation, the first one stops the test (which then concludes, as at its end)."""
    while True:
        gevent.sleep(ONLINE_EVERY)
        try:
            found = runs.poll(time.monotonic() - started)
        except Exception:  # the online checks are extra: the load and its verdict go on without them
            log.exception("counterbench: the online checks stopped")
            return
        for line in found:
            log.warning("counterbench: %s", line)
        if found and scenario.stop_on_violation and env.runner is not None:
            log.warning("counterbench: stopping the test at the first violation (stop_on_violation)")
            gevent.spawn_later(0, env.runner.stop)
            return
