"""An in-test counter service speaking the reference contract, correct or broken on purpose.

Faults hit every Nth request, so runs are deterministic in what they break:

    none          correct
    flaky-503     applies the update, then answers 503             (correct: must pass)
    garbage-200   applies the update, then answers 200 <html>      (correct: must pass)
    stall         applies the update, then stalls past the timeout (correct: must pass)
    throttle-429  answers 429 without applying                      (correct: must pass)
    slow          every request takes 0.3 s                         (correct: must pass)
    reset         applies the update, then drops the connection mid-answer (correct: must pass)
    pause         2 s after the first request, stalls every request for 1 s (a GC pause)
    lose          answers 200 with a value but does not apply       (lost updates: must fail)
    double        applies the update twice                          (duplicates: must fail)
    dup-values    applies correctly but returns the previous value  (repeated ids: must fail)
    oversell      sells seats down to -3                            (oversell: must fail)

With ``GUARD_*`` in its environment (never its command line: a test looks for secrets in ``ps``),
every request but /health must carry them, or gets 401: the path prefix ``GUARD_PREFIX``, the
query ``api_key=GUARD_QUERY``, the header ``X-Api-Key: GUARD_HEADER`` and Basic auth ``GUARD_BASIC``
(``user:password``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from harness.service.app import read_body

KEY_PATH = "/counters/"
RESET = b"<reset>"


class Faulty:
    def __init__(self, mode: str, every: int) -> None:
        self.mode = mode
        self.every = every
        self.values: dict[str, int] = {}
        self.n = 0
        self.first: float | None = None

    def hit(self) -> bool:
        self.n += 1
        return self.n % self.every == 0

    async def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if path == "/health":
            return 200, b'{"status": "ok"}'
        if not path.startswith(KEY_PATH):
            return 404, b"{}"
        rest = path[len(KEY_PATH):]
        key, _, action = rest.partition("/")
        if method == "GET" and not action:
            if key not in self.values:
                return 404, b'{"error": "no such counter"}'
            return 200, json.dumps({"value": self.values[key]}).encode()
        if method == "PUT" and not action:
            self.values[key] = int(json.loads(body)["value"])
            return 200, json.dumps({"value": self.values[key]}).encode()
        if self.mode == "slow":
            await asyncio.sleep(0.3)
        if self.mode == "pause":
            now = asyncio.get_running_loop().time()
            self.first = self.first or now
            if 2.0 <= now - self.first < 3.0:
                await asyncio.sleep(self.first + 3.0 - now)
        fault = self.hit()
        if fault and self.mode == "throttle-429":
            return 429, b'{"error": "slow down"}'
        if action == "increment":
            amount = int(json.loads(body)["amount"])
            if fault and self.mode == "lose":
                return 200, json.dumps({"value": self.values.get(key, 0) + amount}).encode()
            self.values[key] = self.values.get(key, 0) + amount
            if fault and self.mode == "double":
                self.values[key] += amount
            value = self.values[key]
            if fault and self.mode == "dup-values":
                value -= amount  # the value before: the previous op's answer, handed out again
        elif action == "decrement-if-positive":
            floor = -3 if self.mode == "oversell" else 0
            if self.values.get(key, 0) <= floor:
                return 409, b'{"error": "sold out"}'
            self.values[key] = self.values.get(key, 0) - 1
            value = self.values[key]
        else:
            return 404, b"{}"
        if fault and self.mode == "flaky-503":
            return 503, b'{"error": "unavailable"}'
        if fault and self.mode == "garbage-200":
            return 200, b"<html>upstream glitch</html>"
        if fault and self.mode == "reset":
            return 200, RESET
        if fault and self.mode == "stall":
            await asyncio.sleep(1.5)
        return 200, json.dumps({"value": value}).encode()


def guarded(scope: dict[str, Any]) -> str | None:
    """The path without the guard's prefix, or None when the request lacks a secret the guard wants."""
    path = scope["path"]
    prefix = os.environ.get("GUARD_PREFIX", "")
    if path == "/health" or not os.environ.get("GUARD_QUERY"):
        return path
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    query = parse_qs(scope["query_string"].decode())
    basic = "Basic " + base64.b64encode(os.environ["GUARD_BASIC"].encode()).decode()
    if not path.startswith(prefix) or query.get("api_key") != [os.environ["GUARD_QUERY"]] \
            or headers.get("x-api-key") != os.environ["GUARD_HEADER"] or headers.get("authorization") != basic:
        return None
    return path[len(prefix):]


def make_app(faulty: Faulty) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path = guarded(scope)
        if path is None:
            status, payload = 401, b'{"error": "a secret is missing"}'
        else:
            status, payload = await faulty.handle(scope["method"], path, body)
        if payload == RESET:
            # promise a body, send half, then fail: the server closes the connection mid-answer
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"40")]})
            await send({"type": "http.response.body", "body": b'{"val', "more_body": True})
            raise ConnectionAbortedError("dropped on purpose")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="none")
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    uvicorn.run(make_app(Faulty(args.mode, args.every)), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
