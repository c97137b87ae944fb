"""Every query of the public list of authorised uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Application, Model, PublicUse
from stages.applications import ApplicationStatus


def add(session: AsyncSession, row: PublicUse) -> None:
    session.add(row)


async def of_application(
    session: AsyncSession, application_id: str, *, lock: bool = True
) -> PublicUse | None:
    found: PublicUse | None = await session.get(PublicUse, application_id, with_for_update=lock)
    return found


async def application(session: AsyncSession, application_id: str) -> Application | None:
    found: Application | None = await session.get(Application, application_id)
    return found


async def listed(
    session: AsyncSession, *, model_id: int | None, limit: int, offset: int
) -> tuple[Sequence[Any], int]:
    """(rows of listed uses, newest approval first; how many there are in all)."""
    where = [
        PublicUse.withdrawn_at.is_(None),
        Application.status == ApplicationStatus.APPROVED,
    ]
    if model_id is not None:
        where.append(Application.model_id == model_id)
    joined = select(PublicUse).join(Application, Application.id == PublicUse.application_id)
    total = await session.scalar(select(func.count()).select_from(joined.where(*where).subquery()))
    query = (
        select(
            PublicUse.institution,
            PublicUse.project_title,
            PublicUse.use_statement,
            Application.tier,
            Application.decided_at,
            Model.org,
            Model.name,
        )
        .join(Application, Application.id == PublicUse.application_id)
        .join(Model, Model.id == Application.model_id)
        .where(*where)
        .order_by(Application.decided_at.desc(), PublicUse.application_id)
        .limit(limit)
        .offset(offset)
    )
    return (await session.execute(query)).all(), int(total or 0)
