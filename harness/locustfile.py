"""What a locustfile imports: ``from harness.locustfile import CounterUser``. The user class itself is
``harness.load.user``'s; importing it from here also brings what a *plain* Locust run needs beyond the load.

Plain ``locust -f locustfiles/<workload>.py --scenario NAME --target-url URL``, headless or with its web
UI: each test start prepares a fresh run folder, each test stop concludes it -- the same pipeline steps as
``counterbench run`` (``harness.pipeline``), so ``counterbench check`` and ``report`` work on it too. While
the test runs, the online checks (``harness.checks.online``) follow its history; with the web UI, a
"Correctness" tab shows their violations and, after Stop, the verdict with a link to report.html
(``harness.load.webtab``).

A face, like ``harness.cli``: it knows the pipeline, the checks and the report, and hands the load stage
(``harness.load.session``, which knows none of them) what it needs through ``use_plain``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from harness import pipeline
from harness.checks.online import OnlineChecks
from harness.config.files import get_scenario, with_overrides
from harness.config.scenario import Scenario
from harness.core.errors import CounterbenchError
from harness.core.runfolder import RunFolder, new_run_id
from harness.core.shipped import scenario_file
from harness.load.plain import use_plain
from harness.load.user import CounterUser
from harness.report.summary import MARK, detection_sentence, finding

__all__ = ["CounterUser", "PlainRuns"]

log = logging.getLogger("counterbench")


class PlainRuns:
    """The run folder of each test of a plain Locust run, its online checks, and its verdict."""

    def __init__(self) -> None:
        self.folder: RunFolder | None = None
        self.online: OnlineChecks | None = None
        self.verdict: dict[str, Any] | None = None
        self.report: str | None = None  # report.html's name in the run folder, once built
        self.concluding = False

    def start(self, opts: Any, *, first_test: bool) -> tuple[Scenario, RunFolder, str, list[str]]:
        """A test starts: the scenario, a fresh run folder prepared (run.json, initial state), its keys."""
        if not opts.scenario:
            raise CounterbenchError("--scenario NAME is required (see scenarios.yaml)")
        scenario = get_scenario(scenario_file(opts.scenarios_file or None), opts.scenario)
        url = opts.target_url or scenario.target.url
        if not url:
            raise CounterbenchError("--target-url is required (the scenario names no target url)")
        scenario = with_overrides(scenario, target_url=url)
        run_id = new_run_id(scenario.name)
        given = Path(opts.run_dir) if opts.run_dir and first_test else None
        folder = RunFolder(given or Path("reports") / run_id)
        if folder.run_json.exists():
            raise CounterbenchError(f"{folder.path} already holds a run; choose a new --run-dir")
        keys = pipeline.prepare(folder, scenario=scenario, run_id=run_id, target_url=url,
                                extra={"mode": "locust", "workers": []})
        self.folder, self.verdict, self.report, self.concluding = folder, None, None, False
        self.online = OnlineChecks(folder)
        return scenario, folder, url, keys

    def poll(self, after_s: float) -> list[str]:
        """The lines of the violations the online checks proved since the last poll."""
        if self.online is None or self.concluding:
            return []
        return [v.line() for v in self.online.poll(after_s)]

    def conclude(self, folder: RunFolder, *, scenario: Scenario, target_url: str) -> None:
        """A test stops: the final read, the verdict and the report, as ``counterbench run`` concludes."""
        self.concluding = True
        if self.online is not None:
            self.online.close()
            folder.update(folder.run_json, online=self.online.status())
        verdict = pipeline.conclude(folder, scenario=scenario, target_url=target_url, load_exit_code=None)
        log.info("counterbench: verdict %s (%s): %s", verdict["verdict"], folder.path, verdict["reason"])
        self.verdict = verdict
        try:
            self.report = pipeline.report(folder).name
        except Exception as e:  # the verdict stands without its report
            log.error("counterbench: report.html could not be built: %s", e)

    def rows(self) -> list[dict[str, str]]:
        """The Correctness tab: what the online checks found so far, then the verdict (checks as
        sentences, what the run could have caught) and where the report is."""
        if self.folder is None:
            return [{"what": "run", "finding": "no test has started"}]
        rows = [{"what": "run folder", "finding": str(self.folder.path)}]
        online = self.online
        if online is not None:
            if online.off is not None:
                rows.append({"what": "online checks", "finding": f"off: {online.off}"})
            elif not online.found:
                rows.append({"what": "online checks", "finding": f"no violation in {online.ops:,} ops so far "
                                                                f"({', '.join(online.checks)})"})
            rows += [{"what": "VIOLATION", "finding": v.line().removeprefix("VIOLATION ")} for v in online.found]
        v = self.verdict
        if v is None:
            rows.append({"what": "verdict", "finding": "after Stop: the final read, then every check"
                         if not self.concluding else "judging ..."})
            return rows
        rows.append({"what": "verdict", "finding": f"{MARK[v['verdict']]} - {v['reason']}"})
        for c in v["checks"]:
            rows.append({"what": f"{c['name']} [{c['key']}]", "finding": finding(c)})
        power = detection_sentence(v.get("detection"))
        if power and v["verdict"] == "pass":
            rows.append({"what": "detection power", "finding": power})
        if self.report is not None:
            rows.append({"what": "report", "finding": f"/counterbench/run/{self.report}"})
        return rows

    def file(self, name: str) -> Path | None:
        """A file of the current run folder, for the web UI (report.html and its figures)."""
        return None if self.folder is None else self.folder.path / name


use_plain(PlainRuns())
