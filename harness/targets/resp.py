"""A lean RESP connection for load users, and where Redis is (one server, or a Sentinel's primary).

Load goes through this connection (hiredis parses replies) rather than redis-py, for two reasons:
redis-py's per-call overhead caps the load, and its automatic retries could apply a non-idempotent
INCR twice. It never retries and knows whether a command left the process (``NotSent`` before
the first byte is written), which is what classification needs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import hiredis

from harness.core.errors import ConfigError, SafetyError
from harness.targets import Deadlines, readiness_wait
from harness.targets.address import is_loopback_host
from harness.targets.classify import NotSent


def read_reply(sock: socket.socket, reader: Any, wait: Callable[[], None] | None = None, *,
               closed: str = "connection closed by the server") -> Any:
    """The next whole reply: what ``reader`` already holds, else what the socket brings (``wait`` first:
    a load user waits on the socket's read watcher rather than by a read that fails)."""
    reply = reader.gets()
    while reply is False:
        if wait is not None:
            wait()
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(closed)
        reader.feed(data)
        reply = reader.gets()
    return reply


HostPort = tuple[str, int]


def _host_port(text: str) -> HostPort:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not host:port")
    return host, int(port)


@dataclass(frozen=True, kw_only=True)
class Route:
    """How this client reaches a server a Sentinel names by ``announced``: one path per side of a partition.

    A local replicated stack has every server know the others by a proxy address (so that it can cut the
    links between them); the Sentinels name the primary by that address, which the load must not use (it
    would go silent with the servers' links). The stack gives the load its own paths instead, in the URL:
    ``route=127.0.0.1:7001>127.0.0.1:6001`` (the node itself), or ``>127.0.0.1:8001|127.0.0.1:8002``
    (a proxy per side: a partition's ``clients`` says which sides it cuts)."""

    announced: HostPort
    paths: tuple[HostPort, ...]

    @staticmethod
    def parse(text: str) -> Route:
        announced, sep, paths = text.partition(">")
        if not sep or not paths:
            raise ValueError(f"route {text!r}: expected host:port>host:port[|host:port...]")
        return Route(announced=_host_port(announced), paths=tuple(_host_port(p) for p in paths.split("|")))

    def text(self) -> str:
        return f"{self.announced[0]}:{self.announced[1]}>" + "|".join(f"{h}:{p}" for h, p in self.paths)


@dataclass(frozen=True, kw_only=True)
class RedisAddress:
    """Where Redis is: one server (``redis://host:port/db``), or the primary a Sentinel names
    (``redis+sentinel://host:port[,host:port...]/<service>/<db>[?route=...&route=...]``, routes: ``Route``)."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    allow_remote: bool = False  # the primary a Sentinel names must be loopback unless the scenario allows more
    role: str = "primary"  # or "replica": one of the replicas the Sentinel knows (reads from a replica)
    routes: tuple[Route, ...] = ()  # none: go where the Sentinel says; else every server it names has one
    side: int = 0  # which path of each route this client takes (a partition's side; 0 for setup and reads)

    @property
    def sides(self) -> int:
        """How many sides the routes offer (1 without routes)."""
        return max((len(r.paths) for r in self.routes), default=1)

    def on_side(self, n: int) -> RedisAddress:
        """This address for a client on side ``n`` (taken modulo the sides: users alternate)."""
        return replace(self, side=n % self.sides)

    def reach(self, host: str, port: int) -> HostPort:
        """The path to the server a Sentinel named ``host:port``: that address itself without routes, else
        this side's path of its route. A server with no route is an error, not a detour: the announced
        address is the servers' own link, which a partition cuts."""
        if not self.routes:
            return host, port
        for r in self.routes:
            if r.announced == (host, port):
                path = r.paths[self.side % len(r.paths)]
                return self._safe(*path)
        raise ConnectionError(f"no route to {host}:{port}, which the Sentinel named (routes to "
                              f"{', '.join(f'{h}:{p}' for h, p in (r.announced for r in self.routes))})")

    @staticmethod
    def parse(url: str, *, allow_remote: bool = False) -> RedisAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "redis+sentinel"):
            raise ConfigError("a redis target URL looks like redis://host:port/db or "
                              "redis+sentinel://host:port/<service>/<db>")
        # the password may come from the URL or, as for redis-cli, from REDISCLI_AUTH
        password = unquote(parts.password) if parts.password else os.environ.get("REDISCLI_AUTH")
        username = unquote(parts.username) if parts.username else None
        try:
            if parts.scheme == "redis+sentinel":
                hosts = parts.netloc.rsplit("@", 1)[-1].split(",")
                sentinels = tuple((h.rsplit(":", 1)[0] or "127.0.0.1", int(h.rsplit(":", 1)[1]) if ":" in h else 26379)
                                  for h in hosts)
                service, _, db = parts.path.lstrip("/").partition("/")
                if not service:
                    raise ValueError("the Sentinel's service name is missing (redis+sentinel://host:port/<service>/0)")
                routes = tuple(Route.parse(v) for k, v in parse_qsl(parts.query) if k == "route")
                return RedisAddress(host=sentinels[0][0], port=sentinels[0][1], db=int(db or 0), username=username,
                                    password=password, sentinels=sentinels, service=service,
                                    allow_remote=allow_remote, routes=routes)
            db_number = int(parts.path.lstrip("/") or 0)
            port = parts.port or 6379
        except ValueError as e:
            raise ConfigError(f"redis target URL: {e}") from None
        return RedisAddress(host=parts.hostname or "127.0.0.1", port=port, db=db_number,
                            username=username, password=password)

    def primary(self, *, timeout: float) -> tuple[str, int]:
        """The server to send commands to: this one, or the primary (or, ``role="replica"``, a replica in
        good standing) a Sentinel names now."""
        if not self.sentinels:
            return self.host, self.port
        problems = []
        for host, port in self.sentinels:
            try:
                if self.role == "replica":
                    return self._a_replica(self._ask(host, port, "SENTINEL", "REPLICAS", self.service, timeout=timeout))
                reply = self._ask(host, port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service, timeout=timeout)
                if isinstance(reply, list) and len(reply) == 2:
                    return self.reach(*self._safe(reply[0].decode(), int(reply[1])))
                problems.append(f"{host}:{port} knows no primary of {self.service!r}")
            except (OSError, ValueError) as e:
                problems.append(f"{host}:{port}: {e}")
        raise ConnectionError(f"no Sentinel named a {self.role}: {'; '.join(problems)}")

    def _a_replica(self, reply: Any) -> tuple[str, int]:
        for entry in reply if isinstance(reply, list) else []:
            if in_good_standing(entry):
                info = _fields(entry)
                return self.reach(*self._safe(info["ip"], int(info["port"])))
        raise ValueError(f"the Sentinel knows no replica of {self.service!r} in good standing")

    @staticmethod
    def _ask(host: str, port: int, *command: str, timeout: float) -> Any:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(hiredis.pack_command(command))
            return read_reply(sock, hiredis.Reader(), closed="the Sentinel closed the connection")

    def _safe(self, host: str, port: int) -> tuple[str, int]:
        if not self.allow_remote and not is_loopback_host(host):
            raise SafetyError(f"the Sentinel names a primary at {host}:{port}, not a loopback address; "
                              "set `allow_remote: true` to load-test a remote Redis")
        return host, port


