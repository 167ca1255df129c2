"""The house rules, read from the code itself (every import statement, at any depth), so they stay true."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "harness"
LOAD_ONLY = ("locust", "gevent", "geventhttpclient", "greenlet", "zmq")
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(p for p in HARNESS.rglob("*.py") if "__pycache__" not in p.parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, top-level or inside a function."""
    out = []
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1]) if path.is_relative_to(ROOT) else ""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base]) if base else ".".join(parts)
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def offenders(where: str, forbidden: tuple[str, ...]) -> list[str]:
    folder = HARNESS / where if where else HARNESS
    found = []
    for path in modules():
        if not path.is_relative_to(folder):
            continue
        for line, name in imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)}:{line}: imports {name}")
    return found


def test_only_the_load_stage_imports_locust_or_gevent():
    found = []
    for path in modules():
        if path.is_relative_to(HARNESS / "load"):
            continue
        found += [f"{path.relative_to(ROOT)}:{line}: imports {name}" for line, name in imports(path)
                  if name.split(".")[0] in LOAD_ONLY]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(("where", "forbidden"), [
    ("checks", ("harness.load", "harness.targets", "harness.stack", "harness.report", "harness.judge")),
    ("report", ("harness.load", "harness.targets", "harness.stack", "harness.faults")),
    ("service", ("harness.targets", "harness.load", "harness.stack", "harness.checks")),
    ("load", ("harness.checks", "harness.judge", "harness.report", "harness.pipeline", "harness.locustfile",
              "harness.cli", "harness.runs", "harness.preflight", "harness.resolve")),
    ("targets", ("harness.config",)),  # the registries: config imports them, not the reverse
    ("faults", ("harness.config",)),
    ("core", ("harness.targets", "harness.load", "harness.checks", "harness.judge", "harness.report",
              "harness.pipeline", "harness.faults")),
    ("history", ("harness.load", "harness.targets", "harness.stack", "harness.checks")),
    ("metrics", ("harness.load", "harness.targets", "harness.stack", "harness.checks")),
    ("stack", ("harness.load", "harness.checks", "harness.judge", "harness.report")),
])
def test_a_stage_never_reaches_into_those_it_must_not_know(where, forbidden):
    found = offenders(where, forbidden)
    assert not found, "\n".join(found)


def test_no_module_is_long_without_saying_why():
    long = []
    for path in modules():
        n = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if n > MAX_LINES and "long because" not in doc:
            long.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not long, "\n".join(long)


def test_the_rules_see_an_import_inside_a_function(tmp_path):
    # the reader must catch a late import too: a rule it could not see would be no rule
    p = tmp_path / "x.py"
    p.write_text("def f():\n    import gevent\n    from harness.load import user\n")
    assert [name for _, name in imports(p)] == ["gevent", "harness.load", "harness.load.user"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_workloads_registry_and_cost_reach_no_config_or_backend():
    for name, forbidden in (("workloads.py", ("harness.config",)),
                            ("cost.py", ("harness.targets", "harness.stack", "harness.load"))):
        path = HARNESS / name
        found = [f"{name}:{line}: imports {m}" for line, m in imports(path)
                 if any(m == f or m.startswith(f + ".") for f in forbidden)]
        assert not found, "\n".join(found)


def package_of(module: str) -> str:
    """The package a module belongs to (a package's __init__ belongs to itself)."""
    path = ROOT.joinpath(*module.split("."))
    return module if path.is_dir() else module.rpartition(".")[0]


def test_no_import_cycle_spans_two_packages():
    """A package and its own modules may import each other (an __init__ re-exporting them); a cycle across
    packages is two stages that each need the other, which no reader can follow."""
    names = {module_name(p): p for p in modules()}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        deps = set()
        for _, m in imports(path):
            parts = m.split(".")
            for i in range(2, len(parts) + 1):  # importing a.b.c runs a.b's __init__ too
                if ".".join(parts[:i]) in names:
                    deps.add(".".join(parts[:i]))
        graph[name] = deps - {name}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    crossing = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len({package_of(m) for m in component}) > 1:
                crossing.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not crossing, crossing


MAX_TOP_LEVEL = 12


def test_harness_shows_its_stages_and_faces_first():
    top = sorted(p.stem for p in HARNESS.glob("*.py") if p.stem != "__init__")
    assert len(top) <= MAX_TOP_LEVEL, top
