"""Every query of the enforcement feature: accounts by address, their actions and appeals,
the confirmed incidents linked to them, and the claims of the job that ends suspensions.
Plain reads, locks and adds; the services decide when a unit enters its write phase."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Row, Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.batches import Window, in_batches, in_window, where_given
from gateway.db.keyset import keyset_page
from gateway.db.models import Account, Appeal, EnforcementAction, Incident, IncidentAccount
from gateway.pagination import Keyset
from stages.enforcement import AppealStatus, EnforcementStep
from stages.incidents import IncidentStatus

_SUSPEND = EnforcementStep.SUSPEND.value


async def account_by_email(session: AsyncSession, address: str, *, lock: bool) -> Account | None:
    query = select(Account).where(func.lower(Account.email) == address.lower())
    return await session.scalar(query.with_for_update() if lock else query)


async def account(session: AsyncSession, account_id: str, *, lock: bool = False) -> Account | None:
    return await session.get(Account, account_id, with_for_update=lock or None)


async def account_status(session: AsyncSession, account_id: str) -> str | None:
    return await session.scalar(select(Account.status).where(Account.id == account_id))


async def incident_by_ref(session: AsyncSession, ref: str) -> Incident | None:
    """An incident by its id or its tracking code."""
    return await session.scalar(
        select(Incident).where(or_(Incident.id == ref, Incident.tracking_code == ref))
    )


async def history(session: AsyncSession, account_id: str) -> Sequence[Row[str, str | None]]:
    """(step, appeal status) of every action against the account, oldest first."""
    return (
        await session.execute(
            select(EnforcementAction.action, Appeal.status)
            .outerjoin(Appeal, Appeal.action_id == EnforcementAction.id)
            .where(EnforcementAction.account_id == account_id)
            .order_by(EnforcementAction.created_at)
        )
    ).all()


async def confirmed_severities(session: AsyncSession, account_id: str) -> list[str]:
    """The severities of the confirmed incidents linked to the account."""
    rows = await session.scalars(
        select(Incident.severity)
        .join(IncidentAccount, IncidentAccount.incident_id == Incident.id)
        .where(
            IncidentAccount.account_id == account_id,
            Incident.status == IncidentStatus.CONFIRMED.value,
            Incident.severity.is_not(None),
        )
    )
    return [value for value in rows.all() if value]


async def actions_with_appeals(
    session: AsyncSession, account_id: str
) -> list[tuple[EnforcementAction, Appeal | None]]:
    """Every action against the account, newest first, with its appeal."""
    rows = await session.execute(
        select(EnforcementAction, Appeal)
        .outerjoin(Appeal, Appeal.action_id == EnforcementAction.id)
        .where(EnforcementAction.account_id == account_id)
        .order_by(EnforcementAction.created_at.desc(), EnforcementAction.id)
    )
    return [(action, appeal) for action, appeal in rows.all()]


def export_rows(
    session: AsyncSession, action: EnforcementStep | None, window: Window, *, batch: int
) -> AsyncIterator[Row[Any]]:
    """Every action that matches, oldest first, with its account's email and its appeal's
    status (none: not appealed), `batch` rows a fetch."""
    query = (
        select(
            EnforcementAction.id,
            Account.email,
            EnforcementAction.action,
            EnforcementAction.reason,
            EnforcementAction.created_by,
            EnforcementAction.created_at,
            EnforcementAction.ends_at,
            EnforcementAction.ended_at,
            EnforcementAction.appeal_until,
            Appeal.status.label("appeal_status"),
        )
        .join(Account, EnforcementAction.account_id == Account.id)
        .outerjoin(Appeal, Appeal.action_id == EnforcementAction.id)
        .where(*in_window(EnforcementAction.created_at, window))
        .order_by(EnforcementAction.created_at, EnforcementAction.id)
    )
    query = where_given(query, (EnforcementAction.action, action and action.value))
    return in_batches(session, query, batch=batch)


def _appeals_matching(status: AppealStatus | None) -> Select[Appeal, EnforcementAction, Account]:
    """Appeals of `status` (None: every status), with their action and account."""
    query = (
        select(Appeal, EnforcementAction, Account)
        .join(EnforcementAction, EnforcementAction.id == Appeal.action_id)
        .join(Account, Account.id == Appeal.account_id)
    )
    if status is not None:
        query = query.where(Appeal.status == AppealStatus(status).value)
    return query


async def appeals(
    session: AsyncSession, status: AppealStatus | None
) -> list[tuple[Appeal, EnforcementAction, Account]]:
    """Appeals oldest first (ties: the smaller id first, as `appeals_after`), with their
    action and account; None: every status."""
    rows = await session.execute(_appeals_matching(status).order_by(Appeal.submitted_at, Appeal.id))
    return [(appeal, action, account) for appeal, action, account in rows.all()]


async def appeals_after(
    session: AsyncSession, status: AppealStatus | None, after: Keyset | None, limit: int
) -> list[tuple[Appeal, EnforcementAction, Account]]:
    """Up to `limit` + 1 appeals of `status`, oldest first, from just after `after`."""
    page = keyset_page(_appeals_matching(status), Appeal.submitted_at, Appeal.id, after, limit)
    rows = await session.execute(page)
    return [(appeal, action, account) for appeal, action, account in rows.all()]


async def appeal_with_action(
    session: AsyncSession, appeal_id: str
) -> tuple[Appeal, EnforcementAction, Account] | None:
    """One appeal, with its action and account."""
    row = (await session.execute(_appeals_matching(None).where(Appeal.id == appeal_id))).first()
    return None if row is None else (row[0], row[1], row[2])


async def end_running_suspensions(session: AsyncSession, account_id: str, now: datetime) -> None:
    await session.execute(
        update(EnforcementAction)
        .where(
            EnforcementAction.account_id == account_id,
            EnforcementAction.action == _SUSPEND,
            EnforcementAction.ended_at.is_(None),
        )
        .values(ended_at=now)
    )


async def running_suspension(session: AsyncSession, account_id: str) -> EnforcementAction | None:
    """The account's latest suspension not yet ended, locked."""
    return await session.scalar(
        select(EnforcementAction)
        .where(
            EnforcementAction.account_id == account_id,
            EnforcementAction.action == _SUSPEND,
            EnforcementAction.ended_at.is_(None),
        )
        .order_by(EnforcementAction.created_at.desc())
        .limit(1)
        .with_for_update()
    )


