"""Target addresses: the loopback safety rule and scheme checks (redaction lives in harness.secrets)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from harness.errors import ConfigError, SafetyError
from harness.secrets import redact_url


def is_loopback_host(host: str) -> bool:
    """True only when every address the host resolves to is on this machine's loopback."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addrs = {info[4][0] for info in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def check_safe(url: str, *, allow_remote: bool) -> None:
    host = urlsplit(url).hostname or ""
    if not allow_remote and not is_loopback_host(host):
        raise SafetyError(
            f"refusing to send load to {host or redact_url(url)!r}: not a loopback address. "
            "Set `allow_remote: true` in the scenario to load-test a remote target."
        )


def check_target_safe(scenario: Any, url: str) -> None:
    """The target and, for an API, the DynamoDB endpoint behind it (none given: AWS itself)."""
    check_safe(url, allow_remote=scenario.allow_remote)
    item = getattr(scenario.target, "item", None)
    if item is not None:
        region = item.region
        check_safe(item.url or f"https://dynamodb.{region}.amazonaws.com", allow_remote=scenario.allow_remote)


def require_scheme(url: str, schemes: tuple[str, ...], what: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        raise ConfigError(f"--target-url {redact_url(url)!r}: a {what} target needs a {' or '.join(schemes)}:// URL")
