"""Execute a REST API definition the way API Gateway does, against a DynamoDB endpoint.

Per request: throttle (token bucket, 429) -> route (unknown: 403, as API Gateway
answers) -> render the request template -> a SigV4-signed DynamoDB call -> pick
the integration response whose selection pattern matches the integration's
status (else the default) -> render its template -> that status and body.
Template failures answer 500, an integration that cannot be reached 500, one
that times out 504 -- API Gateway's own answers.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from harness.stack.apigateway.definition import ApiDefinition, Throttle
from harness.stack.apigateway.vtl import Input, TemplateError, render

# (action, request payload) -> (status, body)
Integration = Callable[[str, bytes], tuple[int, bytes]]
Reply = tuple[int, dict[str, str], bytes]


class IntegrationTimeout(Exception):
    pass


class TokenBucket:
    def __init__(self, throttle: Throttle) -> None:
        self._rate, self._burst = throttle.rate, float(throttle.burst)
        self._tokens = self._burst
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


def _message(status: int, text: str) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps({"message": text}).encode()


class Emulator:
    def __init__(self, api: ApiDefinition, *, integration: Integration, stage: str = "prod") -> None:
        self.api = api
        self._call = integration
        self._prefix = f"/{stage}"
        self._bucket = TokenBucket(api.throttle) if api.throttle else None

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        request_id = str(uuid.uuid4())
        if self._bucket is not None and not self._bucket.take():
            return _message(429, "Too Many Requests")
        url = urlsplit(target)
        resource = url.path.removeprefix(self._prefix) if url.path.startswith(self._prefix + "/") else None
        m = self.api.resources.get(resource or "", {}).get(method)  # type: ignore[call-overload]
        if m is None:
            return _message(403, "Missing Authentication Token")
        context = {"requestId": request_id, "stage": self._prefix[1:], "resourcePath": resource,
                   "httpMethod": method}
        params = {"path": {}, "querystring": dict(parse_qsl(url.query)), "header": dict(headers)}
        try:
            payload = render(m.request_template_text, input=Input(body, params), context=context)
        except TemplateError:
            return _message(500, "Internal server error")
        try:
            status, answer = self._call(m.action, payload.encode())
        except IntegrationTimeout:
            return _message(504, "Endpoint request timed out")
        except OSError:
            return _message(500, "Internal server error")
        chosen = m.select(status)
        try:
            out = render(chosen.template_text, input=Input(answer), context=context)
        except TemplateError:
            return _message(500, "Internal server error")
        return chosen.status, {"Content-Type": "application/json", "x-amzn-RequestId": request_id}, out.encode()


class DynamoDBIntegration:
    """Signed DynamoDB JSON calls over a keep-alive connection per server thread."""

    def __init__(self, endpoint: str, *, region: str, timeout: float = 29.0) -> None:
        parts = urlsplit(endpoint)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._endpoint = endpoint.rstrip("/") + "/"
        self._region = region
        self._timeout = timeout  # API Gateway's integration timeout
        self._local = threading.local()

    def _signed_headers(self, action: str, payload: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"DynamoDB_20120810.{action}"}
        # the emulator only talks to a local endpoint, which checks no signature: never probe the AWS chain
        creds = Credentials("counterbench", "counterbench")
        req = AWSRequest(method="POST", url=self._endpoint, data=payload, headers=headers)
        SigV4Auth(creds, "dynamodb", self._region).add_auth(req)
        return dict(req.headers.items())

    def __call__(self, action: str, payload: bytes) -> tuple[int, bytes]:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            conn.request("POST", "/", body=payload, headers=self._signed_headers(action, payload))
            resp = conn.getresponse()
            return resp.status, resp.read()
        except TimeoutError as e:
            conn.close()
            self._local.conn = None
            raise IntegrationTimeout from e
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            self._local.conn = None
            raise OSError(str(e)) from e


def make_server(emulator: Emulator, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as clients of API Gateway expect

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, out = emulator.handle(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # socketserver's default backlog of 5 drops SYNs when many users connect at once: each
        # dropped SYN costs a client a 1 s retransmit, which would show up as emulator latency
        request_queue_size = 1024

    return Server((host, port), Handler)
