"""A group of servers waits for a state and, when it does not come, says what it saw last."""

from __future__ import annotations

import pytest

from harness.core.errors import StackError
from harness.stack.process import ServerGroup


class _Group(ServerGroup):
    name = "test-group"


def test_wait_for_returns_once_nothing_is_missing():
    seen = iter(["the replica: link down", "the replica: offset 3 of 9", None])
    _Group().wait_for("the replica in sync", lambda: next(seen), timeout=5, poll=0)


def test_wait_for_names_what_it_saw_last_when_it_times_out():
    with pytest.raises(StackError, match=r"^test-group: timed out after 0 s waiting for the replica in sync; "
                                         r"last seen: offset 3 of 9$"):
        _Group().wait_for("the replica in sync", lambda: "offset 3 of 9", timeout=0.2, poll=0.01)


def test_wait_for_reports_an_error_that_persists():
    def refused() -> str | None:
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(StackError, match=r"last seen: ConnectionRefusedError: connection refused$"):
        _Group().wait_for("a live primary", refused, timeout=0.2, poll=0.01)
