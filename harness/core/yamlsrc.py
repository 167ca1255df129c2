"""YAML loading that remembers where every key and value came from.

pydantic reports errors by location (``('scenarios', 'x', 'load', 'users')``);
this module maps such a location back to a line of the file, so every
configuration error can name file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import ConfigError

Loc = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Lines (1-based) of every mapping key and sequence item, by data path."""

    path: Path
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that exists in the file."""
        for n in range(len(loc), -1, -1):
            line = self.lines.get(loc[:n])
            if line is not None:
                return line
        return None


def _walk(node: yaml.Node, loc: Loc, smap: SourceMap, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        explicit = sum(k.tag != "tag:yaml.org,2002:merge" for k, _ in node.value)
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merges like SafeLoader does: merged pairs first
        merged = len(node.value) - explicit
        out: dict[Any, Any] = {}
        explicit_keys: set[Any] = set()
        for i, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                raise ConfigError(
                    f"{smap.path}:{key_node.start_mark.line + 1}: {_dotted(loc)}: keys must be strings"
                )
            if i >= merged:
                if key in explicit_keys:
                    raise ConfigError(
                        f"{smap.path}:{key_node.start_mark.line + 1}: {_dotted((*loc, key))}: duplicate key"
                    )
                explicit_keys.add(key)  # an explicit key overrides one merged in, as YAML says
            smap.lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*loc, key), smap, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            smap.lines[(*loc, i)] = item.start_mark.line + 1
            items.append(_walk(item, (*loc, i), smap, loader))
        return items
    return loader.construct_object(node, deep=True)


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_yaml(path: Path) -> tuple[Any, SourceMap]:
    """Parse ``path`` into plain data plus a map from data paths to lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from e
    smap = SourceMap(path=path)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ConfigError(f"{path}:1: the file is empty")
        smap.lines[()] = root.start_mark.line + 1
        data = _walk(root, (), smap, loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError(f"{path}:{line}: not valid YAML: {e.problem or e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    finally:
        loader.dispose()
    return data, smap


def data_loc(data: Any, loc: Loc, tags: frozenset[str] = frozenset()) -> Loc:
    """Keep the parts of a pydantic error location that exist in ``data``.

    pydantic inserts union tags and validator names (``'redis'``,
    ``'function-after[...]'``) into locations; they are not keys of the file.
    """
    kept: list[str | int] = []
    cur = data
    for part in loc:
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if (isinstance(cur, dict) and part in cur) or in_list:
            kept.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and not _looks_internal(part, tags):
            # a key that is not in the data: a missing or unknown key; name it, then stop
            kept.append(part)
            break
    return tuple(kept)


def _looks_internal(part: str, tags: frozenset[str]) -> bool:
    return "[" in part or part in tags


def dotted(loc: Loc) -> str:
    return _dotted(loc)
