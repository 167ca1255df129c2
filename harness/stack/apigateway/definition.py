"""A REST API definition (apigateway/*.yaml): resources, methods, DynamoDB integrations.

The same definition drives the local emulator and `counterbench aws deploy`;
its templates are files next to it, used unchanged by both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.core.errors import ConfigError
from harness.core.yamlsrc import data_loc, dotted, load_yaml

# Version history of the API definition format:
#   1: first version
SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntegrationResponse(_Frozen):
    status: int = Field(ge=100, le=599)
    selection_pattern: str | None = Field(default=None, description="regex on the integration's status code")
    template: str
    template_text: str = ""

    @model_validator(mode="after")
    def _regex(self) -> IntegrationResponse:
        if self.selection_pattern is not None:
            try:
                re.compile(self.selection_pattern)
            except re.error as e:
                raise ValueError(f"selection_pattern: {e}") from e
        return self


class Method(_Frozen):
    action: Literal["UpdateItem", "GetItem", "PutItem"]
    request_template: str
    request_template_text: str = ""
    responses: tuple[IntegrationResponse, ...]

    @model_validator(mode="after")
    def _default(self) -> Method:
        if sum(r.selection_pattern is None for r in self.responses) != 1:
            raise ValueError("exactly one response must have no selection_pattern (the default)")
        return self

    def select(self, integration_status: int) -> IntegrationResponse:
        """The response whose pattern matches the integration's status code, else the default."""
        for r in self.responses:
            if r.selection_pattern is not None and re.fullmatch(r.selection_pattern, str(integration_status)):
                return r
        return next(r for r in self.responses if r.selection_pattern is None)


class Table(_Frozen):
    name: str
    key: tuple[str, ...] = Field(min_length=1, max_length=2)


class Throttle(_Frozen):
    rate: float = Field(gt=0, description="steady requests per second")
    burst: int = Field(ge=1)


class ApiDefinition(_Frozen):
    schema_version: Literal[1]
    name: str
    table: Table
    throttle: Throttle | None = None
    resources: Mapping[str, Mapping[Literal["GET", "POST", "PUT", "DELETE"], Method]]

    @model_validator(mode="after")
    def _paths(self) -> ApiDefinition:
        for path in self.resources:
            if not re.fullmatch(r"(/[A-Za-z0-9_\-]+)+", path):
                raise ValueError(f"resource {path!r}: use /name segments")
        return self


def load_definition(path: str | Path) -> ApiDefinition:
    """Read a definition and the templates it names (relative to it)."""
    path = Path(path)
    data, smap = load_yaml(path)
    try:
        api = ApiDefinition.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors(include_url=False):
            loc = data_loc(data, tuple(err["loc"]))
            lines.append(f"{path}:{smap.line_of(loc)}: {dotted(loc)}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines)) from None
    resources: dict[str, dict[str, Method]] = {}
    for rpath, methods in api.resources.items():
        resources[rpath] = {}
        for verb, m in methods.items():
            responses = tuple(r.model_copy(update={"template_text": _read(path, r.template)}) for r in m.responses)
            resources[rpath][verb] = m.model_copy(update={
                "request_template_text": _read(path, m.request_template), "responses": responses})
    return api.model_copy(update={"resources": resources})


def _read(definition: Path, name: str) -> str:
    p = definition.parent / name
    try:
        return p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{definition}: template {name}: cannot read {p}: {e.strerror or e}") from e
