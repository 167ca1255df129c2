"""A stalled proxy path: connections stay open and deliver nothing either way, new ones too, until it
flows again; then what was held arrives. Held connections wait without spinning (a partition holds a
hundred of them: the Sentinels reconnect to a silent node every half second)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness.stack.proxy import TcpProxy


@pytest.fixture
def echo() -> Iterator[int]:
    """A loopback echo server; its port."""
    server = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy resets what it still holds when it stops
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for c in conns:
        c.close()


def _client(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=0.3)


def _silent(sock: socket.socket) -> bool:
    """Nothing arrives within the socket's timeout, and the connection is not closed either."""
    try:
        sock.recv(10)
    except TimeoutError:
        return True
    return False


def test_a_stalled_path_holds_the_bytes_of_open_and_new_connections_until_it_flows(echo):
    with TcpProxy("127.0.0.1", echo) as proxy:
        before = _client(proxy)
        before.sendall(b"a")
        assert before.recv(10) == b"a"
        proxy.stalled = True
        before.sendall(b"b")
        during = _client(proxy)  # a new connection is accepted, and goes silent too
        during.sendall(b"c")
        assert _silent(before) and _silent(during)
        proxy.stalled = False
        before.settimeout(2)
        during.settimeout(2)
        assert before.recv(10) == b"b" and during.recv(10) == b"c"
        before.close()
        during.close()


def test_held_connections_wait_without_spinning(echo):
    with TcpProxy("127.0.0.1", echo) as proxy:
        proxy.stalled = True
        held = [_client(proxy) for _ in range(100)]
        for s in held:
            s.sendall(b"x")
        time.sleep(0.2)  # every pump holds its byte now
        cpu = time.process_time()
        time.sleep(0.5)
        spent = time.process_time() - cpu
        proxy.stalled = False
        for s in held:
            s.close()
    # waiting on the event: ~0.002 s; polling every 5 ms: ~0.05 s on a fast core (2026-12-07), less when starved
    assert spent < 0.015, f"{spent:.3f} s of CPU in 0.5 s with 100 held connections"
