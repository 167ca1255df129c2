"""scenarios.yaml -> validated scenarios, every error naming file, line and key; command-line overrides."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config.scenario import TARGET_KINDS, Scenario, ScenarioFile
from harness.core.errors import ConfigError
from harness.core.yamlsrc import SourceMap, data_loc, dotted, load_yaml


def _known_keys() -> set[str]:
    """Every key some part of a scenario file takes (each frozen model's fields, across backends)."""
    from harness.core.models import Frozen

    keys: set[str] = set()
    todo: list[type] = [Frozen]
    while todo:
        model = todo.pop()
        todo += model.__subclasses__()
        keys |= {f.alias or name for name, f in getattr(model, "model_fields", {}).items()}
    return keys


def _did_you_mean(key: object) -> str:
    close = difflib.get_close_matches(str(key), sorted(_known_keys()), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_errors(err: ValidationError, data: Any, smap: SourceMap, prefix: str = "") -> str:
    lines = []
    for e in err.errors(include_url=False):
        loc = data_loc(data, tuple(e["loc"]), TARGET_KINDS)
        line = smap.line_of(loc)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + (_did_you_mean(e["loc"][-1]) if e["loc"] else "")
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif not isinstance(e.get("input"), dict | list) and "input" in e:
            msg = f"{msg} (got {e['input']!r})"
        where = f"{smap.path}:{line}" if line is not None else str(smap.path)
        name = f"{prefix}{dotted(loc)}" if loc else (prefix.rstrip(".") or dotted(loc))
        lines.append(f"{where}: {name}: {msg}")
    return "\n".join(lines)


def load_scenarios(path: str | Path) -> dict[str, Scenario]:
    """All scenarios of a file, validated; raises ConfigError naming file:line:key."""
    path = Path(path)
    data, smap = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping with schema_version and scenarios")
    try:
        parsed = ScenarioFile.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, data, smap)) from None
    out: dict[str, Scenario] = {}
    problems: list[str] = []
    for name, body in parsed.scenarios.items():
        if not re.fullmatch(r"[a-z0-9][a-z0-9\-_.]*", str(name)):
            line = smap.line_of(("scenarios", name))
            problems.append(f"{path}:{line}: scenarios.{name}: names use a-z, 0-9, '-', '_', '.'")
            continue
        if "name" in body:
            problems.append(f"{path}:{smap.line_of(('scenarios', name, 'name'))}: scenarios.{name}.name: "
                            "unknown key (the name is the mapping key)")
            continue
        try:
            out[name] = Scenario.model_validate({**body, "name": name})
        except ValidationError as e:
            sub = _sub_map(smap, ("scenarios", name))
            problems.append(_format_errors(e, body, sub, prefix=f"scenarios.{name}."))
            continue
        problems += _late_faults(out[name], smap)
    for suite, names in parsed.suites.items():
        for i, n in enumerate(names):
            if n not in parsed.scenarios:
                line = smap.line_of(("suites", suite, i))
                problems.append(f"{path}:{line}: suites.{suite}.{i}: no scenario named {n!r}")
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def load_suite(path: str | Path, name: str) -> list[str]:
    """The scenario names of a suite (the file is validated as a whole)."""
    load_scenarios(path)
    data, _ = load_yaml(Path(path))
    suites = data.get("suites") or {}
    if name not in suites:
        raise ConfigError(f"{path}: no suite named {name!r}; known: {', '.join(sorted(suites)) or '(none)'}")
    return list(suites[name])


def _late_faults(scenario: Scenario, smap: SourceMap | None, *, flag: str = "") -> list[str]:
    """``file:line: key: ...`` of each fault planned at or after the load's end (``flag``: the option that
    set the duration, when one did)."""
    out = []
    for i, f in scenario.late_faults():
        key = ("scenarios", scenario.name, "faults", i, "at")
        where = f"{smap.path}:{smap.line_of(key)}: " if smap is not None else ""
        end = f"{scenario.load.duration} s{f', set by {flag}' if flag else ''}"
        out.append(f"{where}{dotted(key)}: {f.action} planned at {f.at:g} s, at or after the load's end ({end})")
    return out


def _sub_map(smap: SourceMap, root: tuple[str, ...]) -> SourceMap:
    sub = SourceMap(path=smap.path)
    sub.lines[()] = smap.lines.get(root, 1)
    for loc, line in smap.lines.items():
        if loc[: len(root)] == root:
            sub.lines[loc[len(root):]] = line
    return sub


def get_scenario(path: str | Path, name: str) -> Scenario:
    scenarios = load_scenarios(path)
    if name not in scenarios:
        known = ", ".join(sorted(scenarios)) or "(none)"
        raise ConfigError(f"{path}: no scenario named {name!r}; known: {known}")
    return scenarios[name]


def with_overrides(
    scenario: Scenario,
    *,
    users: int | None = None,
    spawn_rate: float | None = None,
    duration: int | None = None,
    target_url: str | None = None,
    stop_on_violation: bool | None = None,
    path: str | Path | None = None,
) -> Scenario:
    """The scenario with command-line overrides applied, validated again; ``path``, the file it came from,
    lets an error name the line it conflicts with."""
    load = scenario.load.model_dump()
    for key, value in (("users", users), ("spawn_rate", spawn_rate), ("duration", duration)):
        if value is not None:
            load[key] = value
    target = scenario.target.model_dump()
    if target_url is not None:
        target["url"] = target_url
    raw = {**scenario.model_dump(), "load": load, "target": target}
    if stop_on_violation is not None:
        raw["stop_on_violation"] = stop_on_violation
    try:
        overridden = Scenario.model_validate(raw)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"] if p not in TARGET_KINDS)
        flag = {"load.users": "--users", "load.spawn_rate": "--spawn-rate", "load.duration": "--duration",
                "target.url": "--target-url"}.get(loc, loc)
        raise ConfigError(f"{flag}: {first['msg'].removeprefix('Value error, ')}") from None
    if overridden.late_faults():  # a shorter --duration ends the load before a planned fault
        smap = load_yaml(Path(path))[1] if path is not None else None
        raise ConfigError("\n".join(_late_faults(overridden, smap, flag="--duration" if duration is not None else "")))
    return overridden
