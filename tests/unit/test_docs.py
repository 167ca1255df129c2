"""The docs: README is a front page that fits on a few screens and links only to pages that exist; the two
generated references say every option and key there is, each key with a description."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

from harness.cli import parser
from harness.config.reference import _models, descriptions, scenarios_markdown
from harness.config.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_LINES = 250


def hooks():  # docs/hooks.py, as MkDocs loads it
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_a_front_page_with_the_two_commands_first():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    first_screen = "\n".join(text.splitlines()[:12])
    assert "make demo" in first_screen and "make test" in first_screen


def test_every_link_of_the_readme_reaches_a_file():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local, "the README links to its docs"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, missing


def test_the_cli_reference_names_every_command_and_option():
    text = hooks().cli_markdown()

    def walk(p: argparse.ArgumentParser, prefix: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{prefix} {name}")
            elif action.option_strings and not isinstance(action, argparse._HelpAction):
                for flag in action.option_strings:
                    assert f"`{flag}`" in text, f"{prefix}: {flag} is not in the CLI reference"

    walk(parser(), "counterbench")
    for name in ("run", "check", "report", "compare", "export", "worker", "aws deploy", "aws teardown"):
        assert f"## `counterbench {name}`" in text


def test_the_scenarios_reference_names_every_key_of_every_section_with_a_description():
    text = scenarios_markdown()
    for _, model in _models(Scenario):
        assert f"## {model.__name__}" in text
        said = descriptions(model)
        for name, f in model.model_fields.items():
            assert f"| `{f.alias or name}` |" in text
            assert said[name], f"{model.__name__}.{name} has no description (Field(description=...) or a comment)"


def test_the_hook_fills_the_markers_of_the_reference_pages():
    h = hooks()
    for page, marker in (("cli.md", "<!-- generated: cli -->"), ("scenarios.md", "<!-- generated: scenarios -->")):
        source = (ROOT / "docs" / "reference" / page).read_text()
        assert marker in source
        built = h.on_page_markdown(source)
        assert marker not in built and built.count("| ") > 50
