"""A plain ASGI app implementing the reference HTTP counter contract.

    PUT  /counters/{key}                        {"value": int}  -> 200 {"value": int}
    POST /counters/{key}/increment              {"amount": int} -> 200 {"value": int after}
    POST /counters/{key}/decrement-if-positive  (no body)       -> 200 {"value": int after} | 409 sold out
    GET  /counters/{key}                                         -> 200 {"value": int} | 404

With an ``Idempotency-Key`` header (the IETF Idempotency-Key draft), an increment or a reservation
is applied once per key: a repeat of a key whose first request is done gets the first answer again
(``Idempotent-Replayed: true``) without being applied again; a repeat while the first is still
being processed gets 409 "in progress" (neither a second application nor a wait). A first request
whose op did not apply (sold out, a store error before applying) leaves the key free for a retry.
After a run, a client asks whether a key's op was applied:

    POST /idempotency/{token}/resolve                            -> 200 {"value": int} | 404 not applied

and "not applied" is final: the key is fenced -- also a key whose op is still in progress, which
can then no longer apply -- and an op arriving with it later answers 409. Keys are kept for the
life of the store's data. Each 409 says which it is: sold out, in progress, or fenced.

Bad keys or bodies get 400 with a JSON error, never a 500; a store that fails
answers 503 (the client cannot know whether the update was applied).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from harness.service.stores import Fenced, InProgress, NotSupported, SoldOut, Store

KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
ROUTE = re.compile(r"^/counters/([^/]+)(/increment|/decrement-if-positive)?$")
RESOLVE = re.compile(r"^/idempotency/([^/]+)/resolve$")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

log = logging.getLogger("counterbench.service")


async def read_body(receive: Receive) -> bytes:
    """The whole request body of an ASGI HTTP request."""
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(chunks)


async def _reply(send: Send, status: int, doc: dict[str, Any], *, replayed: bool = False) -> None:
    payload = json.dumps(doc).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _int_field(raw: bytes, name: str) -> int:
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise ValueError("the body is not JSON") from e
    value = doc.get(name) if isinstance(doc, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"the body needs an integer {name!r}")
    if abs(value) > 2**62:
        raise ValueError(f"{name!r} is out of range")
    return value


def make_app(store: Store) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    try:
                        await store.start()
                    except Exception as e:
                        await send({"type": "lifespan.startup.failed", "message": f"store: {e}"})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await store.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/health":
            await _reply(send, 200, {"status": "ok"})
            return
        resolving = RESOLVE.match(path)
        m = ROUTE.match(path)
        if m is None and resolving is None:
            await _reply(send, 404, {"error": "no such route"})
            return
        key, action = (m.group(1), m.group(2)) if m else (resolving.group(1), "resolve")  # type: ignore[union-attr]
        token = next((v.decode() for k, v in scope["headers"] if k.lower() == b"idempotency-key"), None)
        if not KEY.match(key) or (token is not None and not KEY.match(token)):
            await _reply(send, 400, {"error": "keys are 1-200 of A-Z a-z 0-9 _ . : -"})
            return
        raw = await read_body(receive)
        replayed = False
        try:
            if action is None and method == "GET":
                value = await store.get(key)
                if value is None:
                    await _reply(send, 404, {"error": "no such counter"})
                    return
            elif action is None and method == "PUT":
                value = await store.set(key, _int_field(raw, "value"))
            elif action == "/increment" and method == "POST":
                if token is None:
                    value = await store.add(key, _int_field(raw, "amount"))
                else:
                    value, replayed = await store.add_once(key, _int_field(raw, "amount"), token)
            elif action == "/decrement-if-positive" and method == "POST":
                if token is None:
                    value = await store.take(key)
                else:
                    value, replayed = await store.take_once(key, token)
            elif action == "resolve" and method == "POST":
                found = await store.resolve(key)
                if found is None:
                    await _reply(send, 404, {"error": "not applied (and now never will be)"})
                    return
                value = found
            else:
                await _reply(send, 405, {"error": "method not allowed"})
                return
        except ValueError as e:
            await _reply(send, 400, {"error": str(e)})
            return
        except SoldOut:
            await _reply(send, 409, {"error": "sold out"})
            return
        except Fenced:
            await _reply(send, 409, {"error": "this idempotency key was resolved as not applied"})
            return
        except InProgress:  # the draft's rule: a concurrent repeat is refused, not applied and not made to wait
            await _reply(send, 409, {"error": "a request with this idempotency key is still in progress"})
            return
        except NotSupported as e:
            await _reply(send, 501, {"error": str(e)})
            return
        except Exception as e:  # the store failed: the update may or may not have happened
            log.warning("store error: %s: %s", type(e).__name__, e)
            await _reply(send, 503, {"error": f"store error: {type(e).__name__}"})
            return
        await _reply(send, 200, {"value": value}, replayed=replayed)

    return app
