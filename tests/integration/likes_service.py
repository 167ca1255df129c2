"""A newcomer's own service: likes per post, with an API of its own (issue 24's first ten minutes).

    PUT  /v2/likes/{id}   {"likes": n}           -> 204
    POST /v2/likes/{id}                          -> 200 {"data": {"likes": n}}   (one more like)
    GET  /v2/likes/{id}                          -> 200 {"data": {"likes": n}}

``--rmw``: read, yield to the other requests, then write (loses likes under concurrency); ``--ignore-set``:
PUT answers 204 and changes nothing (a setter that does not set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from typing import Any

import uvicorn

from harness.service.app import read_body

ROUTE = re.compile(r"^/v2/likes/([^/]+)$")


def make_app(*, rmw: bool, ignore_set: bool) -> Any:
    likes: dict[str, int] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        status, out = 404, b'{"error": "not found"}'
        m = ROUTE.match(scope["path"])
        if scope["path"] == "/health":
            status, out = 200, b"ok"
        elif m:
            post, method = m.group(1), scope["method"]
            if method == "PUT":
                if not ignore_set:
                    likes[post] = int(json.loads(body)["likes"])
                status, out = 204, b""
            elif method in ("POST", "GET"):
                if method == "POST":
                    if rmw:
                        seen = likes.get(post, 0)
                        await asyncio.sleep(0.001)  # the app's own work between its read and its write
                        likes[post] = seen + 1
                    else:
                        likes[post] = likes.get(post, 0) + 1
                status, out = 200, json.dumps({"data": {"likes": likes.get(post, 0)}}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": out})

    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rmw", action="store_true")
    p.add_argument("--ignore-set", action="store_true")
    args = p.parse_args()
    uvicorn.run(make_app(rmw=args.rmw, ignore_set=args.ignore_set), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
