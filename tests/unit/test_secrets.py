"""Credentials are removed by structure and by value, wherever counterbench writes."""

from __future__ import annotations

import pytest

from harness.core import secrets
from harness.core.secrets import REDACTED, clean, redact, redact_url, register_run, scrub


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.setattr(secrets, "_known", set())


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://user:s3cret@127.0.0.1:6380/2", "redis://127.0.0.1:6380/2"),
    ("redis://:s3cret@127.0.0.1:6380/2", "redis://127.0.0.1:6380/2"),
    ("http://127.0.0.1:80/x", "http://127.0.0.1:80/x"),
    ("http://127.0.0.1:8080/base?api_key=s3cret&region=eu", "http://127.0.0.1:8080/base?api_key=***&region=***"),
    ("https://u:p%40ss@[::1]:9000/p?t=1#frag", "https://[::1]:9000/p?t=***#frag"),
])
def test_a_url_loses_its_user_password_and_query_values(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize("name", ["password", "db_password", "passwd", "token", "x-api-key", "api_key", "ApiKey",
                                  "access_key", "aws_secret_access_key", "Authorization", "Cookie", "secret"])
def test_fields_named_like_credentials_are_redacted(name):
    assert redact({"outer": {name: "value-1"}}) == {"outer": {name: REDACTED}}


@pytest.mark.parametrize("name", ["key", "partition_key", "keys", "path", "compass", "api_key_env", "table"])
def test_fields_that_only_look_close_are_kept(name):
    assert redact({name: "value-1"}) == {name: "value-1"}


def test_every_header_value_is_redacted_and_urls_inside_documents_too():
    doc = {"target": {"url": "http://a:b@127.0.0.1/", "contract": {"headers": {"X-Custom": "v", "Accept": "x/y"}}}}
    assert redact(doc) == {"target": {"url": "http://127.0.0.1/",
                                      "contract": {"headers": {"X-Custom": REDACTED, "Accept": REDACTED}}}}


def test_query_values_in_path_templates_are_redacted_but_placeholders_kept():
    doc = {"increment": {"path": "/c/{key}:incr?by={amount}&token=abc123"}}
    assert redact(doc) == {"increment": {"path": "/c/{key}:incr?by={amount}&token=***"}}


def test_registered_values_are_scrubbed_from_any_text(monkeypatch):
    monkeypatch.setenv("REDISCLI_AUTH", "redis-pass-1")
    monkeypatch.setenv("MY_KEY_VAR", "api-key-from-env")
    scenario = {"target": {"kind": "http", "api_key_env": "MY_KEY_VAR",
                           "contract": {"headers": {"X-Api-Key": "hdr-secret-1", "Accept": "application/json"}}}}
    register_run(scenario, "http://me:url%2Fpass@127.0.0.1:1/?api_key=query-secret-1")
    text = ("connect to http://me:url%2Fpass@127.0.0.1:1/ failed (url/pass); hdr-secret-1 query-secret-1 "
            "redis-pass-1 api-key-from-env application/json")
    out = scrub(text)
    for s in ("url%2Fpass", "url/pass", "hdr-secret-1", "query-secret-1", "redis-pass-1", "api-key-from-env"):
        assert s not in out
    assert "application/json" in out  # a plain header's value is not a secret to scrub everywhere


def test_clean_applies_both_rules_to_documents_and_text():
    register_run({}, "redis://:pw-value@127.0.0.1:1/0")
    assert clean({"error": "AUTH pw-value refused"}) == {"error": f"AUTH {REDACTED} refused"}
    assert clean("AUTH pw-value refused") == f"AUTH {REDACTED} refused"


def test_short_values_are_not_scrubbed_by_value():
    register_run({}, "http://u:ab@127.0.0.1/")
    assert scrub("table ab") == "table ab"
    assert redact_url("http://u:ab@127.0.0.1/") == "http://127.0.0.1/"
