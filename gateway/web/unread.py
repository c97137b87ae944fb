"""The unread count in the page header: one COUNT query per page a signed-in person opens.

It runs before the handler, on its own short read (closed before the handler's session
opens), and only for requests that ask for HTML with a signed-in session: API calls,
downloads and static files carry no session and cost nothing.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from gateway.notify.service import unread
from gateway.runtime import Runtime
from gateway.web.session import SESSION_ACCOUNT


async def count_unread(request: Request[Any, Any, Any]) -> None:
    """Put the signed-in account's unread count in `request.state.unread` for the header."""
    session = request.scope.get("session")
    account_id = session.get(SESSION_ACCOUNT) if isinstance(session, dict) else None
    if not isinstance(account_id, str) or "text/html" not in request.headers.get("accept", ""):
        return
    rt: Runtime = request.app.state.runtime
    async with rt.unit() as uow:
        request.state.unread = await unread(uow, account_id)
