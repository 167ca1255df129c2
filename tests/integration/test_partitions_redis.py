"""A Redis primary cut off, not dead (the shipped `partitions` suite, real servers): the Sentinels promote a
replica while the old primary goes on acknowledging whoever still reaches it; when it rejoins, that is
thrown away. Each direction on the same 8-s partition of the primary (at 2 s, two replicas, three
Sentinels):

- clients kept on the old primary's side lose everything it acknowledged after the cut;
- with min-replicas-to-write 1 / max-lag 2 it refuses writes once its replicas are silent: the loss is
  bounded by about that lag, not zero;
- with WAIT 1 after each INCR nothing acknowledged is lost (and the partition happened, and mattered);
- clients cut off with it follow the failover; split, half of them do, and two primaries hand out the
  same values.

Lost increments are dated from the history as the report dates them (``harness.report.lost``): the loss
window is how long after the partition opened, and before it healed, the old primary still acknowledged an
increment that was then lost. Counts are compared per second of the load's own pace before the cut (a shared machine's
throughput varies from one run to the next; a lost second does not)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harness.core.ops import Outcome
from harness.core.runfolder import RunFolder
from harness.history import OUTCOMES, OpColumns, read_history
from harness.report.lost import lost_increments
from tests.integration.conftest import SHIPPED, run_cli

pytestmark = pytest.mark.integration

PLAIN, MIN_REPLICAS, WAIT = ("redis-sentinel-partition", "redis-sentinel-partition-min-replicas",
                             "redis-sentinel-partition-wait")
_OK = OUTCOMES.index(Outcome.OK)


@dataclass(frozen=True, kw_only=True)
class Partitioned:
    """One run of a partition scenario, read back from its run folder (times: seconds since the load started)."""

    verdict: dict[str, Any]
    opened_s: float
    healed_s: float
    lost_t: np.ndarray  # when each lost increment was acknowledged
    ok_t: np.ndarray  # when each acknowledged op was

    @property
    def lost(self) -> int:
        return int(self.verdict["totals"]["lost"])

    @property
    def window(self) -> float:
        """How long after the partition opened, and before it healed, the old primary still acknowledged an
        increment then lost. (At the heal the replication bytes the partition held arrive at once: the old
        primary may count its replicas good again for an instant, and take a write or two, before it learns
        they left it.)"""
        during = self.lost_t[(self.lost_t >= self.opened_s) & (self.lost_t < self.healed_s)]
        return float(during.max() - self.opened_s) if len(during) else 0.0

    @property
    def lost_seconds(self) -> float:
        """The loss in seconds of the load's pace before the cut (acknowledged ops per second until then)."""
        rate = float((self.ok_t < self.opened_s).sum()) / self.opened_s
        return self.lost / rate

    def acknowledged(self, start: float, end: float) -> int:
        return int(((self.ok_t >= start) & (self.ok_t < end)).sum())


def _ok_times(folder: RunFolder, start_wall: float) -> np.ndarray:
    parts: list[tuple[str, np.ndarray]] = []

    def collect(c: OpColumns) -> None:
        rows = (c.outcome == _OK) & (c.completed_us >= 0)
        parts.append((c.worker, c.completed_us[rows]))

    history = read_history(folder.history_dir, collect)
    anchor = {w.worker: float(w.header.get("anchor_wall_ns", 0)) / 1e9 for w in history.workers}
    return np.concatenate([anchor[w] + us / 1e6 - start_wall for w, us in parts] or [np.zeros(0)])


def _read(run_dir: Path, verdict: dict[str, Any]) -> Partitioned:
    folder = RunFolder(run_dir)
    (fault,) = verdict["faults"]
    # it happened, and the Sentinels promoted a replica before it healed (else nothing it was for happened)
    assert (fault["action"], fault["status"], fault["happened"]) == ("partition", "healed", True), fault
    assert fault["promoted"], fault
    key = folder.read(folder.run_json)["keys"][0]
    final = folder.read(folder.state_json)["final"][key]
    start = folder.load_started()
    assert start is not None
    lost = lost_increments(folder, key=key, final=final, start_wall=start)
    assert lost is not None
    return Partitioned(verdict=verdict, opened_s=fault["opened_s"], healed_s=fault["healed_s"], lost_t=lost.lost_t,
                       ok_t=_ok_times(folder, start))


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Partitioned]]:
    """Runs a shipped partition scenario once per module (with its clients on another side if asked)."""
    runs: dict[tuple[str, str], Partitioned] = {}

    def run(scenario: str, clients: str = "keep") -> Partitioned:
        if (scenario, clients) not in runs:
            tmp = tmp_path_factory.mktemp(f"{scenario}-{clients}")
            file = SHIPPED
            if clients != "keep":  # the same scenario, the load on another side of the partition
                doc = yaml.safe_load(SHIPPED.read_text())
                doc["scenarios"] = {scenario: doc["scenarios"][scenario]}
                doc["scenarios"][scenario]["faults"] = [{**doc["scenarios"][scenario]["faults"][0], "clients": clients}]
                doc["suites"] = {}
                file = tmp / "scenarios.yaml"
                file.write_text(yaml.safe_dump(doc))
            code, v = run_cli(tmp, "-f", str(file), "-s", scenario)
            assert v is not None, f"{scenario} ({clients}): no verdict (exit {code})"
            assert code == {"pass": 0, "fail": 1, "unknown": 2}[v["verdict"]]
            runs[(scenario, clients)] = _read(tmp / "run", v)
        return runs[(scenario, clients)]

    yield run


