"""A lean HTTP/1.1 keep-alive connection for load users: one request at a time, no retries.

Locust's FastHttpSession wraps geventhttpclient's client in a user agent (cookies, URL
requoting, redirects, compatibility objects): on this harness's counter requests it cost
~500 us of CPU per op, so the load generator, not the service, set the pace. This
connection writes the request itself and parses the answer with geventhttpclient's
llhttp-based parser (a maintained parser, not a home-made one).

It never retries, and it knows whether a request left the process (``NotSent`` before the
first byte is written), which is what classification needs. Plain ``http://`` only; the
load side keeps FastHttpSession for ``https://``. Needs gevent (the load side only).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Mapping

from geventhttpclient.response import HTTPResponse

from harness.targets import Deadlines, readiness_wait
from harness.targets.classify import NotSent

# a connection idle this long may have been closed by the server (keep-alive timeouts are
# seconds): look before reusing it, so a stale connection is not mistaken for a failed op
_IDLE_CHECK_S = 0.5
_perf = time.perf_counter


class _Response(HTTPResponse):
    """The parser's answer, with the body kept as it arrives."""

    def __init__(self, method: str) -> None:
        super().__init__(method)
        self.body = bytearray()

    def _on_body(self, buf: bytearray) -> None:
        self.body += buf


class KeepAliveConnection:
    """``(method, path, body, headers) -> (status, headers, body)`` over one socket (a Transport)."""

    def __init__(self, host: str, port: int, *, timeout: float, deadlines: Deadlines | None = None) -> None:
        self._host, self._port = host, port
        self._host_header = host if port == 80 else f"{host}:{port}"
        self._timeout = timeout
        self._deadlines = deadlines
        self._sock: socket.socket | None = None
        self._wait: Callable[[], None] | None = None
        self._last_used = 0.0

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            raise NotSent(f"connect to {self._host}:{self._port}: {e}") from e
        if self._deadlines is not None:
            sock.settimeout(None)  # the watchdog times requests out
        self._sock, self._wait = sock, readiness_wait(sock)
        return sock

    def _usable(self) -> socket.socket:
        sock = self._sock
        if sock is not None and _perf() - self._last_used > _IDLE_CHECK_S:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:  # the server closed it (or sent something unasked): start afresh
                self.close()
                sock = None
        return sock if sock is not None else self._connect()

    def __call__(self, method: str, path: str, body: bytes | None,
                 headers: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
        sock = self._usable()
        head = [f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in headers.items())
        payload = body or b""
        if payload or method not in ("GET", "HEAD"):
            head.append(f"Content-Length: {len(payload)}\r\n")
        data = "".join(head).encode("latin-1") + b"\r\n" + payload
        deadlines = self._deadlines
        if deadlines is not None:
            deadlines.arm(self._timeout)
        try:
            sent = sock.send(data)  # gevent's sendall costs a syscall and a timer more per call
            while sent < len(data):
                sent += sock.send(data[sent:])
            resp = _Response(method)
            wait = self._wait
            while not resp.message_complete:
                if wait is not None:
                    wait()
                chunk = sock.recv(65536)
                resp.feed(chunk)
                if not chunk:
                    if not resp.message_complete:
                        raise ConnectionResetError("the server closed the connection before a whole answer")
                    break
        except BaseException:
            self.close()  # a late answer would answer the next request
            raise
        finally:
            if deadlines is not None:
                deadlines.disarm()
        if resp.should_close():
            self.close()
        self._last_used = _perf()
        return resp.status_code, dict(resp.items()), bytes(resp.body)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock, self._wait = None, None
