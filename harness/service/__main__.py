"""`counterbench serve` / python -m harness.service: the reference counter service.

    counterbench serve --store postgres --store-url postgresql://user@127.0.0.1/db --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import uvicorn

from harness.core.errors import SafetyError
from harness.core.loopback import check_listen
from harness.service import STORE_URL_ENV
from harness.service.asgi import CONFIG_ENV

STORES = ("memory", "redis", "postgres", "dynamodb")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="counterbench serve", description="the reference counter service")
    p.add_argument("--store", choices=STORES, default="memory")
    p.add_argument("--store-url", default=os.environ.get(STORE_URL_ENV),
                   help=f"redis://..., postgresql://..., or a DynamoDB endpoint URL (default: ${STORE_URL_ENV})")
    p.add_argument("--unsafe", action="store_true",
                   help="deliberately unsafe: read-modify-write increments, check-then-act seats")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--allow-remote", action="store_true", help="listen on a non-loopback address")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:  # the service authenticates nobody: loopback unless asked otherwise, however it is started
        check_listen(args.host, allow_remote=args.allow_remote, what="the reference service", flag="--allow-remote")
    except SafetyError as e:
        print(f"counterbench serve: {e}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("counterbench serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.store == "memory" and args.workers > 1:
        print("counterbench serve: the memory store lives in one process; it cannot serve --workers > 1 "
              "(each worker would count on its own). Use --store redis, postgres or dynamodb.", file=sys.stderr)
        return 2
    os.environ[CONFIG_ENV] = json.dumps({"store": args.store, "url": args.store_url, "unsafe": args.unsafe})
    uvicorn.run("harness.service.asgi:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning", access_log=False, backlog=2048)
    return 0


if __name__ == "__main__":
    sys.exit(main())
