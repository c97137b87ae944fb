"""`POST /api/v1/keys/verify` under `gateway serve`, answered in front of the Litestar app.

Every inference call verifies a key, and Litestar's routing, middleware and response
machinery cost more than the verification itself: answered here, a worker verifies about
two thirds more keys a second (BENCHMARKS.md, "Key verification").

Rules:
- Only the plain request is answered here: POST to exactly the path, no query string, a
  JSON body (or no content type) within REQUEST_BODY's size and depth, holding no NUL.
  Every other request goes to the app unchanged, its body included, where the route of
  the same path (ApiAccessController.verify) answers it with all of its middleware.
- The answer is that route's (`verification`), and so is every error: the app's own
  exception handlers answer it, with the same body, headers and metrics.
- What the app adds to every answer is added here too: its before-send hooks (the
  security headers) and the request metrics of the route.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from litestar import Litestar, Request
from litestar.enums import ScopeType
from litestar.types import (
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from gateway.api_access.api import verification
from gateway.jsonlimits import REQUEST_BODY, nests_deeper
from gateway.metrics.middleware import observe

ROUTE = "/api/v1/keys/verify"
_JSON_TYPES = (b"", b"application/json")


class VerifyInFront:
    """The ASGI app `gateway serve` runs: this path's plain requests, then `app`."""

    def __init__(self, app: Litestar) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _plain(scope):
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        body, more = await _read(receive, REQUEST_BODY.max_bytes)
        if body is None:
            return  # the client went away before it had sent its request
        if more or len(body) > REQUEST_BODY.max_bytes or not _clean(body):
            await self.app(scope, _replay(body, receive, more=more), send)
            return
        app = self.app
        scope["app"] = scope["litestar_app"] = app
        scope.setdefault("state", {})
        status: int | None = None

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            for hook in app.before_send:
                await hook(message, scope)
            await send(message)

        request: Request[Any, Any, Any] = Request(scope)
        try:
            try:
                code, headers, answer = await verification(request, body)
            except Exception as exc:  # answered by the app's own handler, as on its route
                handler = _handler_for(app, exc)
                if handler is None:
                    raise
                response = handler(request, exc).to_asgi_response(None, request)
                await response(scope, _replay(body, receive, more=False), sending)
                return
            raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
            raw += [(name.encode(), value.encode()) for name, value in headers.items()]
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": code,
                "headers": raw,
            }
            await sending(start)
            ending: HTTPResponseBodyEvent = {
                "type": "http.response.body",
                "body": answer,
                "more_body": False,
            }
            await sending(ending)
        finally:
            observe(app.state.runtime, ROUTE, status, started)


def _plain(scope: Scope) -> bool:
    if scope["type"] != ScopeType.HTTP or scope["path"] != ROUTE or scope["method"] != "POST":
        return False
    if scope["query_string"]:
        return False
    kind = next((v for n, v in scope["headers"] if n.lower() == b"content-type"), b"")
    return kind.split(b";", 1)[0].strip().lower() in _JSON_TYPES


def _clean(body: bytes) -> bool:
    return (
        b"\x00" not in body
        and b"\\u0000" not in body
        and not nests_deeper(body, REQUEST_BODY.max_depth)
    )


async def _read(receive: Receive, limit: int) -> tuple[bytes | None, bool]:
    """The body as far as read, and whether the client has more of it to send (reading
    stops once it is past `limit`); None if the client went away first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
        if size > limit or not more:
            return b"".join(chunks), more


def _replay(body: bytes, receive: Receive, *, more: bool) -> Receive:
    """A receive that gives `body` first, then (when `more`) what `receive` still has."""
    sent = False

    async def replayed() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed


Handler = Callable[[Request[Any, Any, Any], Exception], Any]


def _handler_for(app: Litestar, exc: Exception) -> Handler | None:
    """The app's exception handler for `exc`: the one of its nearest class."""
    handlers: dict[Any, Any] = dict(app.exception_handlers)
    for kind in type(exc).__mro__:
        if kind in handlers:
            found: Handler = handlers[kind]
            return found
    return None
