"""Every query of applications: the service asks, this module knows the tables."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway.db.batches import Window, in_batches, in_window, of_model, where_given
from gateway.db.keyset import keyset_page
from gateway.db.models import Account, Application, ApplicationEvent, Grant, Model, Release
from gateway.pagination import Keyset
from stages.applications import ApplicationStatus
from stages.names import ModelRef

AWAITING_REVIEW = (ApplicationStatus.SUBMITTED.value, ApplicationStatus.UNDER_REVIEW.value)


async def model_by_ref(session: AsyncSession, ref: ModelRef) -> Model | None:
    return await session.scalar(select(Model).where(Model.org == ref.org, Model.name == ref.name))


async def newest_release(session: AsyncSession, model_id: int) -> Release | None:
    """The model's newest release, with its license."""
    return await session.scalar(
        select(Release)
        .options(selectinload(Release.license))
        .where(Release.model_id == model_id)
        .order_by(Release.published_at.desc())
        .limit(1)
    )


def _same_tier(account_id: str, model_id: int, tier: str) -> Select[Application]:
    return select(Application).where(
        Application.account_id == account_id,
        Application.model_id == model_id,
        Application.tier == tier,
    )


async def for_same_tier(
    session: AsyncSession, account_id: str, model_id: int, tier: str
) -> Sequence[Application]:
    """The account's applications for this tier of this model."""
    return (await session.scalars(_same_tier(account_id, model_id, tier))).all()


async def last_denied_at(
    session: AsyncSession, account_id: str, model_id: int, tier: str
) -> datetime | None:
    return await session.scalar(
        _same_tier(account_id, model_id, tier)
        .with_only_columns(func.max(Application.decided_at))
        .where(Application.status == ApplicationStatus.DENIED.value)
    )


async def withdrawn_grant_status(
    session: AsyncSession, account_id: str, model_id: int, tier: str
) -> str | None:
    """ "revoked" or "suspended" when an operator took this tier's access away, else None."""
    return await session.scalar(
        select(Grant.status)
        .where(
            Grant.account_id == account_id,
            Grant.model_id == model_id,
            Grant.tier == tier,
            Grant.status.in_(["revoked", "suspended"]),
        )
        .limit(1)
    )


async def active_grant_id(
    session: AsyncSession, account_id: str, model_id: int, tier: str, now: datetime
) -> str | None:
    return await session.scalar(
        select(Grant.id).where(
            Grant.account_id == account_id,
            Grant.model_id == model_id,
            Grant.tier == tier,
            Grant.status == "active",
            Grant.expires_at > now,
        )
    )


async def for_update(
    session: AsyncSession, application_id: str, owner: str | None
) -> Application | None:
    """One application, locked, with its account and model; `owner` limits it to theirs."""
    query = (
        select(Application)
        .options(selectinload(Application.account), selectinload(Application.model))
        .where(Application.id == application_id)
        .with_for_update()
        # A row read earlier in the unit is read again, under the lock.
        .execution_options(populate_existing=True)
    )
    if owner is not None:
        query = query.where(Application.account_id == owner)
    return await session.scalar(query)


async def with_events(
    session: AsyncSession, application_id: str, owner: str | None
) -> Application | None:
    """One application with its account, model and events; `owner` limits it to theirs."""
    query = (
        select(Application)
        .options(
            selectinload(Application.account),
            selectinload(Application.model),
            selectinload(Application.events),
        )
        .where(Application.id == application_id)
        # Read afresh: a row this unit changed gets the events it wrote since.
        .execution_options(populate_existing=True)
    )
    if owner is not None:
        query = query.where(Application.account_id == owner)
    return await session.scalar(query)


async def by_ids(session: AsyncSession, ids: Sequence[str]) -> dict[str, Application]:
    rows = await session.scalars(
        select(Application)
        .options(selectinload(Application.account), selectinload(Application.model))
        .where(Application.id.in_(ids))
    )
    return {application.id: application for application in rows.all()}


def _matching(
    *,
    status: str | None,
    model: ModelRef | None,
    tier: str | None,
    account_id: str | None,
    applicant: str | None,
    overdue_before: Mapping[str, datetime] | None,
) -> Select[Application]:
    """Applications that match, with their account and model. No status and no account:
    those awaiting review. `overdue_before`: only those awaiting review submitted before
    their tier's deadline start."""
    query = (
        select(Application)
        .join(Model, Application.model_id == Model.id)
        .options(selectinload(Application.account), selectinload(Application.model))
    )
    if status is None and account_id is None:
        query = query.where(Application.status.in_(AWAITING_REVIEW))
    elif status is not None:
        query = query.where(Application.status == status)
    if account_id is not None:
        query = query.where(Application.account_id == account_id)
    if model is not None:
        query = query.where(Model.org == model.org, Model.name == model.name)
    if tier is not None:
        query = query.where(Application.tier == tier)
    if applicant:
        needle = applicant.lower()
        query = query.join(Account, Application.account_id == Account.id).where(
            func.lower(Account.email).contains(needle, autoescape=True)
            | func.lower(Account.display_name).contains(needle, autoescape=True)
        )
    if overdue_before is not None:
        # Overdue depends on each tier's review_days: filter tier by tier in SQL.
        clauses = [
            (Application.tier == name) & (Application.submitted_at < before)
            for name, before in overdue_before.items()
        ]
        query = query.where(or_(*clauses), Application.status.in_(AWAITING_REVIEW))
    return query


