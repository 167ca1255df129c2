"""A counter service whose API is nothing like the reference contract (the README's worked example).

    PUT  /api/v1/counters/{key}                 body "value=<n>" (text/plain)        -> 204
    POST /api/v1/counters/{key}:increment?by=N                                       -> 200 "<n>" (plain text)
    POST /api/v1/seats/{key}:reserve                -> 201 {"reservation": {"remaining": n}} | 410 when sold out
    GET  /api/v1/counters/{key}                     -> 200, the value in header X-Counter-Value

With --lose it acknowledges every 20th increment without applying it.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from harness.service.app import read_body

ROUTE = re.compile(r"^/api/v1/(counters|seats)/([^/]+?)(:increment|:reserve)?$")


def make_app(lose: bool) -> Any:
    values: dict[str, int] = {}
    n = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal n
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        status, headers, out = 404, [], b"not found"
        m = ROUTE.match(scope["path"])
        if scope["path"] == "/health":
            status, out = 200, b"ok"
        elif m:
            kind, key, action = m.groups()
            method = scope["method"]
            if kind == "counters" and action is None and method == "PUT":
                values[key] = int(body.decode().removeprefix("value="))
                status, out = 204, b""
            elif kind == "counters" and action is None and method == "GET":
                if key in values:
                    status, headers, out = 200, [(b"x-counter-value", str(values[key]).encode())], b"ok"
            elif kind == "counters" and action == ":increment" and method == "POST":
                by = int(parse_qs(scope["query_string"].decode()).get("by", ["1"])[0])
                n += 1
                if not (lose and n % 20 == 0):
                    values[key] = values.get(key, 0) + by
                status, out = 200, str(values.get(key, 0) + (by if lose and n % 20 == 0 else 0)).encode()
            elif kind == "seats" and action == ":reserve" and method == "POST":
                if values.get(key, 0) <= 0:
                    status, out = 410, b"gone"
                else:
                    values[key] -= 1
                    status, out = 201, json.dumps({"reservation": {"remaining": values[key]}}).encode()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lose", action="store_true")
    args = p.parse_args()
    uvicorn.run(make_app(args.lose), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
