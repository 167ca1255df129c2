"""A private PostgreSQL cluster: initdb in a temporary folder, on a free 127.0.0.1 port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from harness.core.errors import StackError
from harness.stack.process import LocalServer


def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise StackError("PostgreSQL is not installed: run `make setup` (it installs Debian's postgresql)")


class PostgresServer(LocalServer):
    name = "postgres"

    def __init__(self, *, settings: dict[str, str] | None = None) -> None:
        super().__init__()
        self.settings = dict(settings or {})  # more `-c name=value` for the server
        self._bin = pg_bindir()
        self._data = self.dir / "data"
        # PostgreSQL refuses to run as root: as root, run it as the package's postgres user
        self._as: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise StackError("running as root needs `runuser` to start PostgreSQL as the postgres user")
            self._as = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres")

    def start(self, *, timeout: float = 30.0) -> None:
        proc = subprocess.run([*self._as, str(self._bin / "initdb"), "-D", str(self._data), "-U", "postgres",
                               "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise StackError(f"initdb failed: {proc.stderr.strip()[-600:]}")
        super().start(timeout=timeout)

    def command(self) -> list[str]:
        extra = [arg for name, value in self.settings.items() for arg in ("-c", f"{name}={value}")]
        return [*self._as, str(self._bin / "postgres"), "-D", str(self._data), "-p", str(self.port),
                "-h", "127.0.0.1", "-k", str(self.dir), "-c", "max_connections=300", "-c", "fsync=off",
                "-c", "full_page_writes=off", *extra]

    def run_tool(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL program of the same installation, as the server's user."""
        return subprocess.run([*self._as, str(self._bin / tool), *args], capture_output=True, text=True, check=False)

    def sql(self, query: str) -> str:
        """One query's answer (psql, unaligned), for the stack's own checks."""
        proc = self.run_tool("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                             "-Atqc", query)
        if proc.returncode != 0:
            raise StackError(f"{self.name} on port {self.port}: {query!r} failed: {proc.stderr.strip()[-300:]}")
        return proc.stdout.strip()

    def ready(self) -> bool:
        proc = subprocess.run([str(self._bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                              check=False)
        return proc.returncode == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