def test_a_primary_cut_off_not_dead_acknowledges_what_its_demotion_throws_away(partitioned):
    p = partitioned(PLAIN)
    assert p.verdict["verdict"] == "fail", p.verdict["reason"]
    assert 2 <= p.opened_s < 2.5 and p.healed_s >= 10
    assert p.lost > 0 and len(p.lost_t) == p.lost
    # the clients stayed with it and were answered through the partition and after the heal, until the load
    # ended (the Sentinels demote it some 8 s after they see it again): all of that is lost
    assert p.window >= p.healed_s - p.opened_s - 0.5  # acknowledging until the heal, and after it
    assert p.acknowledged(p.opened_s + 1, p.healed_s) > 0
    assert p.verdict["totals"]["duplicate_values"] == 0  # no client reached the new primary during the load


def test_min_replicas_bounds_the_loss_to_about_the_lag_it_allows(partitioned):
    plain, bounded = partitioned(PLAIN), partitioned(MIN_REPLICAS)
    assert bounded.verdict["verdict"] == "fail", bounded.verdict["reason"]
    assert bounded.lost > 0  # bounded, not zero: what it acknowledged before its replicas counted as silent
    max_lag = 2
    # Redis counts good replicas once a second: refusals (NOREPLICAS) start between max_lag and max_lag + 1 s
    assert max_lag - 0.5 <= bounded.window <= max_lag + 2, bounded.window
    assert bounded.window < plain.window / 2
    assert bounded.lost_seconds < plain.lost_seconds, (bounded.lost_seconds, plain.lost_seconds)
    assert bounded.acknowledged(bounded.opened_s + max_lag + 2, bounded.healed_s) == 0  # refused, every one
    assert bounded.verdict["totals"]["fail"] > 0  # the NOREPLICAS refusals: not applied, so not uncertain


def test_wait_for_a_replica_keeps_every_acknowledged_increment_through_the_partition(partitioned):
    waited = partitioned(WAIT)
    assert waited.verdict["verdict"] == "pass", waited.verdict["reason"]
    assert 2 <= waited.opened_s < 2.5 and waited.healed_s >= 10  # it happened (read back: opened, healed) ...
    assert waited.verdict["totals"]["indeterminate"] > 0  # ... what no replica acknowledged was not claimed
    assert waited.acknowledged(waited.opened_s + 0.5, waited.healed_s) == 0
    assert partitioned(PLAIN).lost > 0  # ... and it mattered: the same partition without WAIT loses increments


def test_clients_cut_off_with_the_primary_follow_the_failover_and_lose_nothing_acknowledged_after_the_cut(
        partitioned):
    cut, kept = partitioned(PLAIN, "cut"), partitioned(PLAIN)
    # their path went silent with it: they timed out, asked the Sentinels and moved to the new primary
    assert cut.acknowledged(cut.opened_s + 0.5, cut.healed_s) > 0
    assert cut.verdict["totals"]["indeterminate"] > 0
    # what the old primary acknowledged in the instant the links were being cut may still be lost (asynchronous
    # replication), nothing later
    assert cut.window < 0.1, cut.window
    assert cut.lost_seconds < kept.lost_seconds / 10


def test_clients_split_across_the_partition_see_two_primaries_hand_out_the_same_values(partitioned):
    split = partitioned(PLAIN, "split")
    assert split.verdict["verdict"] == "fail", split.verdict["reason"]
    # half stayed with the old primary (lost), half followed the failover to the new one, which counted on from
    # where replication stopped: the same values twice -- split brain, seen from the clients
    assert split.lost > 0 and split.verdict["totals"]["duplicate_values"] > 0
    assert split.window >= split.healed_s - split.opened_s - 0.5
