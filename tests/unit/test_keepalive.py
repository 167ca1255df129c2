"""The lean keep-alive HTTP connection against small real servers on 127.0.0.1 (plain sockets)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from harness.core.ops import Outcome
from harness.load.keepalive import KeepAliveConnection
from harness.targets.classify import HTTP_RULES, NotSent, classify_exception

Handler = Callable[[socket.socket, int], bool]  # (connection, request number) -> keep the connection open


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(
        b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(4096)
    return head


@pytest.fixture
def server() -> Iterator[Callable[[Handler], tuple[int, list[int]]]]:
    """Starts a server whose connections are answered by a handler; yields (port, connections seen)."""
    socks: list[socket.socket] = []

    def start(handler: Handler) -> tuple[int, list[int]]:
        listener = socket.create_server(("127.0.0.1", 0))
        socks.append(listener)
        seen: list[int] = []

        def serve(conn: socket.socket) -> None:
            with conn:
                n = 0
                while _read_request(conn):
                    n += 1
                    if not handler(conn, n):
                        return

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                seen.append(1)
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return listener.getsockname()[1], seen

    yield start
    for s in socks:
        s.close()


def ok(conn: socket.socket, value: int, *, extra: bytes = b"", split: bool = False) -> None:
    body = b'{"value": %d}' % value
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra)
    if split:  # head and body in two writes, as uvicorn sends them
        conn.sendall(head)
        time.sleep(0.01)
        conn.sendall(body)
    else:
        conn.sendall(head + body)


def post(c: KeepAliveConnection) -> tuple[int, bytes]:
    status, _, body = c("POST", "/counters/k/increment", b'{"amount": 1}', {"Content-Type": "application/json"})
    return status, body


def test_answers_reuse_one_connection_and_split_answers_parse(server):
    port, seen = server(lambda conn, n: ok(conn, n, split=n % 2 == 0) or True)
    c = KeepAliveConnection("127.0.0.1", port, timeout=2)
    assert [post(c) for _ in range(4)] == [(200, b'{"value": %d}' % i) for i in range(1, 5)]
    assert len(seen) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_not_an_error(server):
    # the server closes each connection after one answer, without saying so: like a keep-alive timeout
    port, seen = server(lambda conn, n: ok(conn, n) or False)
    c = KeepAliveConnection("127.0.0.1", port, timeout=2)
    assert post(c) == (200, b'{"value": 1}')
    time.sleep(0.7)  # idle longer than the connection's look-before-reuse threshold
    assert post(c) == (200, b'{"value": 1}')
    assert len(seen) == 2


def test_connection_close_is_honoured(server):
    port, seen = server(lambda conn, n: ok(conn, n, extra=b"Connection: close\r\n") or True)
    c = KeepAliveConnection("127.0.0.1", port, timeout=2)
    assert post(c) == (200, b'{"value": 1}')
    assert post(c) == (200, b'{"value": 1}')  # a fresh connection: the first was closed as announced
    assert len(seen) == 2


def test_a_server_that_hangs_up_without_an_answer_is_indeterminate(server):
    port, _ = server(lambda conn, n: False)
    c = KeepAliveConnection("127.0.0.1", port, timeout=2)
    with pytest.raises(OSError) as e:
        post(c)
    assert classify_exception(e.value, HTTP_RULES).outcome is Outcome.INDETERMINATE


def test_no_answer_in_time_is_a_timeout_and_indeterminate(server):
    port, _ = server(lambda conn, n: time.sleep(1.5) or False)
    c = KeepAliveConnection("127.0.0.1", port, timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as e:
        post(c)
    assert time.monotonic() - t0 < 1.2
    done = classify_exception(e.value, HTTP_RULES)
    assert done.outcome is Outcome.INDETERMINATE and "timeout" in (done.error or "")


def test_nothing_listening_is_not_sent_and_fails():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        c = KeepAliveConnection("127.0.0.1", port, timeout=1)
        with pytest.raises(NotSent) as e:
            post(c)
    assert classify_exception(e.value, HTTP_RULES).outcome is Outcome.FAIL
