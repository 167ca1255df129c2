"""What the load process lends a backend to build its op client (``harness.targets.OpContext``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from locust import User
from locust.contrib.fasthttp import FastHttpSession

from harness.load.keepalive import KeepAliveConnection
from harness.load.watchdog import Watchdog
from harness.targets import Transport
from harness.targets.http import BaseUrl

T = TypeVar("T")


class _NoEvents:
    """FastHttpSession reports every request itself; counterbench reports the classified op instead."""

    def fire(self, **_: Any) -> None:
        pass


class LoadContext:
    """One load user's: the process's watchdog, HTTP transports, and clients shared by the process."""

    def __init__(self, *, user: User, deadlines: Watchdog | None, shared: dict[str, Any]) -> None:
        self._user = user
        self._deadlines = deadlines
        self._shared = shared

    @property
    def deadlines(self) -> Watchdog | None:
        return self._deadlines

    def shared(self, name: str, build: Callable[[], T]) -> T:
        if name not in self._shared:
            self._shared[name] = build()
        return self._shared[name]  # type: ignore[no-any-return]

    def http(self, base_url: str, *, timeout: float) -> Transport:
        """A lean keep-alive connection for http://; Locust's FastHttpSession (geventhttpclient,
        without retries or redirects) for https://. Either way each path gets the base URL's path in
        front and its query behind, and its user and password as Basic auth (``BaseUrl``)."""
        base = BaseUrl.parse(base_url)
        parts = urlsplit(base_url)
        if parts.scheme == "http" and parts.hostname:
            conn = KeepAliveConnection(parts.hostname, parts.port or 80, timeout=timeout, deadlines=self._deadlines)
            if not base.prefix and not base.query and base.authorization is None:
                return conn

            def via(method: str, path: str, body: bytes | None,
                    headers: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
                return conn(method, base.path(path), body, base.headers(headers))

            via.close = conn.close  # type: ignore[attr-defined]
            return via
        session = FastHttpSession(base_url=base.origin, request_event=_NoEvents(), user=self._user, max_retries=0,
                                  max_redirects=0, network_timeout=timeout, connection_timeout=timeout)

        def send(method: str, path: str, body: bytes | None,
                 headers: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
            resp = session.request(method, base.path(path), data=body, headers=dict(base.headers(headers)))
            if not resp.status_code:  # no answer at all: the transport error decides
                raise resp.error or ConnectionError("no response")
            return resp.status_code, dict(resp.headers or {}), resp.content or b""

        return send
