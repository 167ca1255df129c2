"""A private redis-server on a free 127.0.0.1 port (never the system's 6379)."""

from __future__ import annotations

import shutil

from harness.errors import StackError
from harness.stack.process import LocalServer


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise StackError("redis-server is not installed: run `make setup` (it installs Debian's redis-server)")
    return path


class RedisServer(LocalServer):
    name = "redis"

    def command(self) -> list[str]:
        return [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "yes"]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
