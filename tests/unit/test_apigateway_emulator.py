"""The emulator renders the article's templates to exactly what API Gateway sends and returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.stack.apigateway.definition import load_definition
from harness.stack.apigateway.emulator import Emulator, IntegrationTimeout
from harness.stack.apigateway.vtl import Input, TemplateError, render

ROOT = Path(__file__).resolve().parents[2]
API = load_definition(ROOT / "apigateway" / "counter-api.yaml")
RESPONSE = (ROOT / "apigateway" / "article-response.vtl").read_text()
CONDITION_FAILED = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                               "message": "The conditional request failed"}).encode()


class FakeDynamo:
    """Stands in for the integration in these pure tests (dynalite serves the integration tests)."""

    def __init__(self, status: int = 200, body: bytes = b"{}", error: Exception | None = None) -> None:
        self.status, self.body, self.error = status, body, error
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, action: str, payload: bytes) -> tuple[int, bytes]:
        self.calls.append((action, json.loads(payload)))
        if self.error:
            raise self.error
        return self.status, self.body


def emulator(fake: FakeDynamo, api=API) -> Emulator:
    return Emulator(api, integration=fake, stage="prod")


def test_the_article_request_is_sent_as_written():
    fake = FakeDynamo(body=b'{"Attributes": {"counterValue": {"N": "41"}}}')
    emulator(fake).handle("POST", "/prod/counter", {}, b"{}")
    action, payload = fake.calls[0]
    assert action == "UpdateItem"
    assert payload == {
        "TableName": "donation-data",
        "Key": {"context": {"S": "atomicCounter"}, "id": {"S": "id"}},
        "UpdateExpression": "set counterValue = counterValue + :num",
        "ExpressionAttributeValues": {":num": {"N": "1"}},
        "ReturnValues": "UPDATED_OLD",
    }


def test_the_article_response_strips_the_quotes_of_the_number():
    fake = FakeDynamo(body=b'{"Attributes": {"counterValue": {"N": "41"}}}')
    status, headers, body = emulator(fake).handle("POST", "/prod/counter", {}, b"{}")
    assert (status, body.strip()) == (200, b"41")
    assert headers["Content-Type"] == "application/json"


def test_input_json_quotes_strings_and_path_returns_objects():
    doc = b'{"Attributes": {"counterValue": {"N": "7"}}, "list": [1, 2]}'
    assert render("$input.json('Attributes.counterValue.N')", input=Input(doc), context={}) == '"7"'
    assert render("$input.json('$.Attributes.counterValue')", input=Input(doc), context={}) == '{"N": "7"}'
    assert render("$input.path('$.Attributes.counterValue').N", input=Input(doc), context={}) == "7"
    assert render("$input.json('$.list[1]')", input=Input(doc), context={}) == "2"
    assert render("$util.escapeJavaScript($input.body)", input=Input(b'{"a":"b"}'), context={}) == '{\\"a\\":\\"b\\"}'


def test_unresolved_references_are_errors_not_literal_text():
    with pytest.raises(TemplateError, match="unresolved"):
        render("$input.noSuchMethod()", input=Input(b"{}"), context={})


def test_java_substring_bounds():
    with pytest.raises(TemplateError, match="StringIndexOutOfBounds"):
        render("$input.body.substring(2, 1)", input=Input(b"abc"), context={})


def test_mapped_condition_failure_is_409():
    fake = FakeDynamo(status=400, body=CONDITION_FAILED)
    status, _, body = emulator(fake).handle("POST", "/prod/seats", {}, b"{}")
    assert status == 409 and json.loads(body) == {"message": "sold out"}


def test_unmapped_condition_failure_reaches_the_client_as_200_with_no_value():
    # API Gateway's trap: the default (200) integration response renders the error body
    fake = FakeDynamo(status=400, body=CONDITION_FAILED)
    status, _, body = emulator(fake).handle("POST", "/prod/seats-unmapped", {}, b"{}")
    assert (status, body.strip()) == (200, b"")


def test_seats_answer_the_value_after():
    fake = FakeDynamo(body=b'{"Attributes": {"seatsLeft": {"N": "9"}}}')
    status, _, body = emulator(fake).handle("POST", "/prod/seats", {}, b"{}")
    assert (status, body.strip()) == (200, b"9")
    assert fake.calls[0][1]["ConditionExpression"] == "seatsLeft > :zero"


def test_unknown_route_or_method_is_403_as_api_gateway_answers():
    fake = FakeDynamo()
    assert emulator(fake).handle("POST", "/prod/nope", {}, b"")[0] == 403
    assert emulator(fake).handle("GET", "/prod/counter", {}, b"")[0] == 403
    assert emulator(fake).handle("POST", "/counter", {}, b"")[0] == 403
    assert fake.calls == []


def test_integration_failures():
    assert emulator(FakeDynamo(error=ConnectionRefusedError())).handle("POST", "/prod/counter", {}, b"")[0] == 500
    assert emulator(FakeDynamo(error=IntegrationTimeout())).handle("POST", "/prod/counter", {}, b"")[0] == 504
    # a DynamoDB 500 reaches the default response: the template finds no value, still a 200
    status, _, body = emulator(FakeDynamo(status=500, body=b'{"__type": "InternalServerError"}')).handle(
        "POST", "/prod/counter", {}, b"")
    assert (status, body.strip()) == (200, b"")


def test_throttle_answers_429_beyond_the_burst():
    from harness.stack.apigateway.definition import Throttle

    api = API.model_copy(update={"throttle": Throttle(rate=0.001, burst=3)})
    e = emulator(FakeDynamo(body=b'{"Attributes": {"counterValue": {"N": "1"}}}'), api)
    statuses = [e.handle("POST", "/prod/counter", {}, b"{}")[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_definition_errors_name_file_and_line(tmp_path):
    from harness.core.errors import ConfigError

    bad = tmp_path / "api.yaml"
    bad.write_text("schema_version: 1\nname: x\ntable: {name: t, key: [k]}\nresources:\n  /c:\n    POST:\n"
                   "      action: UpdateItem\n      request_template: r.vtl\n      responses: []\n")
    with pytest.raises(ConfigError, match=r"api.yaml:\d+: resources./c.POST"):
        load_definition(bad)
