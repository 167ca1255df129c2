"""The load side's op watchdog, in a child process patched by gevent as Locust patches its workers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, socket, time
    import gevent
    from harness.load.keepalive import KeepAliveConnection
    from harness.targets.redis import RedisAddress, RedisOps
    from harness.load.watchdog import Watchdog

    # a "server" that accepts and never answers, and one that answers INCR at once
    silent = socket.create_server(("127.0.0.1", 0))
    quick = socket.create_server(("127.0.0.1", 0))
    held = []

    def hold():
        while True:
            held.append(silent.accept()[0])

    def answer():
        while True:
            conn = quick.accept()[0]
            def serve(c=conn):
                n = 0
                while c.recv(4096):
                    n += 1
                    c.sendall(b":%d\\r\\n" % n)
            gevent.spawn(serve)

    gevent.spawn(hold)
    gevent.spawn(answer)
    watchdog = Watchdog(period=0.05)
    out = {}

    def redis(port, timeout):
        ops = RedisOps(RedisAddress.parse(f"redis://127.0.0.1:{port}/0"), variant="atomic", timeout=timeout,
                       deadlines=watchdog)
        t0 = time.monotonic()
        done = ops.incr("k", 1)
        return done.outcome.value, done.error, time.monotonic() - t0, ops

    out["silent"] = redis(silent.getsockname()[1], 0.3)[:3]
    # ops that finish in time are never hit by an old deadline, even long after it passed
    _, _, _, ops = redis(quick.getsockname()[1], 0.1)
    values = []
    for _ in range(5):
        values.append(ops.incr("k", 1).value)
        gevent.sleep(0.15)
    out["quick"] = values
    conn = KeepAliveConnection("127.0.0.1", silent.getsockname()[1], timeout=0.3, deadlines=watchdog)
    t0 = time.monotonic()
    try:
        conn("POST", "/", b"{}", {})
        out["http"] = "answered"
    except TimeoutError as e:
        out["http"] = ["timeout", str(e), time.monotonic() - t0]
    print(json.dumps(out))
""")


def test_blocked_ops_time_out_and_finished_ops_are_left_alone():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    outcome, error, elapsed = out["silent"]
    assert outcome == "indeterminate" and "timeout" in error
    assert 0.3 <= elapsed < 1.0  # the op timeout, plus at most a watchdog period or so
    assert out["quick"] == [2, 3, 4, 5, 6]
    assert out["http"][0] == "timeout" and 0.3 <= out["http"][2] < 1.0
