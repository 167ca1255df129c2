"""A self-contained HTML page: verdict first, then tables, plots, scenario and environment."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
.badge{display:inline-block;padding:.25em .8em;border-radius:4px;color:#fff;font-weight:700;letter-spacing:.05em}
.pass{background:#2a9d8f}.fail{background:#d62828}.unknown{background:#e9a23b}.error{background:#6c757d}
table{border-collapse:collapse;margin:.6em 0;font-size:13px} td,th{border:1px solid #ddd;padding:.25em .6em}
th{background:#f4f4f4;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee;margin:.4em 0} pre{background:#f7f7f7;padding:.8em;overflow:auto}
.warn{background:#fff3cd;border:1px solid #e9c46a;padding:.5em .8em;margin:.5em 0}
"""


def esc(v: Any) -> str:
    return html.escape(str(v))


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return esc(v)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(columns or rows[0].keys())
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cls = ' class="num"' if isinstance(v, int | float) and not isinstance(v, bool) else ""
            cells.append(f"<td{cls}>{fmt(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def badge(verdict: str) -> str:
    return f'<span class="badge {esc(verdict)}">{esc(verdict.upper())}</span>'


def page(title: str, sections: Iterable[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>")


def pre_json(doc: Any) -> str:
    return f"<pre>{esc(json.dumps(doc, indent=2))}</pre>"
