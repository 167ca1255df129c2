"""The DynamoDB store: UpdateItem ADD, ConditionExpression; boto3 calls in threads."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.service.stores import STORE_ROUND_TRIP, Claim, NotSupported, SoldOut, once

NO_KEYS = ("the dynamodb store does not support idempotency keys: applying an op and recording its key as one "
           "step needs TransactWriteItems, which the local DynamoDB (dynalite) lacks")


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

    # idempotency keys: refused (501) in both variants, never applied without the key's record. The
    # op and the key's record must change in one step, and across two items only TransactWriteItems
    # does that -- which the local DynamoDB (dynalite 4.0) does not implement.

    async def claim(self, token: str) -> Claim | int:
        raise NotSupported(NO_KEYS)

    async def add_claimed(self, key: str, amount: int, claim: Claim) -> int:
        raise NotSupported(NO_KEYS)

    async def take_claimed(self, key: str, claim: Claim) -> int:
        raise NotSupported(NO_KEYS)

    async def release(self, claim: Claim) -> None:
        raise NotSupported(NO_KEYS)

    async def add_once(self, key: str, amount: int, token: str) -> tuple[int, bool]:
        return await once(self, token, lambda claim: self.add_claimed(key, amount, claim))

    async def take_once(self, key: str, token: str) -> tuple[int, bool]:
        return await once(self, token, lambda claim: self.take_claimed(key, claim))

    async def resolve(self, token: str) -> int | None:
        raise NotSupported(NO_KEYS)

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


def _loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    from harness.core.loopback import is_loopback_host

    return is_loopback_host(urlsplit(url).hostname or "")
