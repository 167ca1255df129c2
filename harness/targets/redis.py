"""The redis target: INCRBY, an atomic Lua decrement-if-positive, unsafe variants; one server, or a
primary with replicas and a Sentinel (``WAIT`` for replicas on request).

Load goes through a lean RESP connection (``harness.targets.resp``); setup and final reads use
redis-py.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import hiredis
from pydantic import Field

from harness.core.errors import TargetError, TargetUnreachable
from harness.core.models import Frozen, TargetConfig, Variant
from harness.core.ops import Completion, Outcome
from harness.targets import Backend, Deadlines, LocalTarget, OpContext, app_work, retrying
from harness.targets.address import require_scheme
from harness.targets.classify import REDIS_RULES, BadReply, NotSent, classify_exception, classify_redis_error_reply
from harness.targets.resp import PartialReplies, RedisAddress, RespConnection

if TYPE_CHECKING:
    from harness.core.models import ScenarioSpec

class WaitSpec(Frozen):
    """``WAIT replicas timeout_ms`` after each op: an op fewer replicas acknowledged is indeterminate."""

    replicas: int = Field(default=1, ge=1, le=16)  # replicas WAIT waits for
    timeout_ms: int = Field(default=100, ge=1, le=60_000)  # how long WAIT waits (ms)


class MinReplicas(Frozen):
    """Redis's ``min-replicas-to-write`` / ``min-replicas-max-lag``, set on every local node (a promoted
    replica keeps the rule): a primary refuses writes (NOREPLICAS) while fewer than ``to_write`` replicas
    have acknowledged the stream within ``max_lag`` seconds."""

    to_write: int = Field(default=1, ge=1, le=16)  # replicas that must be connected for a write
    max_lag: int = Field(default=10, ge=1, le=3600, description="seconds")


class RedisTarget(TargetConfig):
    kind: Literal["redis"]  # redis
    url: str | None = Field(default=None, description="redis://host:port/db; default: a local redis-server")
    variant: Variant = "atomic"  # atomic (INCR, a Lua decrement), read-modify-write or check-then-act
    timeout: float = Field(default=5.0, gt=0, le=300)  # seconds before an op is given up as indeterminate
    gap: float = Field(default=0.0, ge=0, le=1,
                       description="unsafe variants: seconds of app work between the read and the write")
    persistence: Literal["none", "everysec", "always"] = Field(
        default="none", description="the local redis-server: no persistence, or AOF fsynced every second/write")
    pipeline: int = Field(default=1, ge=1, le=1000,
                          description="increments per round trip; each is still its own op in the history")
    replicas: int = Field(default=0, ge=0, le=2, description="the local Redis: replicas, watched by Sentinels (0: "
                                                             "one server)")
    sentinels: int = Field(default=1, ge=1, le=5, description="the local Redis with replicas: Sentinels (quorum: "
                                                               "a majority of them)")
    min_replicas: MinReplicas | None = Field(default=None, description="the local Redis with replicas: a primary "
                                                                       "refuses writes without enough replicas")
    wait: WaitSpec | None = Field(default=None, description="WAIT for replicas after each op")
    read_from: Literal["primary", "replica"] = Field(default="primary", description="workload.reads: where reads "
                                                                                   "go (a replica: needs a Sentinel)")
    retries: int = Field(default=0, ge=0, le=10, description="resend an op whose outcome is unknown, or that "
                                                              "was refused for a moment (no connection, a replica "
                                                              "answering READONLY during a failover)")

    network_faults: ClassVar[bool] = True

    @property
    def replicated_servers(self) -> frozenset[str]:
        return frozenset({"target"}) if self.replicas else frozenset()

    def check(self, scenario: ScenarioSpec) -> None:
        if self.pipeline > 1 and (self.variant != "atomic" or scenario.workload.op != "incr"):
            raise ValueError("target.pipeline is for atomic increments (an unsafe variant must wait for its read)")
        if self.gap and self.variant == "atomic":
            raise ValueError("target.gap is the read-to-write delay of the unsafe variants; atomic has none")
        if self.read_from == "replica" and not self.replicas and not (self.url or "").startswith("redis+sentinel:"):
            raise ValueError("target.read_from: replica needs replicas (a Sentinel names them)")
        if self.wait is not None and (self.variant != "atomic" or self.pipeline > 1):
            raise ValueError("target.wait follows each atomic op (not pipelined, not an unsafe variant)")
        if self.wait is not None and self.wait.timeout_ms / 1000 >= self.timeout:
            raise ValueError("target.wait.timeout_ms must be shorter than target.timeout")
        self._check_replicated(scenario)

    def _check_replicated(self, scenario: ScenarioSpec) -> None:
        """The settings of the local replicated Redis, and the partitions it can take."""
        if self.sentinels > 1 and not self.replicas:
            raise ValueError("target.sentinels watch replicas: set target.replicas too")
        if self.min_replicas is not None and (self.url or not self.replicas):
            raise ValueError("target.min_replicas configures the local Redis's replicas: it needs target.replicas "
                             "(and no target.url)")
        if self.min_replicas is not None and self.min_replicas.to_write > self.replicas:
            raise ValueError(f"target.min_replicas.to_write is {self.min_replicas.to_write} with "
                             f"{self.replicas} replicas: the primary would refuse every write")
        if any(f.action == "partition" for f in scenario.faults) and (self.url or not self.replicas):
            raise ValueError("a partition cuts the links between the servers counterbench starts: it needs the local "
                             "Redis with target.replicas (a Sentinel to fail over, replicas to promote), not "
                             "target.url")


# Sold out is an error reply: Redis ran the script, and the script changed nothing.
DECR_IF_POSITIVE = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then return redis.call('DECR', KEYS[1]) end
return redis.error_reply('SOLDOUT no seats left')
"""


