"""Velocity (VTL) mapping templates as API Gateway renders them, on airspeed.

airspeed renders Python objects, so API Gateway's Java-flavoured objects are
provided here: strings with Java's String methods (``length``, ``substring``
with Java's bounds checks), ``$input``, ``$util`` and ``$context``. airspeed
renders an unresolved reference literally and silently; API Gateway would fail,
so any ``$reference`` left in the output is an error here.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import airspeed


class TemplateError(Exception):
    """The template failed to render, as API Gateway answers with 500."""


class JString(str):
    """A str with the java.lang.String methods templates call."""

    def length(self) -> int:
        return len(self)

    def substring(self, begin: int, end: int | None = None) -> JString:
        stop = len(self) if end is None else end
        if begin < 0 or stop > len(self) or begin > stop:
            raise TemplateError(f"StringIndexOutOfBoundsException: begin {begin}, end {stop}, length {len(self)}")
        return JString(self[begin:stop])

    def indexOf(self, s: str) -> int:
        return self.find(s)

    def contains(self, s: str) -> bool:
        return s in self

    def isEmpty(self) -> bool:
        return not self

    def equals(self, other: object) -> bool:
        return str(self) == other

    def startsWith(self, s: str) -> bool:
        return self.startswith(s)

    def endsWith(self, s: str) -> bool:
        return self.endswith(s)

    def toLowerCase(self) -> JString:
        return JString(self.lower())

    def toUpperCase(self) -> JString:
        return JString(self.upper())

    def trim(self) -> JString:
        return JString(self.strip())

    def replaceAll(self, pattern: str, repl: str) -> JString:
        return JString(re.sub(pattern, repl, self))

    def replace(self, old: str, new: str, count: int = -1) -> JString:  # type: ignore[override]
        return JString(str.replace(self, old, new, count))


def _wrap(value: Any) -> Any:
    if isinstance(value, str):
        return JString(value)
    if isinstance(value, dict):
        return {k: _wrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


_MISSING = object()


def json_path(doc: Any, path: str) -> Any:
    """API Gateway's JSONPath subset: ``$``, ``$.a.b``, ``a.b`` (as the seed article writes), ``a[0]``."""
    path = path.strip()
    if path.startswith("$"):
        path = path[1:]
    cur = doc
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            idx = int(part[1:-1])
            if not isinstance(cur, list) or idx >= len(cur):
                return _MISSING
            cur = cur[idx]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


class Input:
    """``$input``: the body being mapped (the client's request, or the integration's response)."""

    def __init__(self, body: bytes, params: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._raw = body.decode("utf-8", "replace")
        self._params = params or {}
        try:
            self._doc: Any = json.loads(self._raw) if self._raw.strip() else {}
        except ValueError:
            self._doc = _MISSING

    @property
    def body(self) -> JString:
        return JString(self._raw)

    def json(self, path: str) -> JString:
        """JSON text of the value at ``path``; a string value comes back quoted.

        A missing path gives ``""`` (an empty JSON string): that is how an unmapped
        DynamoDB error renders the article's template into a 200 with an empty value.
        """
        value = json_path(self._doc, path) if self._doc is not _MISSING else _MISSING
        return JString('""' if value is _MISSING else json.dumps(value))

    def path(self, path: str) -> Any:
        value = json_path(self._doc, path) if self._doc is not _MISSING else _MISSING
        return JString("") if value is _MISSING else _wrap(value)

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return {k: dict(v) for k, v in self._params.items()}
        for where in ("path", "querystring", "header"):
            value = self._params.get(where, {}).get(name)
            if value is not None:
                return JString(value)
        return JString("")


class Util:
    """``$util``."""

    def escapeJavaScript(self, s: str) -> JString:
        return JString(json.dumps(str(s))[1:-1].replace("'", "\\'"))

    def urlEncode(self, s: str) -> JString:
        return JString(urllib.parse.quote(str(s), safe=""))

    def urlDecode(self, s: str) -> JString:
        return JString(urllib.parse.unquote(str(s)))

    def base64Encode(self, s: str) -> JString:
        return JString(base64.b64encode(str(s).encode()).decode())

    def base64Decode(self, s: str) -> JString:
        return JString(base64.b64decode(str(s)).decode("utf-8", "replace"))

    def parseJson(self, s: str) -> Any:
        return _wrap(json.loads(str(s)))


_LEFTOVER = re.compile(r"\$!?\{?[A-Za-z_]")


def render(template: str, *, input: Input, context: Mapping[str, Any]) -> str:
    try:
        out = airspeed.Template(template).merge({"input": input, "util": Util(), "context": _wrap(dict(context))})
    except TemplateError:
        raise
    except airspeed.TemplateError as e:
        cause = e.__cause__
        if isinstance(cause, TemplateError):
            raise cause from e
        raise TemplateError(f"template failed: {e}") from e
    m = _LEFTOVER.search(out)
    if m:
        raise TemplateError(f"unresolved reference in template output near {out[m.start():m.start() + 40]!r}")
    return out
