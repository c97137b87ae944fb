"""Every query of structured access: a model's releases for verification, the API use
services reported, and the figures gates read from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.catalog.repository import model_by_ref
from gateway.db.changes import detached
from gateway.db.models import Account, ApiUsageEvent, Release
from gateway.db.uow import UnitOfWork
from stages.names import ModelRef


async def model_releases(uow: UnitOfWork, ref: ModelRef) -> tuple[Release, ...]:
    """The model's releases with their model, through this process's cache (a stage move,
    a recall or a new release invalidates it); NotFound for no such model. The rows are
    shared with other requests: read them, never change them."""
    cache = uow.rt.changes.cache("releases of model", ("models", "releases"))

    async def load() -> tuple[Release, ...]:
        model = await model_by_ref(uow.session, ref)
        releases = tuple(model.releases)
        for release in releases:
            release.model = model
        detached(uow.session, model, *releases)
        return releases

    found: tuple[Release, ...] = await cache.get(ref, load) or ()
    return found


async def add_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the events not already kept (by service and event id); the ids inserted."""
    if not rows:
        return set()
    if (await session.connection()).dialect.name == "sqlite":
        lite = sqlite_insert(ApiUsageEvent).values(list(rows)).on_conflict_do_nothing()
        statement = lite.returning(ApiUsageEvent.event_id)
    else:
        pg = postgresql_insert(ApiUsageEvent).values(list(rows)).on_conflict_do_nothing()
        statement = pg.returning(ApiUsageEvent.event_id)
    return set((await session.scalars(statement)).all())


async def known_events(session: AsyncSession, service_id: str, ids: Sequence[str]) -> set[str]:
    """Which of the service's event ids are already kept."""
    if not ids:
        return set()
    rows = await session.scalars(
        select(ApiUsageEvent.event_id).where(
            ApiUsageEvent.service_id == service_id, ApiUsageEvent.event_id.in_(list(ids))
        )
    )
    return set(rows.all())


@dataclass(frozen=True)
class ApiFigures:
    requests: int
    users: int
    flagged: int


async def api_figures(session: AsyncSession, release_id: int, since: datetime) -> ApiFigures:
    """The API use reported for the release since `since`: requests, distinct accounts
    served, flagged requests."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(ApiUsageEvent.requests), 0),
                func.count(distinct(ApiUsageEvent.account_id)),
                func.coalesce(func.sum(ApiUsageEvent.flagged), 0),
            ).where(ApiUsageEvent.release_id == release_id, ApiUsageEvent.at >= since)
        )
    ).one()
    return ApiFigures(requests=int(row[0]), users=int(row[1]), flagged=int(row[2]))


async def service_by_email(session: AsyncSession, email: str) -> Account | None:
    found: Account | None = await session.scalar(
        select(Account).where(Account.email == email, Account.is_service)
    )
    return found


async def service_accounts(session: AsyncSession) -> Sequence[Account]:
    rows = await session.scalars(select(Account).where(Account.is_service).order_by(Account.email))
    return rows.all()