async def due_suspensions(session: AsyncSession, now: datetime) -> list[str]:
    """The ids of the suspensions not ended whose time has run out."""
    due = await session.scalars(
        select(EnforcementAction.id).where(
            EnforcementAction.action == _SUSPEND,
            EnforcementAction.ended_at.is_(None),
            EnforcementAction.ends_at <= now,
        )
    )
    return list(due.all())


async def locked_account_of_action(session: AsyncSession, action_id: str) -> Account | None:
    return await session.scalar(
        select(Account)
        .where(
            Account.id
            == select(EnforcementAction.account_id)
            .where(EnforcementAction.id == action_id)
            .scalar_subquery()
        )
        .with_for_update()
    )


async def claim_ending(session: AsyncSession, action_id: str, now: datetime) -> bool:
    """End the action if nothing ended it first; whether this call did."""
    claimed = await session.execute(
        update(EnforcementAction)
        .where(EnforcementAction.id == action_id, EnforcementAction.ended_at.is_(None))
        .values(ended_at=now)
    )
    return cast("CursorResult[Any]", claimed).rowcount == 1


async def action(
    session: AsyncSession, action_id: str, *, lock: bool = False
) -> EnforcementAction | None:
    return await session.get(EnforcementAction, action_id, with_for_update=lock or None)


async def locked_action_of(
    session: AsyncSession, action_id: str, account_id: str
) -> EnforcementAction | None:
    return await session.scalar(
        select(EnforcementAction)
        .where(EnforcementAction.id == action_id, EnforcementAction.account_id == account_id)
        .with_for_update()
    )


async def is_appealed(session: AsyncSession, action_id: str) -> bool:
    return await session.scalar(select(Appeal.id).where(Appeal.action_id == action_id)) is not None


async def locked_appeal(session: AsyncSession, appeal_id: str) -> Appeal | None:
    return await session.scalar(select(Appeal).where(Appeal.id == appeal_id).with_for_update())
