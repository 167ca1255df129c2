"""Target addresses: the loopback safety rule and scheme checks (redaction lives in harness.core.secrets)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from harness.core.errors import ConfigError, SafetyError
from harness.core.loopback import check_listen, is_loopback_host
from harness.core.secrets import redact_url

__all__ = ["check_listen", "check_safe", "check_target_safe", "is_loopback_host", "require_scheme"]


def hosts_of(url: str) -> list[str]:
    """Every host a URL names (several for ``redis+sentinel://h1:p1,h2:p2/...``)."""
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1]
    out = []
    for part in netloc.split(","):
        if part.startswith("["):  # an IPv6 address
            out.append(part[1:part.index("]")])
        else:
            out.append(part.rsplit(":", 1)[0] if ":" in part else part)
    return out


def check_safe(url: str, *, allow_remote: bool) -> None:
    if allow_remote:
        return
    for host in hosts_of(url):
        if not is_loopback_host(host):
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
