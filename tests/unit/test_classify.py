"""The classification tables, row by row: fail only when nothing can have been applied."""

from __future__ import annotations

import socket

import pytest

from harness.core.ops import Outcome
from harness.targets.classify import (
    HTTP_RULES,
    REDIS_RULES,
    BadReply,
    NotSent,
    classify_exception,
    classify_http_status,
    classify_redis_error_reply,
)

OK, FAIL, IND = Outcome.OK, Outcome.FAIL, Outcome.INDETERMINATE


class Timeout(BaseException):
    """Stands in for gevent.Timeout, matched by class name."""


class EmptyResponse(Exception):
    pass


class RetriesExceeded(Exception):
    def __init__(self, original: BaseException) -> None:
        super().__init__("retries exceeded")
        self.original = original


@pytest.mark.parametrize(("exc", "outcome"), [
    (NotSent("connect refused"), FAIL),
    (BadReply("bulk string"), IND),
    (TimeoutError("timed out"), IND),
    (Timeout(), IND),
    (ConnectionResetError(), IND),
    (BrokenPipeError(), IND),
    (ConnectionError("closed by the server"), IND),
    (OSError("weird"), IND),
    (RuntimeError("unknown"), IND),
])
def test_redis_exceptions(exc, outcome):
    assert classify_exception(exc, REDIS_RULES).outcome is outcome


@pytest.mark.parametrize(("exc", "outcome"), [
    (NotSent("x"), FAIL),
    (ConnectionRefusedError(), FAIL),
    (socket.gaierror("no such host"), FAIL),
    (RetriesExceeded(ConnectionRefusedError()), FAIL),
    (RetriesExceeded(TimeoutError()), IND),
    (TimeoutError(), IND),
    (Timeout(), IND),
    (ConnectionResetError(), IND),
    (EmptyResponse(), IND),
    (BadReply("not a number"), IND),
    (ValueError("unknown"), IND),
])
def test_http_exceptions(exc, outcome):
    assert classify_exception(exc, HTTP_RULES).outcome is outcome


@pytest.mark.parametrize(("reply", "outcome"), [
    ("SOLDOUT no seats left", FAIL),
    ("ERR value is not an integer or out of range", FAIL),
    ("OOM command not allowed when used memory > 'maxmemory'", FAIL),
    ("READONLY You can't write against a read only replica.", FAIL),
    ("LOADING Redis is loading the dataset in memory", FAIL),
    ("NOREPLICAS Not enough good replicas to write.", FAIL),
    ("WRONGTYPE Operation against a key holding the wrong kind of value", FAIL),
    ("SOMETHINGNEW we have never seen", IND),
])
def test_redis_error_replies(reply, outcome):
    assert classify_redis_error_reply(reply).outcome is outcome


@pytest.mark.parametrize(("status", "outcome"), [
    (409, FAIL), (429, FAIL), (400, FAIL), (404, FAIL),
    (500, IND), (502, IND), (503, IND), (504, IND), (401, IND), (302, IND),
])
def test_http_statuses(status, outcome):
    done = classify_http_status(status, (400, 404, 409, 429))
    assert done is not None and done.outcome is outcome


def test_2xx_is_decided_by_the_body():
    assert classify_http_status(200, (409,)) is None


def test_reasons_are_kept_short():
    done = classify_exception(OSError("x" * 1000), REDIS_RULES)
    assert done.error is not None and len(done.error) < 200


def test_every_rule_that_fails_an_op_gives_a_reason_cost_counts_as_never_sent():
    # cost.py prices an op by its error's reason without importing the targets: the words must agree
    from harness.core.ops import UNSENT_REASONS
    from harness.targets.classify import DYNAMODB_RULES, HTTP_RULES, REDIS_RULES

    rules = (*HTTP_RULES, *REDIS_RULES, *DYNAMODB_RULES)
    reasons = {r.reason for r in rules if r.outcome is Outcome.FAIL}
    assert reasons == set(UNSENT_REASONS)
