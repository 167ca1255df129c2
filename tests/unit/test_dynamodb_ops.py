"""DynamoDB error classes -> outcomes, and retried ops counted as indeterminate."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from harness.core.ops import Outcome
from harness.targets.classify import classify_dynamodb_error
from harness.targets.dynamodb import DynamoOps, DynamoTarget

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


# --- retries against a real local server: each attempt's fate decides ----------------------------

class ScriptedServer:
    """A loopback HTTP server answering one request per connection from a script, in a thread.

    Steps: ``"drop"`` reads the whole request, then resets the connection (the request arrived, the
    answer never does); ``"refuse"`` closes the listening socket (every later connection is refused);
    ``(status, body)`` answers it.
    """

    def __init__(self, steps: list) -> None:
        import socket
        import threading

        self.steps = list(steps)
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, conn) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        while len(body) < length:
            body += conn.recv(65536)
        self.requests += 1

    def _serve(self) -> None:
        import socket
        import struct

        while self.steps:
            step = self.steps.pop(0)
            if step == "refuse":
                self.sock.close()
                return
            conn, _ = self.sock.accept()
            with conn:
                self._read_request(conn)
                if step == "drop":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    continue
                status, body = step
                payload = json.dumps(body).encode()
                conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.0\r\n"
                             f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
        self.sock.close()


def retrying_ops(server: ScriptedServer, attempts: int) -> DynamoOps:
    from harness.targets.dynamodb import dynamodb_client

    client = dynamodb_client(url=server.url, region="us-east-1", timeout=5, max_attempts=attempts)
    return DynamoOps(DynamoTarget(kind="dynamodb", max_attempts=attempts), client)


OK_ANSWER = (200, {"Attributes": {"counterValue": {"N": "7"}}})
THROTTLED = (400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow down"})


def test_an_update_received_then_dropped_and_its_retry_refused_is_indeterminate():
    # the first attempt reached the server (it may have applied it); the retry found no server at all
    server = ScriptedServer(["drop", "refuse"])
    done = retrying_ops(server, 2).incr("k", 1)
    assert server.requests == 1
    assert (done.outcome, done.attempts) == (IND, 2), done
    assert "2 attempts" in (done.error or "")


def test_a_throttled_attempt_then_success_is_ok_exactly_once():
    # a throttled attempt proves nothing was applied: the one success is the only application
    server = ScriptedServer([THROTTLED, OK_ANSWER])
    done = retrying_ops(server, 2).incr("k", 1)
    assert (done.outcome, done.value, done.attempts) == (OK, 7, 2), done


def test_a_dropped_attempt_then_success_is_indeterminate():
    server = ScriptedServer(["drop", OK_ANSWER])
    done = retrying_ops(server, 2).incr("k", 1)
    assert (done.outcome, done.attempts) == (IND, 2), done


def test_a_server_error_then_a_refusal_is_indeterminate():
    server = ScriptedServer([(500, {"__type": "InternalServerError", "message": "x"}), THROTTLED])
    done = retrying_ops(server, 2).incr("k", 1)
    assert (done.outcome, done.attempts) == (IND, 2), done
