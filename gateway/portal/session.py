"""Who is looking at a portal page: the signed-in account from the server-side session."""

from __future__ import annotations

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from gateway.db.models import Account
from gateway.web import Db

SESSION_ACCOUNT = "account_id"


async def provide_viewer(request: Request[Any, Any, Any], db: Db) -> Account | None:
    """The signed-in account, or None. A session of a deleted account is dropped."""
    session = request.scope.get("session")
    account_id = session.get(SESSION_ACCOUNT) if isinstance(session, dict) else None
    if not account_id:
        return None
    account = await db.get(Account, account_id)
    # End the read: on SQLite a snapshot kept open would hide what the handler then writes.
    await db.commit()
    if account is None:
        request.clear_session()
    return account


def sign_in_session(request: Request[Any, Any, Any], account: Account) -> None:
    # A new session id on sign-in: a session fixed before sign-in is worth nothing after.
    request.clear_session()
    # Email and role are kept for the page header only; every check reloads the account.
    request.set_session(
        {SESSION_ACCOUNT: account.id, "email": account.email, "operator": account.is_operator}
    )


def require_account(viewer: Account | None, path: str) -> Account:
    if viewer is None:
        raise NotAuthorizedException(detail=f"/sign-in?next={path}")
    return viewer


def require_operator(viewer: Account | None, path: str) -> Account:
    account = require_account(viewer, path)
    if not account.is_operator:
        raise PermissionDeniedException(detail="this page is for operators")
    if account.status != "active":
        raise PermissionDeniedException(detail=f"your account is {account.status}")
    return account


Viewer: TypeAlias = NamedDependency[Account | None]
