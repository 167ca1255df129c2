"""The apigateway target: POST to a stage URL whose integration calls DynamoDB.

The answer is the plain number the seed article's response template produces.
A 200 without a number (API Gateway's answer to an unmapped DynamoDB error) is
indeterminate, never ok. Setup and final reads go to DynamoDB directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from harness.classify import HTTP_RULES, BadReply, classify_exception, classify_http_status
from harness.config import ApiGatewayTarget, ValueSpec
from harness.ops import Completion
from harness.targets.http import HttpCodec, Transport

PLAIN = ValueSpec(plain=True)

# (method, url, body, headers) -> headers with SigV4 added
Signer = Callable[[str, str, bytes, Mapping[str, str]], dict[str, str]]


def sigv4_signer(region: str) -> Signer:
    """Sign for execute-api with the standard AWS credential chain (IAM-authorised APIs)."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    creds = botocore.session.get_session().get_credentials()
    if creds is None:
        from harness.errors import ConfigError

        raise ConfigError("sigv4: no AWS credentials in the standard chain (environment, profile, role)")

    def sign(method: str, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(creds.get_frozen_credentials(), "execute-api", region).add_auth(req)
        return dict(req.headers.items())

    return sign


class ApiGatewayOps:
    def __init__(self, target: ApiGatewayTarget, base_url: str, transport: Transport,
                 signer: Signer | None = None) -> None:
        self._t = target
        self._send = transport
        self._url = base_url.rstrip("/") + target.path
        self._path = urlsplit(self._url).path
        self._sign = signer
        self._headers = {"Content-Type": "application/json"}
        if target.api_key_env:
            self._headers["x-api-key"] = os.environ.get(target.api_key_env, "")

    def _post(self) -> Completion:
        body = b"{}"
        headers = self._sign("POST", self._url, body, self._headers) if self._sign else self._headers
        try:
            status, resp_headers, answer = self._send("POST", self._path, body, headers)
        except Exception as e:
            return classify_exception(e, HTTP_RULES)
        by_status = classify_http_status(status, self._t.fail_statuses)
        if by_status is not None:
            return by_status
        try:
            return Completion.ok(HttpCodec.value(PLAIN, resp_headers, answer))
        except BadReply as e:
            return classify_exception(e, HTTP_RULES)

    def incr(self, key: str, amount: int) -> Completion:
        # the method's template fixes the item and the amount (+1); key and amount are for the history
        return self._post()

    def decr_if_positive(self, key: str) -> Completion:
        return self._post()

    def close(self) -> None:
        pass
