"""MkDocs hook: the references that must not drift from the code are made from it when the docs are built.

    <!-- generated: cli -->        every command and option, from counterbench's own argparse parser
    <!-- generated: scenarios -->  every scenarios.yaml key, from the pydantic models that validate it
"""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli import parser
from harness.config.reference import scenarios_markdown


def _commands(p: argparse.ArgumentParser, prefix: str) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(command, its one-line help, its parser) for every subcommand, nested ones too, in order."""
    out = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                inner = _commands(sub, f"{prefix} {name}")
                out += inner if inner else [(f"{prefix} {name}", helps.get(name, ""), sub)]
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cli_markdown() -> str:
    """One section per command: its usage and a table of its arguments and options."""
    parts = []
    for name, summary, sub in _commands(parser(), "counterbench"):
        sub.prog = name
        usage = sub.format_usage().removeprefix("usage: ").strip()
        parts.append(f"## `{name}`\n\n{summary}\n\n```\n{usage}\n```\n\n| argument | default | what |\n|---|---|---|")
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flags = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest.upper()}`"
            if action.metavar and action.option_strings:
                flags += f" `{action.metavar}`"
            elif action.choices and not isinstance(action, argparse._SubParsersAction):
                flags += " " + "\\|".join(f"`{c}`" for c in action.choices)
            default = action.default
            shown = "" if default is None or default is False or default is argparse.SUPPRESS else f"`{default}`"
            parts.append(f"| {flags} | {shown} | {_cell(action.help or '')} |")
        parts.append("")
    return "\n".join(parts)


MARKERS = {"<!-- generated: cli -->": cli_markdown, "<!-- generated: scenarios -->": scenarios_markdown}


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
