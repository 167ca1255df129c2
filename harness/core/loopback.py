"""Loopback: the one rule for what counterbench sends to and what it listens on.

Pure and dependency-free, so the reference service (a system under test, which never imports the
harness's targets) applies the same guard to its own listener.
"""

from __future__ import annotations

import ipaddress
import socket

from harness.core.errors import SafetyError


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


def check_listen(host: str, *, allow_remote: bool, what: str, flag: str) -> None:
    """A listener counterbench opens (the master's port, the reference service) stays on loopback
    unless a flag says otherwise: neither authenticates who connects."""
    if not allow_remote and not is_loopback_host(host.strip("[]")):
        raise SafetyError(f"refusing to listen on {host!r}: {what} authenticates nobody; "
                          f"add {flag} to listen on other interfaces")
