"""Before and after the load: write run.json, set the initial state, read the final state.

Used by the CLI and, for plain `locust -f` runs, by the locustfiles' hooks.
"""

from __future__ import annotations

import time
from typing import Any

from harness.config import Scenario
from harness.runfolder import RunFolder, environment
from harness.secrets import register_run
from harness.targets.address import check_target_safe
from harness.targets.factory import make_admin
from harness.workloads import scenario_keys


def prepare(folder: RunFolder, *, scenario: Scenario, run_id: str, target_url: str,
            extra: dict[str, Any] | None = None) -> None:
    """Refuse unsafe targets, record the run, and set every key to its initial value."""
    check_target_safe(scenario, target_url)
    keys = scenario_keys(scenario, run_id)
    described = scenario.model_dump(mode="json")
    register_run(described, target_url)  # so that every later line or file can be scrubbed of them
    folder.write(folder.run_json, {  # written through harness.secrets.clean: credentials never reach it
        "run_id": run_id,
        "scenario": described,
        "target": {"kind": scenario.target.kind, "url": target_url, "variant": scenario.target.variant},
        "keys": keys,
        "environment": environment(),
        "started_at": time.time(),
        **(extra or {}),
    })
    initial = dict.fromkeys(keys, scenario.workload.initial)
    admin = make_admin(scenario, target_url)
    try:
        admin.setup(initial)
    finally:
        admin.close()
    folder.write(folder.state_json, {"initial": initial, "final": None})


def finish(folder: RunFolder, *, scenario: Scenario, target_url: str) -> None:
    """Read every key's final value (strongly consistent) once the load is over."""
    run = folder.read(folder.run_json)
    admin = make_admin(scenario, target_url)
    try:
        final = admin.read(run["keys"])
    finally:
        admin.close()
    folder.update(folder.state_json, final=final, final_read_at=time.time())
    folder.update(folder.run_json, ended_at=time.time())
