"""Op timeouts for gevent load users without a timer per op.

A socket timeout under gevent builds and arms a ``gevent.Timeout`` on every wait: on
a one-command Redis round trip that was ~9% of the load generator's CPU. Here each
op only notes its deadline; one greenlet per process looks every ``period`` seconds
and throws ``TimeoutError`` into ops past theirs (so a timeout fires up to ``period``
late). Imported only by the load side (it needs gevent).
"""

from __future__ import annotations

import time

import gevent
from greenlet import getcurrent, greenlet

_monotonic = time.monotonic


class Watchdog:
    """Deadlines of blocked ops, per greenlet; ``arm`` and ``disarm`` around each blocking call."""

    def __init__(self, *, period: float = 0.05) -> None:
        self._armed: dict[greenlet, float] = {}
        self._loop = gevent.get_hub().loop
        self._runner = gevent.spawn(self._run, period)

    def arm(self, timeout: float) -> None:
        self._armed[getcurrent()] = _monotonic() + timeout

    def disarm(self) -> None:
        self._armed.pop(getcurrent(), None)

    def _run(self, period: float) -> None:
        while True:
            gevent.sleep(period)
            now = _monotonic()
            for g, deadline in list(self._armed.items()):
                if deadline <= now:
                    # thrown from the hub, as gevent's own Timeout does: the op's greenlet is parked there
                    self._loop.run_callback(self._expire, g, now)

    def _expire(self, g: greenlet, now: float) -> None:
        deadline = self._armed.get(g)
        if deadline is not None and deadline <= now:  # still blocked in the same op
            del self._armed[g]
            g.throw(TimeoutError("timed out (no reply within the op timeout)"))

    def close(self) -> None:
        self._runner.kill(block=False)
        self._armed.clear()
