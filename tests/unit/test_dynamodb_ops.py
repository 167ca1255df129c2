"""DynamoDB error classes -> outcomes, and retried ops counted as indeterminate."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from harness.classify import classify_dynamodb_error
from harness.config import DynamoTarget
from harness.ops import Outcome
from harness.targets.dynamodb import DynamoOps

FAIL, IND, OK = Outcome.FAIL, Outcome.INDETERMINATE, Outcome.OK


@pytest.mark.parametrize(("code", "status", "outcome"), [
    ("ConditionalCheckFailedException", 400, FAIL),
    ("ProvisionedThroughputExceededException", 400, FAIL),
    ("ThrottlingException", 400, FAIL),
    ("RequestLimitExceeded", 400, FAIL),
    ("ValidationException", 400, FAIL),
    ("ResourceNotFoundException", 400, FAIL),
    ("AccessDeniedException", 400, FAIL),
    ("UnrecognizedClientException", 400, FAIL),
    ("InternalServerError", 500, IND),
    ("ServiceUnavailable", 503, IND),
    ("SomethingNew", 400, IND),
])
def test_error_codes(code, status, outcome):
    assert classify_dynamodb_error(code, "msg", status).outcome is outcome


def client_error(code: str, retries: int = 0, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": retries}}, "UpdateItem")


class Client:
    """A stand-in botocore client that answers with a canned response or raises."""

    def __init__(self, result):
        self.result = result

    def update_item(self, **_):
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def ops(result, **target) -> DynamoOps:
    return DynamoOps(DynamoTarget(kind="dynamodb", **target), Client(result))


@pytest.mark.parametrize(("result", "outcome"), [
    ({"Attributes": {"counterValue": {"N": "5"}}, "ResponseMetadata": {"RetryAttempts": 0}}, OK),
    (client_error("ConditionalCheckFailedException"), FAIL),
    (client_error("InternalServerError", status=500), IND),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), FAIL),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), IND),
    (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), IND),
    ({"Attributes": {"counterValue": {"S": "x"}}}, IND),
])
def test_op_outcomes(result, outcome):
    done = ops(result).incr("k", 1)
    assert done.outcome is outcome
    if outcome is OK:
        assert done.value == 5


def test_updated_old_on_first_upsert_is_ok_without_a_value():
    done = ops({"ResponseMetadata": {"RetryAttempts": 0}}, returns="before").incr("k", 1)
    assert (done.outcome, done.value) == (OK, None)


def test_a_retried_success_is_indeterminate_with_its_attempts():
    done = ops({"Attributes": {"counterValue": {"N": "5"}}, "ResponseMetadata": {"RetryAttempts": 2}},
               max_attempts=3).incr("k", 1)
    assert (done.outcome, done.attempts) == (IND, 3)
    assert "3 attempts" in (done.error or "")


def test_a_retried_refusal_is_indeterminate_too():
    # the first attempt may have been applied before the retry was refused
    done = ops(client_error("ConditionalCheckFailedException", retries=1), max_attempts=2).decr_if_positive("k")
    assert (done.outcome, done.attempts) == (IND, 2)


def test_sigv4_signs_for_execute_api_with_the_standard_chain(monkeypatch):
    from harness.targets.apigateway import sigv4_signer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    headers = sigv4_signer("eu-west-1")("POST", "https://abc.execute-api.eu-west-1.amazonaws.com/prod/counter",
                                        b"{}", {"Content-Type": "application/json"})
    auth = headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in auth
    assert "secret" not in auth and "X-Amz-Date" in headers
