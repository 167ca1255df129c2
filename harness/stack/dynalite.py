"""dynalite (npm, pinned 4.0.0): a DynamoDB-compatible server, in memory, on a free 127.0.0.1 port.

dynalite serialises updates per key, so it is exact under concurrent writers --
a fair stand-in for DynamoDB's per-item atomicity.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.core.errors import StackError
from harness.stack.process import LocalServer

STACK_DIR = Path(__file__).resolve().parents[2] / ".stack"


def dynalite_binary() -> str:
    # the variable, a checkout's `make setup`, the current folder's (`npm install --prefix .stack dynalite`), PATH
    candidates = [os.environ.get("COUNTERBENCH_DYNALITE", ""), str(STACK_DIR / "node_modules" / ".bin" / "dynalite"),
                  str(Path(".stack") / "node_modules" / ".bin" / "dynalite"), shutil.which("dynalite") or ""]
    for c in candidates:
        if c and Path(c).exists():
            return c
    raise StackError("dynalite is not installed: in a checkout run `make setup`; elsewhere `npm install --prefix "
                     ".stack dynalite@4.0.0` here, `npm install -g dynalite@4.0.0`, or set COUNTERBENCH_DYNALITE "
                     "to its path")


class Dynalite(LocalServer):
    name = "dynalite"

    def __init__(self, *, path: Path | None = None) -> None:
        super().__init__()
        self.path = path  # on-disk tables; default in memory

    def command(self) -> list[str]:
        cmd = [dynalite_binary(), "--host", "127.0.0.1", "--port", str(self.port), "--createTableMs", "0",
               "--deleteTableMs", "0", "--updateTableMs", "0"]
        if self.path is not None:
            cmd += ["--path", str(self.path)]
        return cmd

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
