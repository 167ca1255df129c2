"""After the load: ask the target, by each uncertain op's idempotency key, whether it was applied.

An indeterminate op of a target that honours idempotency keys need not stay uncertain: its key
(``harness.core.ops.op_token``) is known from the history alone, and the service's lookup says whether
it was applied (with the value it left) or not -- finally: the service fences a key it has not
seen, so the op can no longer land later. The history stays as it was written; the answers go to
``resolutions.json`` and the judge applies them (``harness.checks.columns``).
"""

from __future__ import annotations

from harness.config.scenario import Scenario
from harness.core.errors import HistoryError, TargetError
from harness.core.ops import Outcome, op_token
from harness.core.runfolder import RunFolder
from harness.history import OUTCOMES, OpColumns, read_history
from harness.targets.registry import BACKENDS

MAX_LOOKUPS = 100_000  # one request each: past this many, the rest stay uncertain (and are counted)
_IND = OUTCOMES.index(Outcome.INDETERMINATE)


def resolve(folder: RunFolder, *, scenario: Scenario, target_url: str) -> bool:
    """Look up every uncertain op (up to MAX_LOOKUPS); returns whether the target could be asked."""
    resolver = BACKENDS[scenario.target.kind].resolver(scenario, target_url)
    if resolver is None:
        return False
    uncertain: list[tuple[str, int]] = []

    def collect(c: OpColumns) -> None:
        uncertain.extend((c.worker, int(i)) for i in c.id[c.outcome == _IND].tolist())

    try:
        read_history(folder.history_dir, collect)
    except HistoryError:
        return False  # no history: nothing to resolve (the judge says why)
    run_id = str(folder.read(folder.run_json)["run_id"])
    applied: dict[str, dict[int, int]] = {}
    not_applied: dict[str, list[int]] = {}
    errors: list[str] = []
    asked = 0
    try:
        for worker, op in uncertain[:MAX_LOOKUPS]:
            asked += 1
            try:
                value = resolver.resolve(op_token(run_id, worker, op))
            except TargetError as e:
                errors.append(str(e))
                if len(errors) >= 10 and not applied and not not_applied:
                    break  # the lookup does not work at all: stop asking
                continue
            if value is None:
                not_applied.setdefault(worker, []).append(op)
            else:
                applied.setdefault(worker, {})[op] = value
    finally:
        resolver.close()
    folder.write_resolutions(asked=asked, applied=applied, not_applied=not_applied, errors=errors,
                             skipped=len(uncertain) - asked)
    return True