async def search(
    session: AsyncSession,
    *,
    status: str | None,
    model: ModelRef | None,
    tier: str | None,
    account_id: str | None,
    applicant: str | None,
    overdue_before: Mapping[str, datetime] | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Application], int]:
    """Applications oldest first (see `_matching`), and how many match."""
    query = _matching(
        status=status,
        model=model,
        tier=tier,
        account_id=account_id,
        applicant=applicant,
        overdue_before=overdue_before,
    )
    total = (
        await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    )
    rows = (
        await session.scalars(
            query.order_by(Application.submitted_at, Application.id).limit(limit).offset(offset)
        )
    ).all()
    return rows, total


async def search_after(
    session: AsyncSession,
    *,
    status: str | None,
    model: ModelRef | None,
    tier: str | None,
    applicant: str | None,
    overdue_before: Mapping[str, datetime] | None,
    after: Keyset | None,
    limit: int,
) -> Sequence[Application]:
    """Up to `limit` + 1 applications that match (see `_matching`), oldest first, from
    just after `after` in that order."""
    query = _matching(
        status=status,
        model=model,
        tier=tier,
        account_id=None,
        applicant=applicant,
        overdue_before=overdue_before,
    )
    page = keyset_page(query, Application.submitted_at, Application.id, after, limit)
    return (await session.scalars(page)).all()


def export_rows(
    session: AsyncSession,
    status: ApplicationStatus | None,
    model: ModelRef | None,
    tier: str | None,
    window: Window,
    *,
    batch: int,
) -> AsyncIterator[Row[Any]]:
    """Every application that matches, of any status, oldest submission first, with its
    applicant's email, its model and when its review started (the first start of review
    since it was last submitted), `batch` rows a fetch."""
    review_started = (
        select(func.min(ApplicationEvent.at))
        .where(
            ApplicationEvent.application_id == Application.id,
            ApplicationEvent.to_status == ApplicationStatus.UNDER_REVIEW,
            ApplicationEvent.at >= Application.submitted_at,
        )
        .correlate(Application)
        .scalar_subquery()
    )
    query = (
        select(
            Application.id,
            Account.email,
            Model.org,
            Model.name,
            Application.tier,
            Application.status,
            Application.submitted_at,
            review_started.label("review_started_at"),
            Application.decided_at,
            Application.decided_by,
            Application.decision_reason,
        )
        .join(Account, Application.account_id == Account.id)
        .join(Model, Application.model_id == Model.id)
        .where(*in_window(Application.submitted_at, window))
        .order_by(Application.submitted_at, Application.id)
    )
    query = where_given(
        query,
        (Application.status, status),
        (Application.tier, tier),
        *of_model(model),
    )
    return in_batches(session, query, batch=batch)


def deadline_starts(review_days: Mapping[str, int], now: datetime) -> dict[str, datetime]:
    """Per tier, the submission time before which a waiting application is overdue."""
    return {tier: now - timedelta(days=days) for tier, days in review_days.items()}


async def waiting_for_changes(session: AsyncSession) -> Sequence[tuple[str, str, datetime]]:
    """(id, tier, changed at) of every application waiting for the applicant's changes."""
    rows = await session.execute(
        select(Application.id, Application.tier, Application.updated_at).where(
            Application.status == ApplicationStatus.CHANGES_REQUESTED.value
        )
    )
    return [(row[0], row[1], row[2]) for row in rows.all()]


async def linked_to_grants(
    session: AsyncSession, account_id: str, grant_ids: Sequence[str]
) -> list[Application]:
    """The account's applications that made or renewed these grants, newest first."""
    if not grant_ids:
        return []
    rows = await session.scalars(
        select(Application)
        .where(
            Application.account_id == account_id,
            or_(Application.grant_id.in_(grant_ids), Application.renewal_of.in_(grant_ids)),
        )
        .order_by(Application.submitted_at.desc())
    )
    return list(rows.all())


async def active_operators(session: AsyncSession, *, besides: str) -> Sequence[Account]:
    return (
        await session.scalars(
            select(Account).where(
                Account.is_operator.is_(True), Account.status == "active", Account.id != besides
            )
        )
    ).all()


async def actor_accounts(session: AsyncSession, ids: Sequence[str]) -> Sequence[Account]:
    return (await session.scalars(select(Account).where(Account.id.in_(ids)))).all()
