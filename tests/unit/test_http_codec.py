"""Describing any HTTP counter service: requests built, values read, answers classified."""

from __future__ import annotations

import pytest

from harness.core.ops import Outcome
from harness.targets.classify import BadReply
from harness.targets.http import HttpCall, HttpCodec, HttpContract, ValueSpec

REF = HttpCodec(HttpContract())


def test_reference_increment_request():
    req = REF.build(REF.contract.increment, key="cb:r1:counter", amount=7)
    assert (req.method, req.path, req.body) == ("POST", "/counters/cb:r1:counter/increment", b'{"amount": 7}')
    assert req.headers["Content-Type"] == "application/json"


def test_reference_set_request_has_the_value():
    req = REF.build(REF.contract.set, key="k", value=2000)
    assert (req.method, req.path, req.body) == ("PUT", "/counters/k", b'{"value": 2000}')


def test_keys_are_url_quoted():
    assert REF.build(REF.contract.read, key="a b/c").path == "/counters/a%20b%2Fc"


@pytest.mark.parametrize(("spec", "headers", "body", "value"), [
    (ValueSpec(json_pointer="/value"), {}, b'{"value": 42}', 42),
    (ValueSpec(json_pointer="/data/counter/0"), {}, b'{"data": {"counter": [7, 1]}}', 7),
    (ValueSpec(json_pointer="/value"), {}, b'{"value": "42"}', 42),
    (ValueSpec(plain=True), {}, b" 41\n", 41),
    (ValueSpec(regex=r"count=(\d+)"), {}, b"ok count=9 done", 9),
    (ValueSpec(header="X-Counter"), {"x-counter": "12"}, b"", 12),
])
def test_value_extraction(spec, headers, body, value):
    assert HttpCodec.value(spec, headers, body) == value


@pytest.mark.parametrize(("spec", "body"), [
    (ValueSpec(json_pointer="/value"), b"<html>oops</html>"),
    (ValueSpec(json_pointer="/value"), b'{"value": true}'),
    (ValueSpec(json_pointer="/value"), b'{"value": 1.5}'),
    (ValueSpec(json_pointer="/value"), b'{"other": 1}'),
    (ValueSpec(plain=True), b""),
    (ValueSpec(regex=r"count=(\d+)"), b"nothing"),
    (ValueSpec(header="X-Counter"), b"1"),
])
def test_garbage_is_a_bad_reply(spec, body):
    with pytest.raises(BadReply):
        HttpCodec.value(spec, {}, body)


def test_completion_by_status_and_body():
    call = REF.contract.increment
    assert REF.completion(call, 200, {}, b'{"value": 3}').value == 3
    assert REF.completion(call, 200, {}, b"garbage").outcome is Outcome.INDETERMINATE
    assert REF.completion(call, 409, {}, b"sold out").outcome is Outcome.FAIL
    assert REF.completion(call, 503, {}, b"").outcome is Outcome.INDETERMINATE


def test_value_spec_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        ValueSpec(json_pointer="/v", plain=True)
    with pytest.raises(ValueError, match="group"):
        ValueSpec(regex=r"\d+")


def test_custom_contract():
    contract = HttpContract(
        increment=HttpCall(method="POST", path="/api/v2/{key}:add", body="n={amount}",
                           content_type="text/plain", value=ValueSpec(plain=True)),
        fail_statuses=(410,),
    )
    codec = HttpCodec(contract)
    req = codec.build(contract.increment, key="seats", amount=2)
    assert (req.path, req.body, req.headers["Content-Type"]) == ("/api/v2/seats:add", b"n=2", "text/plain")
    assert codec.completion(contract.increment, 410, {}, b"").outcome is Outcome.FAIL
    assert codec.completion(contract.increment, 409, {}, b"").outcome is Outcome.INDETERMINATE


def test_a_base_url_with_a_path_and_query_reaches_every_request():
    from harness.targets.http import BaseUrl

    base = BaseUrl.parse("http://u:p%40ss@127.0.0.1:8080/api/?api_key=k1")
    assert base.origin == "http://127.0.0.1:8080"
    assert base.path("/counters/a/increment") == "/api/counters/a/increment?api_key=k1"
    assert base.path("/c/a:incr?by=5") == "/api/c/a:incr?by=5&api_key=k1"  # the call's own query first
    assert base.headers({"X": "1"}) == {"X": "1", "Authorization": "Basic dTpwQHNz"}  # u:p@ss
    assert base.headers({"authorization": "Bearer t"}) == {"authorization": "Bearer t"}  # the contract's own wins
    plain = BaseUrl.parse("http://127.0.0.1:8080")
    assert plain.path("/counters/a") == "/counters/a" and plain.headers({}) == {}
