"""Refuse malformed requests before any handler, dependency or file lookup sees them.

Rules of this middleware:
- A NUL character is never part of a name the gateway serves: a path holding one is
  answered 404 on every route (pages, API, /d/, static files), as no such thing exists.
  PostgreSQL cannot store NUL in text and the file system cannot name it, so letting it
  through would answer 500 from deep inside.
- A NUL in the query string or a JSON body is refused with 400 (form fields are cleaned
  one by one by gateway.text, each with a message that names its field).
- A JSON body is held to `jsonlimits.REQUEST_BODY` (size and depth) before it is parsed.
  Every body that is not a form is read as JSON by the handlers, whatever its type says.
- The body read here is the one handlers get: Litestar keeps it on the connection.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from gateway.errors import InvalidInput, NotFound
from gateway.jsonlimits import REQUEST_BODY, JsonRefused, check_json

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


class RequestGuard(ASGIMiddleware):
    """The checks in the module docstring, for every HTTP request."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if "\x00" in scope["path"]:
            raise NotFound("nothing at this address (it holds a NUL character)")
        if b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]:
            raise InvalidInput("the query string holds a NUL character", code="invalid_request")
        if scope["type"] == ScopeType.HTTP and scope["method"] in _WITH_BODY:
            await _check_body(Request(scope, receive))
        await next_app(scope, receive, send)


def _content_type(scope: Scope) -> str:
    # From the raw headers: building the request's header mapping costs more than this.
    for name, value in scope["headers"]:
        if name.lower() == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


async def _check_body(request: Request[Any, Any, Any]) -> None:
    kind = _content_type(request.scope)
    if kind == _MULTIPART:
        return  # files are bytes, not text; their fields are read by the form parser
    body = await request.body()
    if not body:
        return
    if kind == _FORM:
        return  # every form field is cleaned by gateway.text, with a message for its field
    try:
        check_json(body, REQUEST_BODY)
    except JsonRefused as exc:
        raise InvalidInput(str(exc), code="invalid_request") from exc
    if b"\\u0000" in body or b"\x00" in body:
        raise InvalidInput("the request body holds a NUL character", code="invalid_request")
