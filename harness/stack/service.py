"""The bundled reference counter service, as a local child process."""

from __future__ import annotations

import sys
import urllib.request

from harness.service import STORE_URL_ENV
from harness.stack.process import LocalServer


class ReferenceService(LocalServer):
    name = "reference-service"

    def __init__(self, *, variant: str = "atomic", store: str = "memory", store_url: str | None = None,
                 workers: int = 1) -> None:
        super().__init__()
        self.variant, self.store, self.store_url, self.workers = variant, store, store_url, workers

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "harness.service", "--store", self.store, "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(self.workers)]
        if self.variant != "atomic":
            cmd.append("--unsafe")
        return cmd

    def environment(self) -> dict[str, str]:
        # the store's URL (credentials and all) by environment, never on the command line
        return {STORE_URL_ENV: self.store_url} if self.store_url else {}

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=0.5) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