def _transient(done: Completion) -> bool:
    """Worth sending again (as redis-py's Retry would): an unknown outcome, or a refusal of the moment."""
    if done.outcome is Outcome.INDETERMINATE:
        return True
    return done.outcome is Outcome.FAIL and (done.error or "").startswith(
        ("not sent", "redis: READONLY", "redis: MASTERDOWN", "redis: LOADING", "redis: TRYAGAIN"))


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
    """An op client for one load user.

    With ``wait`` (replicas, timeout in ms) each atomic op is followed by ``WAIT`` in the same write:
    an op fewer replicas acknowledged than asked is ``indeterminate`` -- applied on the primary, but
    a failover may lose it."""

    tokens = False  # it sends no idempotency key: ``token`` is ignored

    def __init__(self, address: RedisAddress, *, variant: Variant, timeout: float, gap: float = 0.0,
                 deadlines: Deadlines | None = None, wait: tuple[int, int] | None = None, retries: int = 0,
                 read_from: Literal["primary", "replica"] = "primary") -> None:
        self._conn = RespConnection(address, timeout=timeout, deadlines=deadlines)
        # reads go to the primary, or (read_from: replica) to a replica the Sentinel knows
        self._reader = RespConnection(replace(address, role="replica"), timeout=timeout, deadlines=deadlines) \
            if read_from == "replica" else self._conn
        self._variant = variant
        self._gap = gap
        self._wait = wait
        self._retries = retries
        self._packed: dict[tuple[str, int], bytes] = {}  # (key, amount) -> its INCR / INCRBY command

    def _run(self, *args: str | int) -> Completion:
        """One command; its reply must be an integer."""
        return self._run_packed(hiredis.pack_command(args))

    def _refused(self, reply: hiredis.ReplyError) -> Completion:
        text = str(reply)
        if text.startswith(("READONLY", "MASTERDOWN", "LOADING")):
            self._conn.close()  # not the primary (any more): the next op asks the Sentinel again
        return classify_redis_error_reply(text)

    def _run_packed(self, payload: bytes) -> Completion:
        if self._wait is not None:
            return self._run_waiting(payload)
        try:
            reply = self._conn.call_packed(payload)
            if type(reply) is int:
                return Completion(Outcome.OK, reply)
            if isinstance(reply, hiredis.ReplyError):
                return self._refused(reply)
            return Completion.ok(_as_int(reply))
        except Exception as e:
            return classify_exception(e, REDIS_RULES)

    def _run_waiting(self, payload: bytes) -> Completion:
        """The command, then WAIT for replicas: ok only when enough replicas have it."""
        assert self._wait is not None
        replicas, timeout_ms = self._wait
        try:
            value, acked = self._conn.call_many_packed(payload + hiredis.pack_command(("WAIT", replicas, timeout_ms)),
                                                       2)
        except PartialReplies as e:
            if not e.replies:
                return classify_exception(e.cause, REDIS_RULES)
            value, acked = e.replies[0], None
        except Exception as e:  # NotSent: the connection was never made
            return classify_exception(e, REDIS_RULES)
        if isinstance(value, hiredis.ReplyError):
            return self._refused(value)
        try:
            value = _as_int(value)
        except BadReply as e:
            return classify_exception(e, REDIS_RULES)
        if not isinstance(acked, int) or acked < replicas:
            seen = "no answer to WAIT" if not isinstance(acked, int) else f"{acked} of {replicas} replicas"
            return Completion.indeterminate(f"applied on the primary ({value}), {seen} within {timeout_ms} ms")
        return Completion(Outcome.OK, value)

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

    def incr(self, key: str, amount: int, *, token: str | None = None) -> Completion:
        if self._retries:
            return retrying(lambda: self._incr(key, amount), self._retries, retry=_transient)
        return self._incr(key, amount)

    def _incr(self, key: str, amount: int) -> Completion:
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
                    return self._refused(reply)
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

    def decr_if_positive(self, key: str, *, token: str | None = None) -> Completion:
        if self._retries:
            return retrying(lambda: self._decr_if_positive(key), self._retries, retry=_transient)
        return self._decr_if_positive(key)

    def read(self, key: str) -> Completion:
        """GET: a missing key reads as 0, as INCR would count from it."""
        try:
            reply = self._reader.call("GET", key)
        except Exception as e:
            return classify_exception(e, REDIS_RULES)
        if isinstance(reply, hiredis.ReplyError):
            return self._refused(reply)
        try:
            return Completion.ok(_optional_int(reply))
        except BadReply as e:
            return classify_exception(e, REDIS_RULES)

    def _decr_if_positive(self, key: str) -> Completion:
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
        self._reader.close()


