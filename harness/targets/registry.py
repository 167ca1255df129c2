"""Every kind of target counterbench knows: one line each (see ``harness.targets.Backend``)."""

from __future__ import annotations

from harness.targets import Backend, apigateway, dynamodb, http, redis

BACKENDS: dict[str, Backend] = {b.kind: b for b in (
    redis.BACKEND,
    http.BACKEND,
    dynamodb.BACKEND,
    apigateway.BACKEND,
)}


def backend(kind: str) -> Backend:
    return BACKENDS[kind]
