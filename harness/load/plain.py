"""Plain ``locust -f locustfiles/<workload>.py --scenario NAME --target-url URL``: each test start
prepares a fresh run folder, each test stop concludes it -- the same pipeline steps as
``counterbench run`` (``harness.pipeline``), so ``counterbench check`` and ``report`` work on it too."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from harness import pipeline
from harness.config.files import get_scenario, with_overrides
from harness.config.scenario import Scenario
from harness.errors import CounterbenchError
from harness.runfolder import RunFolder, new_run_id
from harness.shipped import scenario_file

log = logging.getLogger("counterbench")


def start(opts: Any, *, first_test: bool) -> tuple[Scenario, RunFolder, str, list[str]]:
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
    return scenario, folder, url, keys


def conclude(folder: RunFolder, *, scenario: Scenario, target_url: str) -> None:
    """A test stops: the final read and the verdict, as ``counterbench run`` concludes."""
    verdict = pipeline.conclude(folder, scenario=scenario, target_url=target_url, load_exit_code=None)
    log.info("counterbench: verdict %s (%s): %s", verdict["verdict"], folder.path, verdict["reason"])
