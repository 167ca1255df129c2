"""The abstract counter user: owns its op client and draws ops; concrete users only add a @task.

Locustfiles import it through ``harness.locustfile`` (``from harness.locustfile import CounterUser``), which
also brings plain Locust runs their run folder and verdict; importing it registers the
counterbench hooks of ``harness.load.session``.
"""

from __future__ import annotations

import random

from locust import User
from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_STOPPING

from harness.core.ops import Outcome
from harness.load import session as _session
from harness.load.context import LoadContext
from harness.metrics.tags import op_label, op_tag
from harness.targets import OpClient
from harness.targets.registry import BACKENDS
from harness.workloads import OpChooser

_now = _session._now
# closed model without think time: a user runs ops back to back for this long per Locust task
BURST_S = 0.02


class CounterUser(User):
    """Owns the op client and draws ops; concrete users only add a @task calling ``step``."""

    abstract = True
    workload: str = ""  # the workload kind this locustfile drives
    ops: OpClient

    intended: float | None = None  # open model: when the current op was due (time.monotonic seconds)
    interval: float = 0.0
    kind: str = "incr"
    request_type: str = ""
    intended_tags: dict[Outcome, str]
    late_tag: str = ""
    open_model: bool = False
    think: float = 0.0  # closed model: the scenario's wait between ops
    in_flight: tuple[list[tuple[str, int]], int, str] | None = None  # the ops out now, when sent, their kind
    in_flight_ids: list[int] | None = None  # their op ids, once their invokes are in the history
    tokens: bool = False  # the op client sends idempotency keys: ops are invoked before they are sent

    def wait_time(self) -> float:
        session = _session.SESSION
        if session is None or session.run is None:
            return 0.0
        if not self.open_model:
            return self.think
        load = session.run.scenario.load
        # open model: each user owns an equal share of the arrival rate, on a fixed schedule
        now = _now()
        rate = load.rate_at(now - session.run.started) or 1.0
        self.interval = load.users / rate  # the pool shares the rate, whichever process each user is in
        self.next_due = (self.next_due or now) + self.interval
        return max(0.0, self.next_due - now)

    def on_start(self) -> None:
        session = _session.SESSION
        if session is None or session.run is None or session.failed:
            raise StopUser()
        run = session.run
        self.next_due: float | None = None
        if run.scenario.workload.kind != self.workload:
            session.fatal(f"scenario {run.scenario.name} is a {run.scenario.workload.kind} workload; "
                          f"run it with locustfiles/{run.scenario.workload.kind.replace('-', '_')}.py")
            raise StopUser()
        self.chooser = OpChooser(run.scenario.workload, run.keys, seed=random.SystemRandom().randrange(2**32),
                                 uniform=run.scenario.target.spread_keys)
        context = LoadContext(user=self, deadlines=run.watchdog, shared=run.shared)
        self.ops = BACKENDS[run.scenario.target.kind].ops(run.scenario, run.target_url, context)
        self.tokens = bool(getattr(self.ops, "tokens", False))
        # Redis pipelining: several increments per round trip, each still its own op in the history
        self.pipeline = getattr(run.scenario.target, "pipeline", 1)
        # what every op needs, worked out once
        self.kind = run.scenario.workload.op
        self.request_type = op_label(self.kind)
        self.intended_tags = {o: op_tag(self.kind, o.value, "intended") for o in Outcome}
        self.read_tags = {o: op_tag("read", o.value, "intended") for o in Outcome}
        self.late_tag = op_tag(self.kind, "late")
        self.open_model = run.scenario.load.open_model
        self.think = run.scenario.load.wait
        session.users.add(self)

    def on_stop(self) -> None:
        ops = getattr(self, "ops", None)
        if ops is not None:
            ops.close()
        session = _session.SESSION
        if session is not None and self.in_flight is None:
            session.users.discard(self)  # a user cut off mid-op stays: its invokes must reach the history

    def step(self) -> None:
        """One op or pipelined batch; in the closed model without think time, a burst of them.

        Locust's scheduling around each task (and the yield after it) costs more than a Redis
        round trip, so back-to-back ops repeat here for up to BURST_S, checking between ops
        whether Locust asked the user to stop. Other users still run while this one waits for
        its replies; open-model and paced users return to Locust after every op.
        """
        session = _session.SESSION
        assert session is not None and session.run is not None
        chooser, n = self.chooser, self.pipeline
        if self.open_model:
            self.intended = self.next_due or _now()
            if chooser.reads and chooser.read_now():
                session.execute(self, [(chooser.key(), 0)], kind="read")
            else:
                session.execute(self, [chooser.next() for _ in range(n)])
            return
        end = _now() + BURST_S if self.think == 0 else 0.0
        while True:
            if chooser.reads and chooser.read_now():
                session.execute(self, [(chooser.key(), 0)], kind="read")
            else:
                session.execute(self, [chooser.next()] if n == 1 else [chooser.next() for _ in range(n)])
            if self._state == LOCUST_STATE_STOPPING or _now() >= end:
                return
