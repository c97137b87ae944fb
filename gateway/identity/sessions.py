"""Portal sessions in the database, as a Litestar store, so that every replica sees them.

Rules of this module:
- Only the SHA-256 of a session id is stored: a database dump opens no session.
- A session row is written by `create` (a fresh id the server made) or `update` (a row
  that still exists). A session ended meanwhile (sign-out elsewhere, a password reset, a
  suspension) is never brought back by a request that loaded it before it ended.
- Signed-in sessions carry their account, so that `end_sessions` can end all of them in
  the caller's unit of work: the change that ends them and the ending commit together.
- The store is a boundary of its own (the session middleware runs around the request's
  unit of work): each call is one short unit.
- Expiry is judged by the wall clock, as the browser judges the cookie's: a test that
  moves the runtime's clock does not sign anyone out. `purge_expired_sessions` removes
  old rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from litestar.stores.base import Store
from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import WebSession
from gateway.db.uow import UnitOfWork, unit_of_work
from gateway.runtime import Runtime, utcnow


def session_digest(session_id: str) -> str:
    """What the table keeps instead of the id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _seconds(value: int | timedelta | None) -> timedelta | None:
    if value is None:
        return None
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


def _live(now: datetime) -> Any:
    return or_(WebSession.expires_at.is_(None), WebSession.expires_at > now)


def _rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


class SessionStore(Store):
    """The `sessions` store of the app: the Litestar `Store` contract over `web_sessions`,
    plus `create` and `update`, which the session backend uses."""

    __slots__ = ("clock", "rt")

    def __init__(self, rt: Runtime, clock: Callable[[], datetime] = utcnow) -> None:
        self.rt = rt
        self.clock = clock

    def _expiry(self, expires_in: int | timedelta | None) -> datetime | None:
        lifetime = _seconds(expires_in)
        return None if lifetime is None else self.clock() + lifetime

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        now = self.clock()
        async with unit_of_work(self.rt) as uow:
            row = (
                await uow.session.execute(
                    select(WebSession.data, WebSession.expires_at).where(
                        WebSession.id_sha256 == session_digest(key), _live(now)
                    )
                )
            ).first()
        if row is None:
            return None
        if renew_for is not None and row.expires_at is not None:
            async with unit_of_work(self.rt) as uow:
                session = await uow.write()
                await session.execute(
                    update(WebSession)
                    .where(WebSession.id_sha256 == session_digest(key))
                    .values(expires_at=self._expiry(renew_for))
                )
        return bytes(row.data)

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        """Insert or replace (the generic contract; the session backend uses create/update)."""
        data = value.encode() if isinstance(value, str) else value
        values = {
            "id_sha256": session_digest(key),
            "account_id": None,
            "data": data,
            "created_at": self.clock(),
            "expires_at": self._expiry(expires_in),
        }
        insert = sqlite_insert if self.rt.settings.is_sqlite else postgres_insert
        statement = insert(WebSession).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[WebSession.id_sha256],
            set_={"data": data, "expires_at": values["expires_at"]},
        )
        async with unit_of_work(self.rt) as uow:
            session = await uow.write()
            await session.execute(statement)

    async def create(
        self, key: str, data: bytes, *, account_id: str | None, expires_in: int | timedelta
    ) -> None:
        """A new session under a fresh id."""
        async with unit_of_work(self.rt) as uow:
            session = await uow.write()
            session.add(
                WebSession(
                    id_sha256=session_digest(key),
                    account_id=account_id,
                    data=data,
                    created_at=self.clock(),
                    expires_at=self._expiry(expires_in),
                )
            )

    async def update(
        self, key: str, data: bytes, *, account_id: str | None, expires_in: int | timedelta
    ) -> bool:
        """Replace a live session's data; False if it ended meanwhile (nothing is written)."""
        now = self.clock()
        async with unit_of_work(self.rt) as uow:
            session = await uow.write()
            result = await session.execute(
                update(WebSession)
                .where(WebSession.id_sha256 == session_digest(key), _live(now))
                .values(data=data, account_id=account_id, expires_at=self._expiry(expires_in))
                .execution_options(synchronize_session=False)
            )
        return _rowcount(result) == 1

    async def delete(self, key: str) -> None:
        async with unit_of_work(self.rt) as uow:
            session = await uow.write()
            await session.execute(
                delete(WebSession).where(WebSession.id_sha256 == session_digest(key))
            )

    async def delete_all(self) -> None:
        async with unit_of_work(self.rt) as uow:
            session = await uow.write()
            await session.execute(delete(WebSession))

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        now = self.clock()
        async with unit_of_work(self.rt) as uow:
            expires_at = await uow.session.scalar(
                select(WebSession.expires_at).where(
                    WebSession.id_sha256 == session_digest(key), _live(now)
                )
            )
        return None if expires_at is None else int((expires_at - now).total_seconds())


async def end_sessions(session: AsyncSession, account_id: str) -> int:
    """End every session of the account, in the caller's transaction; how many ended."""
    result = await session.execute(
        delete(WebSession)
        .where(WebSession.account_id == account_id)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


async def purge_expired_sessions(uow: UnitOfWork) -> int:
    """Remove sessions past their expiry; how many."""
    now = utcnow()
    session = await uow.write()
    result = await session.execute(
        delete(WebSession)
        .where(WebSession.expires_at.is_not(None), WebSession.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)