class RedisAdmin:
    """Setup and final reads through redis-py, outside the load."""

    def __init__(self, address: RedisAddress, *, timeout: float = 10.0) -> None:
        import redis

        self._addr = address
        host, port = address.host, address.port
        if address.sentinels:  # whatever the Sentinel says is primary now (redis-py's Sentinel support)
            from redis.exceptions import RedisError
            from redis.sentinel import Sentinel

            sentinel = Sentinel(list(address.sentinels), socket_timeout=timeout, socket_connect_timeout=timeout)
            try:
                host, port = address.reach(*address._safe(*sentinel.discover_master(address.service)))
            except (RedisError, ConnectionError) as e:  # ConnectionError: no route to the primary it names
                raise TargetUnreachable(f"no Sentinel at {address.host}:{address.port} names a primary of "
                                        f"{address.service!r}: {e}") from e
        self._r = redis.Redis(host=host, port=port, db=address.db, username=address.username,
                              password=address.password, socket_timeout=timeout, socket_connect_timeout=timeout)

    def _where(self) -> str:
        if self._addr.sentinels:
            return f"the redis primary of {self._addr.service!r} (Sentinel at {self._addr.host}:{self._addr.port})"
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


def _admin(scenario: ScenarioSpec, url: str | None) -> RedisAdmin:
    assert url is not None
    require_scheme(url, ("redis", "redis+sentinel"), "redis")
    return RedisAdmin(RedisAddress.parse(url, allow_remote=scenario.allow_remote))


def _ops(scenario: ScenarioSpec, url: str, ctx: OpContext) -> RedisOps:
    t = scenario.target
    assert isinstance(t, RedisTarget)
    address = RedisAddress.parse(url, allow_remote=scenario.allow_remote)
    if address.sides > 1:  # users alternate between the sides of a partition, in the order they start
        address = address.on_side(next(ctx.shared("redis-sides", itertools.count)))
    return RedisOps(address, variant=t.variant, timeout=t.timeout,
                    gap=t.gap, deadlines=ctx.deadlines, wait=(t.wait.replicas, t.wait.timeout_ms) if t.wait else None,
                    retries=t.retries, read_from=t.read_from)


def _local(scenario: ScenarioSpec, stack: ExitStack) -> LocalTarget:
    t = scenario.target
    assert isinstance(t, RedisTarget)
    server: Any
    if t.replicas:
        from harness.stack.redis_sentinel import RedisReplicaSet

        server = stack.enter_context(RedisReplicaSet(
            replicas=t.replicas, sentinels=t.sentinels, persistence=t.persistence,
            min_replicas=(t.min_replicas.to_write, t.min_replicas.max_lag) if t.min_replicas else None,
            # the load's own path to each node, per side, for a partition to cut (cut, split) or keep
            client_proxies=any(f.action == "partition" for f in scenario.faults)))
    else:
        from harness.stack.redis import RedisServer

        server = stack.enter_context(RedisServer(persistence=t.persistence))
    return LocalTarget(scenario=scenario, url=server.url, servers={"target": server, "store": None})


BACKEND = Backend(kind="redis", config=RedisTarget, admin=_admin, ops=_ops, local=_local)
