"""A private one-member etcd (Debian's ``etcd-server``) on free 127.0.0.1 ports: the store Patroni keeps
its leader key in (``harness.stack.patroni``)."""

from __future__ import annotations

import json
import shutil
import urllib.request

from harness.core.errors import StackError
from harness.stack.process import LocalServer, free_port


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if found is None:
        raise StackError("etcd is not installed: run `make setup` (it installs Debian's etcd-server)")
    return found


class EtcdServer(LocalServer):
    """One etcd member: ``port`` serves clients (the v3 API, which Patroni's etcd3 client speaks over its
    JSON gateway), ``peer_port`` is the member's peer listener (a cluster of one: nothing connects)."""

    name = "etcd"

    def __init__(self) -> None:
        super().__init__()
        self.peer_port = free_port()
        self._bin = etcd_binary()

    def command(self) -> list[str]:
        client, peer = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.peer_port}"
        return [self._bin, "--name", "counterbench", "--data-dir", str(self.dir / "data"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"counterbench={peer}", "--initial-cluster-state", "new",
                "--initial-cluster-token", self.dir.name, "--logger", "zap", "--log-level", "warn"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                return bool(json.loads(r.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
