"""Pages that carry a secret are neither cached nor referred.

A page reached through a one-time link (its token is in the address), or one that shows
a secret (a new API key, signed download URLs), is marked with `opt=SECRET_PAGE` on its
handler or controller. One middleware gives every marked answer, errors included,
`Cache-Control: no-store` (no browser or proxy keeps a copy) and `Referrer-Policy:
no-referrer` (the address, token and all, is never sent on to another site).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_KEY: Final = "secret_page"
SECRET_PAGE: Final[Mapping[str, Any]] = {_KEY: True}
SECRET_HEADERS: Final[Mapping[str, str]] = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
}


def is_secret_page(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return bool(handler is not None and handler.opt.get(_KEY))


class SecretPageHeaders(ASGIMiddleware):
    """Adds SECRET_HEADERS to every answer of a handler marked SECRET_PAGE."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not is_secret_page(scope):
            await next_app(scope, receive, send)
            return

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECRET_HEADERS.items():
                    headers[name] = value
            await send(message)

        await next_app(scope, receive, send_private)
