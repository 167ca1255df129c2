"""The emulator as a local child process of the stack."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.stack.process import LocalServer


class ApiGatewayEmulator(LocalServer):
    name = "apigateway"

    def __init__(self, *, definition: Path, dynamodb_url: str, region: str = "us-east-1", stage: str = "prod") -> None:
        super().__init__()
        self.definition, self.dynamodb_url, self.region, self.stage = definition.resolve(), dynamodb_url, region, stage

    def command(self) -> list[str]:
        return [sys.executable, "-m", "harness.stack.apigateway", "--definition", str(self.definition),
                "--dynamodb-url", self.dynamodb_url, "--region", self.region, "--stage", self.stage,
                "--port", str(self.port)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.stage}"
