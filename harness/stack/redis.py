"""A private redis-server on a free 127.0.0.1 port (never the system's 6379)."""

from __future__ import annotations

import shutil
from typing import Literal

from harness.core.errors import StackError
from harness.stack.process import LocalServer


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise StackError("redis-server is not installed: run `make setup` (it installs Debian's redis-server)")
    return path


Persistence = Literal["none", "everysec", "always"]


class RedisServer(LocalServer):
    """``persistence``: none (memory only), or an append-only file fsynced every second or every write."""

    name = "redis"

    def __init__(self, *, persistence: Persistence = "none", settings: dict[str, str] | None = None) -> None:
        super().__init__()
        self.persistence = persistence
        self.settings = dict(settings or {})  # more `--name value` for the server

    def command(self) -> list[str]:
        aof = ["--appendonly", "no"] if self.persistence == "none" else [
            "--appendonly", "yes", "--appendfsync", self.persistence]
        extra = [arg for name, value in self.settings.items() for arg in (f"--{name}", value)]
        return [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                *aof, "--dir", str(self.dir), "--protected-mode", "yes", *extra]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
