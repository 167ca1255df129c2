"""The scenarios.yaml reference, generated from the config models themselves (docs/reference/scenarios.md is
made from it when the docs are built, so it cannot drift from what is validated): every section a scenario
may hold, each key with its type, default and description.

A key's description is its ``Field(description=...)``, else the comment on the line that declares it (or on
the line just above).
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from harness.config.scenario import Scenario


def _models(root: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """Every model a scenario holds, with the path a file reaches it by, in the order a reader meets them."""
    out: list[tuple[str, type[BaseModel]]] = []
    seen: set[type[BaseModel]] = set()

    def walk(path: str, t: Any) -> None:
        if typing.get_origin(t) is not None or isinstance(t, types.UnionType):
            for a in typing.get_args(t):
                walk(path, a)
            return
        if isinstance(t, type) and issubclass(t, BaseModel) and t not in seen:
            seen.add(t)
            out.append((path, t))
            for name, f in t.model_fields.items():
                walk(f"{path}.{name}" if path else name, f.annotation)

    walk("", root)
    return out


def _type(t: Any) -> str:
    origin = typing.get_origin(t)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(t))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type(a) for a in typing.get_args(t))
    if origin is typing.Annotated:
        return _type(typing.get_args(t)[0])
    if origin in (tuple, list):
        args = [a for a in typing.get_args(t) if a is not Ellipsis]
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        k, v = typing.get_args(t)
        return f"mapping {_type(k)} → {_type(v)}"
    if t is type(None):
        return "null"
    if isinstance(t, type) and issubclass(t, BaseModel):
        return f"[{t.__name__}](#{t.__name__.lower()})"
    return getattr(t, "__name__", str(t))


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment at the end of each field's line in the source of the model or the model it extends."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        above = ""  # a comment line just above a field describes it, when its own line has no room
        for line in source.splitlines():
            m = re.match(r"\s{4}(\w+)\s*:[^#]*(?:#\s*(.+))?$", line)
            if m and (m.group(2) or above):
                found[m.group(1)] = (m.group(2) or above).strip()
            c = re.match(r"\s{4}#\s*(.+)$", line)
            above = c.group(1) if c else ""
    return found


def _default(f: Any) -> str:
    if f.is_required():
        return "required"
    value = f.default_factory() if f.default is PydanticUndefined and f.default_factory else f.default
    if isinstance(value, BaseModel):
        return "see below"
    if value in ((), [], {}):
        return "none"
    try:
        return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"
    except TypeError:
        return f"`{value}`"


def descriptions(model: type[BaseModel]) -> dict[str, str]:
    """Each field's description: its Field(description=...), else its line's comment ('' when neither)."""
    comments = _comments(model)
    return {name: f.description or comments.get(name, "") for name, f in model.model_fields.items()}


def scenarios_markdown() -> str:
    """The reference page's body: one section per model, a table of its keys."""
    parts = []
    for path, model in _models(Scenario):
        doc = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].replace("\n", " ").replace("``", "`")
        where = f"`{path}`" if path else "a scenario (under `scenarios: NAME:`)"
        kind = model.model_fields.get("kind")
        if path and kind is not None and typing.get_origin(kind.annotation) is Literal:
            where += f" with `kind: {typing.get_args(kind.annotation)[0]}`"
        parts.append(f"## {model.__name__}\n\n{where}" + (f": {doc}" if doc and not doc.startswith("A base") else "")
                     + "\n\n| key | type | default | description |\n|---|---|---|---|")
        said = descriptions(model)
        for name, f in model.model_fields.items():
            text = said[name].replace("|", "\\|").replace("\n", " ")
            parts.append(f"| `{f.alias or name}` | {_type(f.annotation)} | {_default(f)} | {text} |")
        parts.append("")
    return "\n".join(parts)
