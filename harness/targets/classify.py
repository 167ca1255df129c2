"""Exception or status -> outcome, one table per target. When in doubt, indeterminate.

An op is ``fail`` only when the error proves nothing was applied: the request
never left (connection refused), or the server explicitly refused it (a Redis
error reply, a configured 4xx such as 409 sold out or 429 throttled). Timeouts,
resets after sending, 5xx and unparseable 2xx answers are ``indeterminate``.
Rules match an exception type, or a class name for libraries (gevent,
geventhttpclient) that this pure module must not import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.ops import CONNECTION_REFUSED, NAME_NOT_RESOLVED, NOT_SENT, Completion, Outcome


class NotSent(Exception):
    """The request never left this process: nothing can have been applied."""


class BadReply(Exception):
    """An answer arrived but is not what the protocol promises (e.g. not an integer)."""


@dataclass(frozen=True)
class Rule:
    match: type[BaseException] | str  # a type, or a class name anywhere in the exception's MRO
    outcome: Outcome
    reason: str

    def matches(self, exc: BaseException) -> bool:
        if isinstance(self.match, str):
            return any(c.__name__ == self.match for c in type(exc).__mro__)
        return isinstance(exc, self.match)


IND, FAIL = Outcome.INDETERMINATE, Outcome.FAIL

# Redis error reply prefixes that mean the command was not executed.
REDIS_REFUSALS = frozenset({
    "ERR", "OOM", "READONLY", "LOADING", "BUSY", "NOSCRIPT", "WRONGTYPE", "NOAUTH", "NOPERM", "MISCONF",
    "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "EXECABORT", "SOLDOUT",
    "NOREPLICAS",  # min-replicas-to-write: refused before it runs, as too few replicas are in good standing
})

REDIS_RULES: tuple[Rule, ...] = (
    Rule(NotSent, FAIL, NOT_SENT),
    Rule(BadReply, IND, "unexpected reply"),
    Rule(TimeoutError, IND, "timeout"),
    Rule("Timeout", IND, "timeout"),  # gevent.Timeout
    Rule(ConnectionResetError, IND, "connection reset"),
    Rule(BrokenPipeError, IND, "broken pipe"),
    Rule(ConnectionError, IND, "connection error"),
    Rule("ProtocolError", IND, "protocol error"),  # hiredis: garbled bytes
    Rule(OSError, IND, "socket error"),
)

HTTP_RULES: tuple[Rule, ...] = (
    Rule(NotSent, FAIL, NOT_SENT),
    Rule(ConnectionRefusedError, FAIL, CONNECTION_REFUSED),
    Rule("gaierror", FAIL, NAME_NOT_RESOLVED),
    Rule(BadReply, IND, "unparseable answer"),
    Rule(TimeoutError, IND, "timeout"),
    Rule("Timeout", IND, "timeout"),
    Rule(ConnectionResetError, IND, "connection reset"),
    Rule(BrokenPipeError, IND, "broken pipe"),
    Rule("EmptyResponse", IND, "empty response"),
    Rule("HTTPConnectionClosed", IND, "connection closed"),
    Rule("HTTPParseError", IND, "unparseable answer"),
    Rule(OSError, IND, "socket error"),
)


def classify_exception(exc: BaseException, rules: Sequence[Rule]) -> Completion:
    """The first matching rule decides; nothing matching is indeterminate."""
    original = getattr(exc, "original", None)  # geventhttpclient's RetriesExceeded wraps the cause
    if isinstance(original, BaseException):
        exc = original
    for rule in rules:
        if rule.matches(exc):
            return Completion(rule.outcome, None, f"{rule.reason}: {_short(exc)}")
    return Completion.indeterminate(f"unclassified: {_short(exc)}")


def classify_redis_error_reply(message: str) -> Completion:
    """A Redis error reply: refused (fail) when its prefix says the command did not run."""
    prefix = message.split(" ", 1)[0]
    if prefix in REDIS_REFUSALS:
        return Completion.fail(f"redis: {message[:120]}")
    return Completion.indeterminate(f"redis: {message[:120]}")


def classify_http_status(status: int, fail_statuses: Sequence[int]) -> Completion | None:
    """None for 2xx (the answer must still parse); otherwise the outcome of the status."""
    if 200 <= status < 300:
        return None
    if status in fail_statuses:
        return Completion.fail(f"HTTP {status}")
    return Completion.indeterminate(f"HTTP {status}")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:160]


# DynamoDB error codes that prove the write was not applied. Anything else (5xx such as
# InternalServerError or ServiceUnavailable, unknown codes) is indeterminate.
DYNAMODB_REFUSALS = frozenset({
    "ConditionalCheckFailedException", "ProvisionedThroughputExceededException", "ThrottlingException",
    "RequestLimitExceeded", "ValidationException", "ResourceNotFoundException", "AccessDeniedException",
    "UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationTokenException",
    "TransactionConflictException", "ItemCollectionSizeLimitExceededException", "SerializationException",
})

DYNAMODB_RULES: tuple[Rule, ...] = (
    Rule(NotSent, FAIL, NOT_SENT),
    Rule("EndpointConnectionError", FAIL, NOT_SENT),  # botocore: the connection was never made
    Rule(BadReply, IND, "unexpected reply"),
    Rule("ReadTimeoutError", IND, "timeout"),
    Rule("ConnectTimeoutError", IND, "connect timeout"),
    Rule("ConnectionClosedError", IND, "connection closed"),
    Rule(TimeoutError, IND, "timeout"),
    Rule("Timeout", IND, "timeout"),
    Rule(OSError, IND, "socket error"),
)


def classify_dynamodb_error(code: str, message: str, status: int | None) -> Completion:
    """A DynamoDB error response (botocore ClientError)."""
    text = f"{code}: {message}"[:160]
    if code in DYNAMODB_REFUSALS:
        return Completion.fail(text)
    return Completion.indeterminate(f"HTTP {status} {text}" if status else text)
