"""The "Correctness" tab of Locust's web UI, for plain Locust runs: the online checks' violations while the
test runs, and after Stop the verdict, each check as a sentence, what the run could have caught, and a
link to report.html.

Locust's web UI draws extra tabs from ``template_args["extended_tabs"]`` and ``["extended_tables"]``, and
fills them from ``extended_stats`` in each ``/stats/requests`` answer it polls (Locust's own way of
extending its UI). The rows come from the plain-run face (``harness.locustfile``) through ``Rows``;
``/counterbench/run/<file>`` serves the run folder's report.html and its figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

TAB = "correctness"
STRUCTURE = [{"key": "what", "title": "What"}, {"key": "finding", "title": "Finding"}]
SERVED = (".html", ".png", ".svg", ".csv", ".json")  # what of the run folder the web UI serves


class Rows(Protocol):
    def rows(self) -> list[dict[str, str]]: ...

    def file(self, name: str) -> Path | None: ...


def install(web_ui: Any, source: Rows) -> None:
    """Add the tab to Locust's web UI (``web_ui``: its ``WebUI``)."""
    from flask import Response, abort, request, send_file

    web_ui.template_args["extended_tabs"] = [{"title": "Correctness", "key": TAB}]
    web_ui.template_args["extended_tables"] = [{"key": TAB, "structure": STRUCTURE}]

    @web_ui.app.after_request
    def _with_rows(response: Response) -> Response:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        doc = response.get_json()
        doc["extended_stats"] = [{"key": TAB, "data": source.rows()}]
        response.set_data(json.dumps(doc))
        return response

    @web_ui.app.route("/counterbench/run/<name>")
    def _run_file(name: str) -> Any:
        path = source.file(name)
        if path is None or "/" in name or path.suffix not in SERVED or not path.is_file():
            abort(404)
        return send_file(path)
