"""The app factory uvicorn imports in each worker process (configured by environment)."""

from __future__ import annotations

import json
import os
from typing import Any

from harness.service.app import make_app
from harness.service.stores import make_store

CONFIG_ENV = "COUNTERBENCH_SERVICE"


def create_app() -> Any:
    cfg = json.loads(os.environ.get(CONFIG_ENV, "{}"))
    return make_app(make_store(cfg.get("store", "memory"), url=cfg.get("url"), unsafe=bool(cfg.get("unsafe"))))
