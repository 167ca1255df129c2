"""python -m harness.stack.apigateway: serve an API definition locally against a DynamoDB endpoint."""

from __future__ import annotations

import argparse

from harness.stack.apigateway.definition import load_definition
from harness.stack.apigateway.emulator import DynamoDBIntegration, Emulator, make_server


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m harness.stack.apigateway")
    p.add_argument("--definition", required=True)
    p.add_argument("--dynamodb-url", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--stage", default="prod")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    api = load_definition(args.definition)
    emulator = Emulator(api, integration=DynamoDBIntegration(args.dynamodb_url, region=args.region),
                        stage=args.stage)
    make_server(emulator, args.host, args.port).serve_forever()


if __name__ == "__main__":
    main()
