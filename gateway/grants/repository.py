"""Every query of grants the grant services make: they ask, this module knows the tables."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway.db.models import Account, Closeout, Grant, Model
from stages.names import ModelRef


async def model_by_ref(session: AsyncSession, ref: ModelRef) -> Model | None:
    return await session.scalar(select(Model).where(Model.org == ref.org, Model.name == ref.name))


async def search(
    session: AsyncSession,
    *,
    email: str | None,
    account_id: str | None,
    model: ModelRef | None,
) -> Sequence[Grant]:
    """Grants newest first, with their account and model."""
    query = (
        select(Grant)
        .join(Account, Grant.account_id == Account.id)
        .join(Model, Grant.model_id == Model.id)
        .options(selectinload(Grant.account), selectinload(Grant.model))
        .order_by(Grant.created_at.desc())
    )
    if email is not None:
        query = query.where(Account.email == email)
    if account_id is not None:
        query = query.where(Grant.account_id == account_id)
    if model is not None:
        query = query.where(Model.org == model.org, Model.name == model.name)
    return (await session.scalars(query)).all()


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