def _fields(entry: Any) -> dict[str, str]:
    return {entry[i].decode(): entry[i + 1].decode() for i in range(0, len(entry) - 1, 2)}


def in_good_standing(entry: Any) -> bool:
    """A ``SENTINEL REPLICAS`` entry not flagged down or disconnected (a replica just found is listed
    "disconnected" until the Sentinel's link to it is up)."""
    flags = entry.get("flags", "") if isinstance(entry, dict) else _fields(entry).get("flags", "")  # redis-py: a dict
    flags = flags.decode() if isinstance(flags, bytes) else ",".join(flags) if isinstance(flags, set) else str(flags)
    return not {"s_down", "o_down", "disconnected"} & set(flags.split(","))


class PartialReplies(Exception):
    def __init__(self, replies: list[Any], cause: Exception) -> None:
        super().__init__(str(cause))
        self.replies = replies
        self.cause = cause


class RespConnection:
    """One socket, one command at a time, no retries. Raises NotSent before sending."""

    def __init__(self, address: RedisAddress, *, timeout: float, deadlines: Deadlines | None = None) -> None:
        self._addr = address
        self._timeout = timeout
        self._deadlines = deadlines
        self._sock: socket.socket | None = None
        self._wait: Callable[[], None] | None = None
        self._reader = hiredis.Reader()

    def _connect(self) -> socket.socket:
        where = f"{self._addr.host}:{self._addr.port}"
        try:
            host, port = self._addr.primary(timeout=self._timeout)  # a Sentinel's primary, found anew each time
            where = f"{host}:{port}"
            sock = socket.create_connection((host, port), timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock, self._reader, self._wait = sock, hiredis.Reader(), readiness_wait(sock)
            if self._addr.password:
                auth = [self._addr.username, self._addr.password] if self._addr.username else [self._addr.password]
                self._handshake("AUTH", *auth)
            if self._addr.db:
                self._handshake("SELECT", self._addr.db)
            if self._deadlines is not None:
                sock.settimeout(None)  # from here on the watchdog times calls out
        except Exception as e:
            self.close()
            raise NotSent(f"connect to {where}: {e}") from e
        return sock

    def _handshake(self, *args: str | int) -> None:
        reply = self._roundtrip(hiredis.pack_command(args))
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"{args[0]} refused: {reply}")

    def call(self, *args: str | int | bytes) -> Any:
        """Send one command, return its reply; error replies come back as hiredis.ReplyError."""
        return self.call_packed(hiredis.pack_command(args))

    def call_packed(self, payload: bytes) -> Any:
        """``call`` with the command already packed (hot commands are packed once)."""
        if self._sock is None:
            self._connect()
        deadlines = self._deadlines
        if deadlines is not None:
            deadlines.arm(self._timeout)
        try:
            return self._roundtrip(payload)
        except BaseException:
            # a late reply would answer the next command: never reuse a connection after an error
            self.close()
            raise
        finally:
            if deadlines is not None:
                deadlines.disarm()

    def call_many(self, commands: list[tuple[str | int, ...]]) -> list[Any]:
        """Pipeline: send every command in one write, then read one reply per command.

        On a failure part-way, raises PartialReplies with the replies that did arrive: the
        commands before them certainly ran, the others may or may not have.
        """
        return self.call_many_packed(b"".join(hiredis.pack_command(c) for c in commands), len(commands))

    def call_many_packed(self, payload: bytes, n: int) -> list[Any]:
        """``call_many`` of ``n`` commands already packed into ``payload``."""
        if self._sock is None:
            self._connect()
        replies: list[Any] = []
        if self._deadlines is not None:
            self._deadlines.arm(self._timeout)
        try:
            assert self._sock is not None
            self._send(payload)
            while len(replies) < n:
                replies.append(read_reply(self._sock, self._reader, self._wait))
            return replies
        except BaseException as e:
            self.close()
            if isinstance(e, Exception):
                raise PartialReplies(replies, e) from e
            raise
        finally:
            if self._deadlines is not None:
                self._deadlines.disarm()

    def _send(self, payload: bytes) -> None:
        """``send`` until all is gone: gevent's ``sendall`` costs a getsockopt syscall and a timer
        per call, a third of a small command's round trip; one ``send`` almost always takes it all."""
        assert self._sock is not None
        sent = self._sock.send(payload)
        while sent < len(payload):
            sent += self._sock.send(payload[sent:])

    def _roundtrip(self, payload: bytes) -> Any:
        sock, reader, wait = self._sock, self._reader, self._wait
        assert sock is not None
        self._send(payload)
        return read_reply(sock, reader, wait)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock, self._wait = None, None
