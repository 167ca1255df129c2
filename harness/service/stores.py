"""The reference service's stores. Each store has an atomic implementation and an
explicitly unsafe one (read-modify-write for increments, check-then-act for seats),
so a plausible-looking bug can be watched losing updates under load."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

# what the unsafe variants wait between their read and their write: the app logic a real service runs
# there (validation, logging, a call elsewhere). It widens the race window to what production sees.
STORE_ROUND_TRIP = 0.001


class SoldOut(Exception):
    pass


class Store(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def set(self, key: str, value: int) -> int: ...
    async def add(self, key: str, amount: int) -> int: ...
    async def take(self, key: str) -> int: ...
    async def get(self, key: str) -> int | None: ...


class MemoryStore:
    """One process; the event loop serialises every update, so no lock is needed."""

    def __init__(self, *, unsafe: bool = False) -> None:
        self._values: dict[str, int] = {}
        self._unsafe = unsafe

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def set(self, key: str, value: int) -> int:
        self._values[key] = value
        return value

    async def add(self, key: str, amount: int) -> int:
        if self._unsafe:
            current = self._values.get(key, 0)
            await asyncio.sleep(STORE_ROUND_TRIP)  # deliberately unsafe: others write meanwhile
            self._values[key] = current + amount
            return current + amount
        self._values[key] = self._values.get(key, 0) + amount
        return self._values[key]

    async def take(self, key: str) -> int:
        current = self._values.get(key, 0)
        if current <= 0:
            raise SoldOut
        if self._unsafe:
            await asyncio.sleep(STORE_ROUND_TRIP)  # check-then-act: the seat may be taken meanwhile
            self._values[key] = self._values.get(key, 0) - 1
            return self._values[key]
        self._values[key] = current - 1
        return current - 1

    async def get(self, key: str) -> int | None:
        return self._values.get(key)


TAKE_LUA = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v > 0 then return redis.call('DECR', KEYS[1]) end
return redis.error_reply('SOLDOUT no seats left')
"""


class RedisStore:
    def __init__(self, url: str, *, unsafe: bool = False) -> None:
        import redis.asyncio

        # no retries: a retried INCRBY could be applied twice
        self._r = redis.asyncio.Redis.from_url(url, retry_on_timeout=False, retry=None, socket_timeout=5,
                                               max_connections=256)
        self._unsafe = unsafe

    async def start(self) -> None:
        await self._r.ping()

    async def close(self) -> None:
        await self._r.aclose()

    async def set(self, key: str, value: int) -> int:
        await self._r.set(key, value)
        return value

    async def add(self, key: str, amount: int) -> int:
        if self._unsafe:
            current = int(await self._r.get(key) or 0)
            await asyncio.sleep(STORE_ROUND_TRIP)
            await self._r.set(key, current + amount)
            return current + amount
        return int(await self._r.incrby(key, amount))

    async def take(self, key: str) -> int:
        import redis

        if self._unsafe:
            if int(await self._r.get(key) or 0) <= 0:
                raise SoldOut
            await asyncio.sleep(STORE_ROUND_TRIP)
            return int(await self._r.decr(key))
        try:
            return int(await self._r.eval(TAKE_LUA, 1, key))
        except redis.ResponseError as e:
            if str(e).startswith("SOLDOUT") or "SOLDOUT" in str(e):
                raise SoldOut from e
            raise

    async def get(self, key: str) -> int | None:
        raw = await self._r.get(key)
        return None if raw is None else int(raw)


class PostgresStore:
    """`UPDATE ... SET value = value + $1 ... RETURNING value` on a connection pool."""

    def __init__(self, dsn: str, *, unsafe: bool = False, pool_size: int = 20) -> None:
        self._dsn = dsn
        self._unsafe = unsafe
        self._size = pool_size
        self._pool: Any = None

    async def start(self) -> None:
        import asyncpg

        self._pool = await asyncpg.create_pool(self._dsn, min_size=2, max_size=self._size)
        async with self._pool.acquire() as c:
            await c.execute("CREATE TABLE IF NOT EXISTS counters (key text PRIMARY KEY, value bigint NOT NULL)")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def set(self, key: str, value: int) -> int:
        return int(await self._pool.fetchval(
            "INSERT INTO counters (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value RETURNING value", key, value))

    async def add(self, key: str, amount: int) -> int:
        if self._unsafe:
            # deliberately unsafe: read, compute in the service, write back -- no transaction, no lock
            current = await self._pool.fetchval("SELECT value FROM counters WHERE key = $1", key) or 0
            await asyncio.sleep(STORE_ROUND_TRIP)
            return await self.set(key, int(current) + amount)
        return int(await self._pool.fetchval(
            "INSERT INTO counters (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = counters.value + EXCLUDED.value RETURNING value", key, amount))

    async def take(self, key: str) -> int:
        if self._unsafe:
            current = await self._pool.fetchval("SELECT value FROM counters WHERE key = $1", key) or 0
            if current <= 0:
                raise SoldOut
            await asyncio.sleep(STORE_ROUND_TRIP)
            return int(await self._pool.fetchval(
                "UPDATE counters SET value = value - 1 WHERE key = $1 RETURNING value", key))
        value = await self._pool.fetchval(
            "UPDATE counters SET value = value - 1 WHERE key = $1 AND value > 0 RETURNING value", key)
        if value is None:
            raise SoldOut
        return int(value)

    async def get(self, key: str) -> int | None:
        value = await self._pool.fetchval("SELECT value FROM counters WHERE key = $1", key)
        return None if value is None else int(value)


