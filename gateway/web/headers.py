"""Browser security headers, added to every answer at the one point all answers pass.

Rules:
* Every HTML answer carries a Content-Security-Policy that allows scripts, styles and
  connections from the gateway's own origin only (no inline script, no `eval`, no
  plugins), and may not be framed (`frame-ancestors 'none'` and `X-Frame-Options: DENY`
  for browsers that predate CSP).
* Every answer carries `X-Content-Type-Options: nosniff`, so a browser never runs a
  downloaded artifact or a JSON body as a script or a page.
* `Referrer-Policy` defaults to strict-origin-when-cross-origin; an answer that set its
  own (a page that shows a secret says no-referrer) keeps it.
* `Strict-Transport-Security` is sent only when the public URL is https: over plain HTTP
  browsers ignore it, and a gateway on a lab's http address must not promise https.

The hook runs on `http.response.start`, so it covers answers of route handlers, error
handlers and the router's own 404s alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.types import Message, Scope

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Swagger UI's stylesheet draws its icons as data: SVG images.
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
REFERRER_POLICY = "strict-origin-when-cross-origin"
HSTS = "max-age=31536000; includeSubDomains"

_HTML_ONLY = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
)

SendHook = Callable[[Message, Scope], Awaitable[None]]


def security_headers(*, https: bool) -> SendHook:
    """The `before_send` hook that adds the headers above; HSTS only when `https`."""
    always: list[tuple[bytes, bytes]] = [(b"x-content-type-options", b"nosniff")]
    if https:
        always.append((b"strict-transport-security", HSTS.encode()))

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        raw: Any = message.setdefault("headers", [])
        headers: list[tuple[bytes, bytes]] = list(raw)
        present = {name.lower() for name, _ in headers}
        extra = [(name, value) for name, value in always if name not in present]
        content_type = next(
            (value for name, value in headers if name.lower() == b"content-type"), b""
        )
        if content_type.lower().startswith(b"text/html"):
            extra += [(name, value) for name, value in _HTML_ONLY if name not in present]
            if b"referrer-policy" not in present:
                extra.append((b"referrer-policy", REFERRER_POLICY.encode()))
        message["headers"] = [*headers, *extra]

    return add_headers
