"""Every query of grants the grant services make: they ask, this module knows the tables."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Row, Select, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway.db.batches import Window, in_batches, in_window, of_model, where_given
from gateway.db.keyset import keyset_page
from gateway.db.models import Account, Closeout, Grant, GrantNotice, Model
from gateway.pagination import Keyset
from stages.grants import GrantStatus
from stages.names import ModelRef


async def model_by_ref(session: AsyncSession, ref: ModelRef) -> Model | None:
    return await session.scalar(select(Model).where(Model.org == ref.org, Model.name == ref.name))


def _matching(
    *,
    email: str | None,
    account_id: str | None,
    model: ModelRef | None,
    tier: str | None,
    status: GrantStatus | None,
) -> Select[Grant]:
    """The grants that match every filter given (None: any), with their account and model."""
    query = (
        select(Grant)
        .join(Account, Grant.account_id == Account.id)
        .join(Model, Grant.model_id == Model.id)
        .options(selectinload(Grant.account), selectinload(Grant.model))
    )
    if email is not None:
        query = query.where(Account.email == email)
    if account_id is not None:
        query = query.where(Grant.account_id == account_id)
    if model is not None:
        query = query.where(Model.org == model.org, Model.name == model.name)
    if tier is not None:
        query = query.where(Grant.tier == tier)
    if status is not None:
        query = query.where(Grant.status == status)
    return query


async def search(
    session: AsyncSession,
    *,
    email: str | None,
    account_id: str | None,
    model: ModelRef | None,
    tier: str | None,
    status: GrantStatus | None,
) -> Sequence[Grant]:
    """Grants newest first (ties: the greater id first, as `search_after`)."""
    query = _matching(
        email=email, account_id=account_id, model=model, tier=tier, status=status
    ).order_by(Grant.created_at.desc(), Grant.id.desc())
    return (await session.scalars(query)).all()


async def search_after(
    session: AsyncSession,
    *,
    email: str | None,
    model: ModelRef | None,
    tier: str | None,
    status: GrantStatus | None,
    after: Keyset | None,
    limit: int,
) -> Sequence[Grant]:
    """Up to `limit` + 1 grants that match, newest first (ties: the greater id first),
    from just after `after` in that order."""
    query = _matching(email=email, account_id=None, model=model, tier=tier, status=status)
    page = keyset_page(query, Grant.created_at, Grant.id, after, limit, descending=True)
    return (await session.scalars(page)).all()


async def grant(session: AsyncSession, grant_id: str) -> Grant | None:
    """One grant, with its account and model."""
    return await session.scalar(
        select(Grant)
        .options(selectinload(Grant.account), selectinload(Grant.model))
        .where(Grant.id == grant_id)
    )


def export_rows(
    session: AsyncSession,
    status: GrantStatus | None,
    model: ModelRef | None,
    tier: str | None,
    window: Window,
    *,
    batch: int,
) -> AsyncIterator[Row[Any]]:
    """Every grant that matches, oldest first, with its account's email and affiliation
    and its model, `batch` rows a fetch."""
    query = (
        select(
            Grant.id,
            Account.email,
            Account.affiliation,
            Model.org,
            Model.name,
            Grant.tier,
            Grant.status,
            Grant.created_at,
            Grant.starts_at,
            Grant.expires_at,
            Grant.status_changed_at,
            Grant.status_reason,
        )
        .join(Account, Grant.account_id == Account.id)
        .join(Model, Grant.model_id == Model.id)
        .where(*in_window(Grant.created_at, window))
        .order_by(Grant.created_at, Grant.id)
    )
    query = where_given(query, (Grant.status, status), (Grant.tier, tier), *of_model(model))
    return in_batches(session, query, batch=batch)


async def for_update(session: AsyncSession, grant_id: str) -> Grant | None:
    """One grant, locked, with its account and model."""
    return await session.scalar(
        select(Grant)
        .options(selectinload(Grant.account), selectinload(Grant.model))
        .where(Grant.id == grant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def closeout_for_update(
    session: AsyncSession, closeout_id: str, account_id: str
) -> Closeout | None:
    """The account's own close-out, locked; another's is None."""
    return await session.scalar(
        select(Closeout)
        .where(Closeout.id == closeout_id, Closeout.account_id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def closeouts_of(session: AsyncSession, account_id: str) -> dict[str, Closeout]:
    """The account's close-outs, by grant."""
    rows = await session.scalars(select(Closeout).where(Closeout.account_id == account_id))
    return {closeout.grant_id: closeout for closeout in rows}


# --- the end of a grant (gateway.grants.lifecycle) -----------------------------------


async def claim_notice(session: AsyncSession, grant_id: str, notice: str, now: datetime) -> bool:
    """Record that `notice` was sent about the grant; False if it already was (by this
    run or a concurrent one), so each notice goes out once."""
    dialect = (await session.connection()).dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(GrantNotice)
        .values(grant_id=grant_id, notice=notice, sent_at=now)
        .on_conflict_do_nothing()
    )
    return bool(cast("CursorResult[Any]", result).rowcount)


async def notices_of(session: AsyncSession, grant_id: str) -> Sequence[str]:
    return (
        await session.scalars(select(GrantNotice.notice).where(GrantNotice.grant_id == grant_id))
    ).all()


async def active_ending_between(
    session: AsyncSession, after: datetime, until: datetime
) -> Sequence[Grant]:
    """Active grants that end in (after, until], with their account and model."""
    return (
        await session.scalars(
            select(Grant)
            .options(selectinload(Grant.account), selectinload(Grant.model))
            .where(
                Grant.status == GrantStatus.ACTIVE,
                Grant.expires_at > after,
                Grant.expires_at <= until,
            )
        )
    ).all()


async def ids_ended_by(
    session: AsyncSession, statuses: Collection[GrantStatus], now: datetime
) -> Sequence[str]:
    """Grants in one of `statuses` whose window closed at or before `now`."""
    return (
        await session.scalars(
            select(Grant.id).where(Grant.status.in_(statuses), Grant.expires_at <= now)
        )
    ).all()


async def move_if_in(
    session: AsyncSession,
    grant_id: str,
    sources: Collection[GrantStatus],
    to: GrantStatus,
    *,
    reason: str,
    now: datetime,
) -> Grant | None:
    """Move the grant to `to` if it is still in one of `sources` (a guarded UPDATE, so a
    concurrent move wins once); the moved grant with its account and model, else None."""
    claimed = await session.execute(
        update(Grant)
        .where(Grant.id == grant_id, Grant.status.in_(sources))
        .values(status=to, status_reason=reason, status_changed_at=now)
    )
    if not cast("CursorResult[Any]", claimed).rowcount:
        return None
    return await session.scalar(
        select(Grant)
        .options(selectinload(Grant.account), selectinload(Grant.model))
        .where(Grant.id == grant_id)
        .execution_options(populate_existing=True)
    )


async def ended_without_closeout(
    session: AsyncSession, statuses: Collection[GrantStatus]
) -> Sequence[Grant]:
    """Ended grants no close-out has been asked for yet, with their account and model."""
    return (
        await session.scalars(
            select(Grant)
            .options(selectinload(Grant.account), selectinload(Grant.model))
            .outerjoin(Closeout, Closeout.grant_id == Grant.id)
            .where(Grant.status.in_(statuses), Closeout.id.is_(None))
        )
    ).all()
