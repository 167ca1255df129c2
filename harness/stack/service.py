"""The bundled reference counter service, as a local child process."""

from __future__ import annotations

import sys
import urllib.request

from harness.stack.process import LocalServer


class ReferenceService(LocalServer):
    name = "reference-service"

    def __init__(self, *, variant: str = "atomic") -> None:
        super().__init__()
        self.variant = variant

    def command(self) -> list[str]:
        return [sys.executable, "-m", "harness.service", "--store", "memory", "--variant", self.variant,
                "--host", "127.0.0.1", "--port", str(self.port)]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=0.5) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
