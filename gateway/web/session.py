"""Portal sessions: who is signed in, kept server-side in the database.

Rules of this module:
- A session id is made by the server, at random, when a session is first stored and
  again at every sign-in (`sign_in_session`), which also deletes the session it
  replaces: an id planted in a browser before sign-in (session fixation) is worth nothing
  after. A cookie whose id the store does not know is ignored, never adopted.
- Nothing is stored for a visitor whose session holds nothing, and a session that did
  not change in a request is not written again.
- A session ended elsewhere (sign-out, a password reset, a suspension) is not brought back
  by a request that loaded it before it ended: updates only touch live rows.
- Anonymous sessions (a CSRF token, an OIDC sign-in on its way) live for hours; signed-in
  ones for 14 days from their last change.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeAlias

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.serialization import decode_json, encode_json
from litestar.types import ASGIApp, Empty, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from gateway.db.models import Account
from gateway.identity.service import signed_in_account
from gateway.identity.sessions import SessionStore
from gateway.web import Uow

SESSION_ACCOUNT = "account_id"
COOKIE = "gw_session"
SIGNED_IN_SECONDS = 14 * 24 * 3600
ANONYMOUS_SECONDS = 12 * 3600
# Longer ids than any the server makes are not even looked up.
_MAX_ID = 128


class SessionMiddleware(ASGIMiddleware):
    """Loads `scope["session"]` from the store, and stores it when the response starts."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, store: SessionStore, *, secure: bool, skip: Callable[[Scope], bool]) -> None:
        self.store = store
        self.secure = secure
        self.should_bypass_for_scope = skip

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        cookie_id = ASGIConnection[Any, Any, Any, Any](scope).cookies.get(COOKIE)
        loaded_id: str | None = None
        raw: bytes | None = None
        if cookie_id and len(cookie_id) <= _MAX_ID:
            raw = await self.store.get(cookie_id)
            loaded_id = cookie_id if raw is not None else None
        scope["session"] = _decode(raw) if raw is not None else {}
        ScopeState.from_scope(scope).session_id = loaded_id or Empty

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._store(scope, message, cookie_id, loaded_id, raw)
            await send(message)

        await next_app(scope, receive, send_with_session)

    async def _store(
        self,
        scope: Scope,
        message: Message,
        cookie_id: str | None,
        loaded_id: str | None,
        raw: bytes | None,
    ) -> None:
        session = scope.get("session")
        headers = MutableScopeHeaders.from_message(message)
        if not isinstance(session, dict) or not session:
            # Signed out, or nothing worth keeping.
            if loaded_id is not None:
                await self.store.delete(loaded_id)
            if cookie_id is not None:
                headers.add("set-cookie", self._cookie("", max_age=0))
            return
        account_id = session.get(SESSION_ACCOUNT)
        owner = account_id if isinstance(account_id, str) else None
        lifetime = SIGNED_IN_SECONDS if owner else ANONYMOUS_SECONDS
        data = encode_json(session)
        # `Request.clear_session()` forgets the id: what is set after it is a new session.
        same = loaded_id is not None and ScopeState.from_scope(scope).session_id == loaded_id
        if same and loaded_id is not None:
            if data == raw:
                return
            if not await self.store.update(loaded_id, data, account_id=owner, expires_in=lifetime):
                # Ended while this request ran: it stays ended.
                headers.add("set-cookie", self._cookie("", max_age=0))
                return
            session_id = loaded_id
        else:
            if loaded_id is not None:
                await self.store.delete(loaded_id)
            session_id = secrets.token_urlsafe(32)
            await self.store.create(session_id, data, account_id=owner, expires_in=lifetime)
        headers.add("set-cookie", self._cookie(session_id, max_age=lifetime))

    def _cookie(self, value: str, *, max_age: int) -> str:
        return Cookie(
            key=COOKIE,
            value=value or "null",
            max_age=max_age,
            expires=0 if max_age == 0 else None,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        ).to_header(header="")


def _decode(raw: bytes) -> dict[str, Any]:
    value = decode_json(raw)
    return value if isinstance(value, dict) else {}


async def provide_viewer(request: Request[Any, Any, Any], uow: Uow) -> Account | None:
    """The signed-in account, or None. A session of a deleted account is dropped."""
    session = request.scope.get("session")
    account_id = session.get(SESSION_ACCOUNT) if isinstance(session, dict) else None
    if not account_id:
        return None
    account = await signed_in_account(uow, account_id)
    if account is None:
        request.clear_session()
    return account


def sign_in_session(request: Request[Any, Any, Any], account: Account) -> None:
    """Sign the browser in under a new session id; the session it had is deleted."""
    request.clear_session()
    # Email and role are kept for the page header only; every check reloads the account.
    request.set_session(
        {SESSION_ACCOUNT: account.id, "email": account.email, "operator": account.is_operator}
    )


Viewer: TypeAlias = NamedDependency[Account | None]