class DynamoStore:
    """UpdateItem ADD / conditional; boto3 calls run in threads (botocore is synchronous)."""

    def __init__(self, url: str | None, *, table: str = "counterbench-service", region: str = "us-east-1",
                 unsafe: bool = False) -> None:
        import boto3
        from botocore.config import Config

        # the service's own client (it is a system under test: it does not use the harness's). A local
        # endpoint checks no signature; in AWS the standard credential chain applies.
        local = {"aws_access_key_id": "service", "aws_secret_access_key": "service"} if url and _loopback(url) else {}
        self._c = boto3.session.Session().client(
            "dynamodb", endpoint_url=url, region_name=region,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=5,
                          max_pool_connections=64), **local)
        self._t = table
        self._unsafe = unsafe

    def _key(self, key: str) -> dict[str, Any]:
        return {"pk": {"S": key}}

    async def _call(self, name: str, **kw: Any) -> dict[str, Any]:
        return await asyncio.to_thread(getattr(self._c, name), TableName=self._t, **kw)

    async def start(self) -> None:
        await asyncio.to_thread(self._ensure_table)

    def _ensure_table(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._c.describe_table(TableName=self._t)
            return
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
        try:
            self._c.create_table(TableName=self._t, BillingMode="PAY_PER_REQUEST",
                                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        except ClientError as e:  # another worker process created it meanwhile
            if e.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        self._c.get_waiter("table_exists").wait(TableName=self._t, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    async def close(self) -> None:
        pass

    async def set(self, key: str, value: int) -> int:
        await self._call("put_item", Item={**self._key(key), "v": {"N": str(value)}})
        return value

    async def get(self, key: str) -> int | None:
        item = (await self._call("get_item", Key=self._key(key), ConsistentRead=True)).get("Item")
        return None if item is None else int(item["v"]["N"])

    async def add(self, key: str, amount: int) -> int:
        if self._unsafe:
            current = await self.get(key) or 0
            await asyncio.sleep(STORE_ROUND_TRIP)
            return await self.set(key, current + amount)
        r = await self._call("update_item", Key=self._key(key), UpdateExpression="ADD v :n",
                             ExpressionAttributeValues={":n": {"N": str(amount)}}, ReturnValues="UPDATED_NEW")
        return int(r["Attributes"]["v"]["N"])

    async def take(self, key: str) -> int:
        from botocore.exceptions import ClientError

        if self._unsafe:
            if (await self.get(key) or 0) <= 0:
                raise SoldOut
            await asyncio.sleep(STORE_ROUND_TRIP)
            r = await self._call("update_item", Key=self._key(key), UpdateExpression="SET v = v - :one",
                                 ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
            return int(r["Attributes"]["v"]["N"])
        try:
            r = await self._call("update_item", Key=self._key(key), UpdateExpression="SET v = v - :one",
                                 ConditionExpression="v > :zero", ReturnValues="UPDATED_NEW",
                                 ExpressionAttributeValues={":one": {"N": "1"}, ":zero": {"N": "0"}})
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise SoldOut from e
            raise
        return int(r["Attributes"]["v"]["N"])


def make_store(kind: str, *, url: str | None, unsafe: bool) -> Store:
    if kind == "memory":
        return MemoryStore(unsafe=unsafe)
    if kind == "redis":
        return RedisStore(url or "redis://127.0.0.1:6379/0", unsafe=unsafe)
    if kind == "postgres":
        return PostgresStore(url or "postgresql://postgres@127.0.0.1:5432/postgres", unsafe=unsafe)
    if kind == "dynamodb":
        return DynamoStore(url, unsafe=unsafe)
    raise ValueError(f"unknown store {kind!r}")


def _loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    from harness.loopback import is_loopback_host

    return is_loopback_host(urlsplit(url).hostname or "")
