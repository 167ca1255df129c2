"""The redis target: INCRBY, an atomic Lua decrement-if-positive, and unsafe variants.

Load goes through a lean RESP connection (hiredis parses replies) rather than
redis-py, for two reasons: redis-py's per-call overhead caps the load, and its
automatic retries could apply a non-idempotent INCR twice. The lean connection
never retries and knows whether a command left the process, which is what
classification needs. Setup and final reads use redis-py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

import hiredis
from pydantic import Field

from harness.errors import ConfigError, TargetError, TargetUnreachable
from harness.models import TargetConfig, Variant
from harness.ops import Completion, Outcome
from harness.targets import Backend, Deadlines, LocalTarget, OpContext, app_work, readiness_wait
from harness.targets.address import require_scheme
from harness.targets.classify import REDIS_RULES, BadReply, NotSent, classify_exception, classify_redis_error_reply

if TYPE_CHECKING:
    from harness.config.scenario import Scenario

class RedisTarget(TargetConfig):
    kind: Literal["redis"]
    url: str | None = Field(default=None, description="redis://host:port/db; default: a local redis-server")
    variant: Variant = "atomic"
    timeout: float = Field(default=5.0, gt=0, le=300)
    gap: float = Field(default=0.0, ge=0, le=1,
                       description="unsafe variants: seconds of app work between the read and the write")
    persistence: Literal["none", "everysec", "always"] = Field(
        default="none", description="the local redis-server: no persistence, or AOF fsynced every second/write")
    pipeline: int = Field(default=1, ge=1, le=1000,
                          description="increments per round trip; each is still its own op in the history")

    network_faults: ClassVar[bool] = True

    def check(self, scenario: Scenario) -> None:
        if self.pipeline > 1 and (self.variant != "atomic" or scenario.workload.op != "incr"):
            raise ValueError("target.pipeline is for atomic increments (an unsafe variant must wait for its read)")
        if self.gap and self.variant == "atomic":
            raise ValueError("target.gap is the read-to-write delay of the unsafe variants; atomic has none")


# Sold out is an error reply: Redis ran the script, and the script changed nothing.
DECR_IF_POSITIVE = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then return redis.call('DECR', KEYS[1]) end
return redis.error_reply('SOLDOUT no seats left')
"""


@dataclass(frozen=True, kw_only=True)
class RedisAddress:
    host: str
    port: int
    db: int
    username: str | None
    password: str | None

    @staticmethod
    def parse(url: str) -> RedisAddress:
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ConfigError("a redis target URL looks like redis://host:port/db")
        try:
            db = int(parts.path.lstrip("/") or 0)
            port = parts.port or 6379
        except ValueError as e:
            raise ConfigError(f"redis target URL: {e}") from None
        # the password may come from the URL or, as for redis-cli, from REDISCLI_AUTH
        password = unquote(parts.password) if parts.password else os.environ.get("REDISCLI_AUTH")
        username = unquote(parts.username) if parts.username else None
        return RedisAddress(host=parts.hostname or "127.0.0.1", port=port, db=db,
                            username=username, password=password)


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
        try:
            sock = socket.create_connection((self._addr.host, self._addr.port), timeout=self._timeout)
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
            raise NotSent(f"connect to {self._addr.host}:{self._addr.port}: {e}") from e
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
        if self._sock is None:
            self._connect()
        replies: list[Any] = []
        if self._deadlines is not None:
            self._deadlines.arm(self._timeout)
        try:
            assert self._sock is not None
            self._send(b"".join(hiredis.pack_command(c) for c in commands))
            while len(replies) < len(commands):
                reply = self._reader.gets()
                if reply is not False:
                    replies.append(reply)
                    continue
                if self._wait is not None:
                    self._wait()
                data = self._sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed by the server")
                self._reader.feed(data)
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
        reply = reader.gets()
        while reply is False:
            if wait is not None:
                wait()
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the server")
            reader.feed(data)
            reply = reader.gets()
        return reply

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock, self._wait = None, None


def _as_int(reply: Any) -> int:
    if isinstance(reply, int) and not isinstance(reply, bool):
        return reply
    raise BadReply(f"expected an integer, got {reply!r:.60}")


def _optional_int(reply: Any) -> int:
    """A GET reply: absent means 0 (what INCR would start from)."""
    if reply is None:
        return 0
    try:
        return int(reply)
    except (TypeError, ValueError) as e:
        raise BadReply(f"expected an integer string, got {reply!r:.60}") from e


