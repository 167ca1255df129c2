"""Targets: one module per store. Each has an admin (set up the initial state, read
the final state strongly consistently; runs outside the load) and an op client
(one per load user; never raises for an op, it returns a classified Completion)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from harness.ops import Completion


class TargetAdmin(Protocol):
    def setup(self, initial: Mapping[str, int]) -> None: ...

    def read(self, keys: Sequence[str]) -> dict[str, int | None]: ...

    def close(self) -> None: ...


class OpClient(Protocol):
    def incr(self, key: str, amount: int) -> Completion: ...

    def decr_if_positive(self, key: str) -> Completion: ...

    def close(self) -> None: ...
