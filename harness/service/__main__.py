"""python -m harness.service: serve the reference counter service (what `counterbench serve` runs)."""

from __future__ import annotations

import argparse

import uvicorn

from harness.service.app import MemoryStore, make_app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="counterbench serve")
    p.add_argument("--store", choices=["memory"], default="memory")
    p.add_argument("--variant", choices=["atomic", "read-modify-write", "check-then-act"], default="atomic")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    args = p.parse_args(argv)
    app = make_app(MemoryStore(variant=args.variant))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
