"""Credentials never leave counterbench: one mechanism for every file, line and child it writes.

Two rules, applied together by ``clean`` wherever counterbench writes (run folder JSON, report
pages, terminal and error lines, locust.log, history error texts):

- by structure (``redact``): in a document, a URL loses its user and password and every query
  value; every header value goes; so does the value of any field named like a credential
  (``password``, ``token``, ``secret``, ``authorization``, ``credential``, ``cookie``, or a key such
  as ``api_key``, ``access_key``, ``private_key``, ``x-api-key``);
- by value (``scrub``): every secret counterbench was given -- a URL's password and query values,
  header values, ``REDISCLI_AUTH``, the AWS secret key and session token -- is registered once
  (``register_*``) and replaced wherever it appears, whatever the text around it (an error
  message, an exception, a log line).

Child processes get secrets by environment, never on their command line (``ps`` shows argv).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

REDACTED = "***"
_CREDENTIAL = re.compile(r"(^|[-_])(pass|password|passwd|pwd|token|secret|authori[sz]ation|credentials?|cookie"
                         r"|(api|access|private|secret|auth|signing|session)[-_]?key)($|[-_])", re.IGNORECASE)
_URL = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
_MIN = 3  # shorter values are not scrubbed by value (they would eat ordinary text); structure still hides them
# header values that are not credentials, kept out of the by-value registry (they would blank ordinary words)
_PLAIN_HEADERS = frozenset({"content-type", "accept", "user-agent", "accept-encoding", "content-encoding"})
_ENV = ("REDISCLI_AUTH", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

_known: set[str] = set()


def is_credential_name(name: str) -> bool:
    """Named like a credential; a name ending in ``_env`` names an environment variable instead."""
    return bool(_CREDENTIAL.search(name)) and not name.lower().endswith("_env")


def register(*values: str | None) -> None:
    """Secret values, as given and as they appear percent-encoded in a URL."""
    for v in values:
        if v and len(v) >= _MIN:
            _known.update({v, quote(v, safe=""), quote_plus(v)})


def register_url(url: str | None) -> None:
    if not url:
        return
    parts = urlsplit(url)
    register(parts.password and unquote(parts.password), parts.password)
    for _, value in parse_qsl(parts.query, keep_blank_values=True):
        register(value)


def register_headers(headers: Mapping[str, str]) -> None:
    register(*(v for k, v in headers.items() if k.lower() not in _PLAIN_HEADERS))


def register_environment() -> None:
    register(*(os.environ.get(name) for name in _ENV))


def register_run(scenario: Any, target_url: str | None) -> None:
    """Everything secret about a run: its scenario (as JSON), its target URL, the environment's."""
    register_doc(scenario)
    register_url(target_url)
    register_environment()


def register_doc(doc: Any) -> None:
    """Every secret a document carries by structure (a resolved scenario, as JSON)."""
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            name = str(k)
            if isinstance(v, str) and name.lower().endswith("_env") and _CREDENTIAL.search(name):
                register(os.environ.get(v))  # e.g. api_key_env: the variable holding the key
            elif isinstance(v, str) and is_credential_name(name):
                register(v)
            elif str(k).lower() == "headers" and isinstance(v, Mapping):
                register_headers({str(a): str(b) for a, b in v.items()})
            else:
                register_doc(v)
    elif isinstance(doc, list | tuple):
        for v in doc:
            register_doc(v)
    elif isinstance(doc, str) and _URL.match(doc):
        register_url(doc)


def redact_url(url: str) -> str:
    """The URL without user or password, and with every query value replaced."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return scrub(url)
    netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    if parts.username is not None or parts.password is not None:
        host = parts.hostname or ""
        netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    query = urlencode([(k, REDACTED) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def _redact_path(path: str) -> str:
    """A path template's query values (``/x?api_key=...``) go too."""
    head, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    return head + "?" + urlencode([(k, v if "{" in v else REDACTED) for k, v in pairs], safe="*{}")


def redact(doc: Any, *, _name: str = "") -> Any:
    """A copy of a JSON-like document with credentials removed by structure, then by value."""
    if isinstance(doc, Mapping):
        out: dict[Any, Any] = {}
        for k, v in doc.items():
            name = str(k)
            if name.lower() == "headers" and isinstance(v, Mapping):
                out[k] = dict.fromkeys(v, REDACTED)
            elif is_credential_name(name) and isinstance(v, str | int | float) and not isinstance(v, bool) \
                    and v not in ("", None):
                out[k] = REDACTED
            else:
                out[k] = redact(v, _name=name)
        return out
    if isinstance(doc, list | tuple):
        return [redact(v, _name=_name) for v in doc]
    if isinstance(doc, str):
        if _URL.match(doc):
            return redact_url(doc)
        if _name == "path" and doc.startswith("/"):
            return scrub(_redact_path(doc))
        return scrub(doc)
    return doc


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced."""
    if not _known or not text:
        return text
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def clean(doc: Any) -> Any:
    """What counterbench may write: ``redact`` for documents, ``scrub`` for text."""
    return scrub(doc) if isinstance(doc, str) else redact(doc)


def known() -> Iterable[str]:
    """The registered secrets (for tests)."""
    return frozenset(_known)
