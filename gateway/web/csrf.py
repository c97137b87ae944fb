"""CSRF tokens bound to the server-side session.

Rules of this module:
- The token lives in the session, on the server; no cookie carries it. A form is accepted
  only with the token of the very session the browser sends, so a token minted for
  someone else's session (an attacker's, planted with a cookie of their own) is refused.
- A safe request (GET, HEAD, OPTIONS) gets the session's token for its forms, and a new
  one when the session has none; a new one is kept only when the answer is a page that
  can hold a form (HTML; an error page only for a session that holds something), so a
  crawler's requests for missing pages store nothing.
- A sign-in starts a new session, hence a new token.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from litestar.connection import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

SESSION_CSRF = "csrf"
HEADER = "x-csrftoken"
FIELD = "_csrf_token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class SessionCsrfMiddleware(ASGIMiddleware):
    """Refuses unsafe requests without the session's token; hands safe ones the token."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, *, skip: Callable[[Scope], bool]) -> None:
        self.should_bypass_for_scope = skip

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        session = scope.get("session")
        stored = session.get(SESSION_CSRF) if isinstance(session, dict) else None
        expected = stored if isinstance(stored, str) and stored else None
        state = ScopeState.from_scope(scope)
        if scope.get("method") in _SAFE:
            if expected is not None:
                state.csrf_token = expected
                await next_app(scope, receive, send)
                return
            token = secrets.token_urlsafe(32)
            state.csrf_token = token
            await next_app(scope, receive, _keeping(scope, send, token))
            return
        submitted = await _submitted(scope, receive)
        if (
            expected is None
            or submitted is None
            or not secrets.compare_digest(submitted.encode(), expected.encode())
        ):
            raise PermissionDeniedException("CSRF token verification failed")
        state.csrf_token = expected
        await next_app(scope, receive, send)


async def _submitted(scope: Scope, receive: Receive) -> str | None:
    request: Request[Any, Any, Any] = scope["litestar_app"].request_class(scope, receive)
    header = request.headers.get(HEADER)
    if header:
        return header
    content_type, _ = request.content_type
    if content_type in {RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART}:
        # The parsed form is cached on the connection, so the handler reads it again.
        value = (await request.form()).get(FIELD)
        return value if isinstance(value, str) else None
    return None


def _keeping(scope: Scope, send: Send, token: str) -> Send:
    """Send, keeping `token` in the session if the answer is a page that may hold a form."""

    async def send_keeping(message: Message) -> None:
        session = scope.get("session")
        if message["type"] == "http.response.start" and isinstance(session, dict):
            headers = MutableScopeHeaders.from_message(message)
            html = (headers.get("content-type") or "").startswith("text/html")
            # An error page holds a form only for a session that holds something already
            # (the sign-out button of a signed-in visitor).
            wanted = html and (bool(session) or message["status"] < 400)
            if wanted and SESSION_CSRF not in session:
                scope["session"] = {**session, SESSION_CSRF: token}
        await send(message)

    return send_keeping