class RedisOps:
    """An op client for one load user."""

    def __init__(self, address: RedisAddress, *, variant: Variant, timeout: float, gap: float = 0.0,
                 deadlines: Deadlines | None = None) -> None:
        self._conn = RespConnection(address, timeout=timeout, deadlines=deadlines)
        self._variant = variant
        self._gap = gap
        self._packed: dict[tuple[str, int], bytes] = {}  # (key, amount) -> its INCR / INCRBY command

    def _run(self, *args: str | int) -> Completion:
        """One command; its reply must be an integer."""
        return self._run_packed(hiredis.pack_command(args))

    def _run_packed(self, payload: bytes) -> Completion:
        try:
            reply = self._conn.call_packed(payload)
            if type(reply) is int:
                return Completion(Outcome.OK, reply)
            if isinstance(reply, hiredis.ReplyError):
                return classify_redis_error_reply(str(reply))
            return Completion.ok(_as_int(reply))
        except Exception as e:
            return classify_exception(e, REDIS_RULES)

    def _read(self, key: str) -> int:
        """The read of a read-modify-write: any failure here means nothing was written."""
        try:
            reply = self._conn.call("GET", key)
            if isinstance(reply, hiredis.ReplyError):
                raise BadReply(str(reply))
            return _optional_int(reply)
        except NotSent:
            raise
        except Exception as e:
            raise NotSent(f"read before write failed: {e}") from e

    def incr(self, key: str, amount: int) -> Completion:
        if self._variant == "read-modify-write":
            # deliberately unsafe: another user may write between the GET and the SET
            try:
                new = self._read(key) + amount
            except NotSent as e:
                return classify_exception(e, REDIS_RULES)
            if self._gap:
                app_work(self._gap)
            try:
                reply = self._conn.call("SET", key, new)
                if isinstance(reply, hiredis.ReplyError):
                    return classify_redis_error_reply(str(reply))
                return Completion.ok(new)
            except Exception as e:
                return classify_exception(e, REDIS_RULES)
        payload = self._packed.get((key, amount))
        if payload is None:
            payload = hiredis.pack_command(("INCR", key) if amount == 1 else ("INCRBY", key, amount))
            if len(self._packed) < 4096:  # many keys times many amounts: keep the cache bounded
                self._packed[(key, amount)] = payload
        return self._run_packed(payload)

    def batch(self, ops: list[tuple[str, int]]) -> list[Completion]:
        """Pipelined increments (atomic variant): one round trip, one completion per op."""

        def one(reply: Any) -> Completion:
            if isinstance(reply, hiredis.ReplyError):
                return classify_redis_error_reply(str(reply))
            try:
                return Completion.ok(_as_int(reply))
            except BadReply as e:
                return classify_exception(e, REDIS_RULES)

        commands = [("INCR", k) if a == 1 else ("INCRBY", k, a) for k, a in ops]
        try:
            return [one(r) for r in self._conn.call_many(commands)]  # type: ignore[arg-type]
        except PartialReplies as e:
            rest = classify_exception(e.cause, REDIS_RULES)
            return [one(r) for r in e.replies] + [rest] * (len(ops) - len(e.replies))
        except Exception as e:  # NotSent: the connection was never made
            return [classify_exception(e, REDIS_RULES)] * len(ops)

    def decr_if_positive(self, key: str) -> Completion:
        if self._variant == "check-then-act":
            # deliberately unsafe: the seat may be gone between the GET and the DECR
            try:
                current = self._read(key)
            except NotSent as e:
                return classify_exception(e, REDIS_RULES)
            if current <= 0:
                return Completion.fail("sold out")
            if self._gap:
                app_work(self._gap)
            return self._run("DECR", key)
        return self._run("EVAL", DECR_IF_POSITIVE, 1, key)

    def close(self) -> None:
        self._conn.close()


class RedisAdmin:
    """Setup and final reads through redis-py, outside the load."""

    def __init__(self, address: RedisAddress, *, timeout: float = 10.0) -> None:
        import redis

        self._addr = address
        self._r = redis.Redis(host=address.host, port=address.port, db=address.db, username=address.username,
                              password=address.password, socket_timeout=timeout, socket_connect_timeout=timeout)

    def _where(self) -> str:
        return f"redis at {self._addr.host}:{self._addr.port}"

    def setup(self, initial: Mapping[str, int]) -> None:
        import redis

        items = list(initial.items())
        try:
            for i in range(0, len(items), 1000):
                self._r.mset(dict(items[i:i + 1000]))
        except redis.ConnectionError as e:
            raise TargetUnreachable(f"{self._where()} is unreachable: {e}") from e
        except redis.RedisError as e:
            raise TargetError(f"{self._where()}: setting the initial values failed: {e}") from e

    def read(self, keys: Sequence[str]) -> dict[str, int | None]:
        import redis

        out: dict[str, int | None] = {}
        try:
            for i in range(0, len(keys), 1000):
                chunk = list(keys[i:i + 1000])
                for key, raw in zip(chunk, self._r.mget(chunk), strict=True):
                    out[key] = None if raw is None else int(raw)
        except redis.ConnectionError as e:
            raise TargetUnreachable(f"{self._where()} is unreachable: {e}") from e
        except (redis.RedisError, ValueError) as e:
            raise TargetError(f"{self._where()}: reading the final values failed: {e}") from e
        return out

    def close(self) -> None:
        self._r.close()


def _admin(scenario: Scenario, url: str | None) -> RedisAdmin:
    assert url is not None
    require_scheme(url, ("redis",), "redis")
    return RedisAdmin(RedisAddress.parse(url))


def _ops(scenario: Scenario, url: str, ctx: OpContext) -> RedisOps:
    t = scenario.target
    assert isinstance(t, RedisTarget)
    return RedisOps(RedisAddress.parse(url), variant=t.variant, timeout=t.timeout, gap=t.gap, deadlines=ctx.deadlines)


def _local(scenario: Scenario, stack: ExitStack) -> LocalTarget:
    from harness.stack.redis import RedisServer

    assert isinstance(scenario.target, RedisTarget)
    server = stack.enter_context(RedisServer(persistence=scenario.target.persistence))
    return LocalTarget(scenario=scenario, url=server.url, servers={"target": server, "store": None})


BACKEND = Backend(kind="redis", config=RedisTarget, admin=_admin, ops=_ops, local=_local)
