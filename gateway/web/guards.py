"""Who may open a page: Litestar guards for a signed-in account and for an operator.

Rules of this module:
- A guarded page is checked before anything of the request is read: its form, its query,
  its database work. The check reads the account from the database (the session keeps
  only its id; the email and role in it are for the page header), once per request, in a
  short read of its own that is over before the handler starts.
- Nobody signed in (or the session's account was deleted, which ends the session):
  `NotAuthorizedException` with the sign-in address, `next` naming the page to come back
  to. The app answers a browser with a redirect there and anyone else with a 401.
- Signed in, but not an active operator where one is needed: `PermissionDeniedException`,
  a 403 that says why.
- The page to come back to is the address asked for; a form's handler names its page
  with `opt=back_to(...)`, or `opt=WITH_QUERY` keeps the query too. `next` is escaped
  so it survives inside the query of the sign-in address.
- A handler receives the checked account as `account: SignedIn` or `operator: Operator`;
  those dependencies run the same check, so neither ever hands out an unchecked account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any, TypeAlias, cast
from urllib.parse import quote

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from gateway.db.models import Account
from gateway.identity.service import signed_in_account
from gateway.runtime import Runtime
from gateway.web.session import SESSION_ACCOUNT

Connection: TypeAlias = ASGIConnection[Any, Any, Any, Any]
# The page to come back to after signing in, already escaped for `?next=`.
Back: TypeAlias = Callable[[Connection], Awaitable[str] | str]
BACK = "sign_in_back"
_VIEWER = "gateway.viewer"  # the account the check found, kept for this request only


def back_to(page: str) -> dict[str, Back]:
    """`opt` of a handler whose sign-in comes back to `page`, with the path's parameters."""

    def back(connection: Connection) -> str:
        return _escaped(page.format_map(connection.path_params))

    return {BACK: back}


def _with_query(connection: Connection) -> str:
    query = connection.url.query
    return _escaped(connection.url.path + (f"?{query}" if query else ""))


WITH_QUERY: dict[str, Back] = {BACK: _with_query}


def _escaped(page: str) -> str:
    # The page goes inside ?next=, so its own query must be escaped.
    return quote(page, safe="/")


async def _back(connection: Connection, handler: BaseRouteHandler) -> str:
    back: Back | None = handler.opt.get(BACK)
    if back is None:
        return _escaped(connection.url.path)
    page = back(connection)
    return await page if isawaitable(page) else page


async def _viewer(connection: Connection) -> Account | None:
    # Kept in the request's own scope: never shared with another request, even where a
    # server hands every request the same lifespan state.
    scope = cast("dict[str, Any]", connection.scope)
    if _VIEWER in scope:
        found: Account | None = scope[_VIEWER]
        return found
    session = connection.scope.get("session")
    account_id = session.get(SESSION_ACCOUNT) if isinstance(session, dict) else None
    account = None
    if isinstance(account_id, str) and account_id:
        runtime: Runtime = connection.app.state.runtime
        # Closed before the handler runs: one connection at a time, and on SQLite no
        # snapshot left open to hide what the handler then writes.
        async with runtime.unit() as uow:
            account = await signed_in_account(uow, account_id)
        if account is None:
            connection.clear_session()
    scope[_VIEWER] = account
    return account


async def requires_sign_in(connection: Connection, handler: BaseRouteHandler) -> None:
    """Guard: someone is signed in."""
    await _signed_in(connection, handler)


async def requires_operator(connection: Connection, handler: BaseRouteHandler) -> None:
    """Guard: an active operator is signed in."""
    await _operator(connection, handler)


async def _signed_in(connection: Connection, handler: BaseRouteHandler) -> Account:
    account = await _viewer(connection)
    if account is None:
        raise NotAuthorizedException(detail=f"/sign-in?next={await _back(connection, handler)}")
    return account


async def _operator(connection: Connection, handler: BaseRouteHandler) -> Account:
    account = await _signed_in(connection, handler)
    if not account.is_operator:
        raise PermissionDeniedException(detail="this page is for operators")
    if account.status != "active":
        raise PermissionDeniedException(detail=f"your account is {account.status}")
    return account


async def provide_account(request: Request[Any, Any, Any]) -> Account:
    """The signed-in account, checked as `requires_sign_in` checks it."""
    return await _signed_in(request, request.route_handler)


async def provide_operator(request: Request[Any, Any, Any]) -> Account:
    """The signed-in operator, checked as `requires_operator` checks it."""
    return await _operator(request, request.route_handler)


SignedIn: TypeAlias = NamedDependency[Account]
Operator: TypeAlias = NamedDependency[Account]
