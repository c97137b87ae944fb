"""The notify feature's queries: the inbox, the two outboxes (mail, webhook deliveries)
and the circuit of each webhook endpoint.

Every status an outbox row takes is one `stages/delivery.py` move: a guarded UPDATE that
changes a row only while it is in a status the move starts from.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from gateway.db.models import Account, Base, Notification, WebhookDelivery, WebhookEndpoint
from stages.delivery import DeliveryMove, EmailStatus, WebhookStatus, bulk_delivery_move


def rowcount(result: object) -> int:
    return cast("CursorResult[Any]", result).rowcount


def in_inbox(account_id: str) -> ColumnElement[bool]:
    """The notifications the account's inbox shows: its own, none that exist to be mailed."""
    return (Notification.account_id == account_id) & (Notification.mail_only == false())


async def unread_count(session: AsyncSession, account_id: str) -> int:
    """How many entries of the account's inbox are unread: one COUNT query."""
    unread = in_inbox(account_id) & Notification.read_at.is_(None)
    return await session.scalar(select(func.count()).select_from(Notification).where(unread)) or 0


async def inbox_count(session: AsyncSession, account_id: str) -> int:
    query = select(func.count()).select_from(Notification).where(in_inbox(account_id))
    return await session.scalar(query) or 0


async def inbox_entries(
    session: AsyncSession, account_id: str, *, limit: int, offset: int = 0
) -> Sequence[Notification]:
    """The account's inbox, newest first."""
    rows = await session.scalars(
        select(Notification)
        .where(in_inbox(account_id))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return rows.all()


async def mark_read(
    session: AsyncSession, account_id: str, ids: Collection[int] | None, now: datetime
) -> int:
    """Mark the account's unread entries read (only those of `ids`, if given); how many.
    Another account's entries are never touched, whatever ids are asked for."""
    where = in_inbox(account_id) & Notification.read_at.is_(None)
    if ids is not None:
        where = where & Notification.id.in_(list(ids))
    result = await session.execute(
        update(Notification)
        .where(where)
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


@dataclass(frozen=True)
class Outbox:
    """The columns that make a table a delivery queue."""

    model: type[Base]
    states: type[EmailStatus] | type[WebhookStatus]
    id: InstrumentedAttribute[Any]
    status: InstrumentedAttribute[Any]
    attempts: InstrumentedAttribute[int]
    next_at: InstrumentedAttribute[Any]
    error: InstrumentedAttribute[str | None]
    # What next_at holds once a row is finished: None, or (NOT NULL column) that time.
    next_at_nullable: bool


EMAIL = Outbox(
    Notification,
    EmailStatus,
    Notification.id,
    Notification.email_status,
    Notification.email_attempts,
    Notification.email_next_attempt_at,
    Notification.email_error,
    next_at_nullable=True,
)
WEBHOOKS = Outbox(
    WebhookDelivery,
    WebhookStatus,
    WebhookDelivery.id,
    WebhookDelivery.status,
    WebhookDelivery.attempts,
    WebhookDelivery.next_attempt_at,
    WebhookDelivery.last_error,
    next_at_nullable=False,
)


def _move(outbox: Outbox, move: DeliveryMove) -> tuple[tuple[Any, ...], Any]:
    return bulk_delivery_move(outbox.states, move)


def is_due(outbox: Outbox, now: datetime) -> Any:
    # A `sending` row whose lease has run out is due again, like a pending one: CLAIM
    # starts from both.
    sources, _ = _move(outbox, DeliveryMove.CLAIM)
    return outbox.status.in_(sources) & or_(outbox.next_at.is_(None), outbox.next_at <= now)


async def due(
    session: AsyncSession, outbox: Outbox, now: datetime, limit: int, *where: Any
) -> list[tuple[Any, int]]:
    """Ids and attempt counts of rows due now (and matching `where`), oldest due first."""
    rows = await session.execute(
        select(outbox.id, outbox.attempts)
        .where(is_due(outbox, now), *where)
        .order_by(outbox.next_at, outbox.id)
        .limit(limit)
    )
    return [(row_id, attempts) for row_id, attempts in rows]


async def claim(
    session: AsyncSession,
    outbox: Outbox,
    row_id: Any,
    attempts: int,
    now: datetime,
    lease_until: datetime,
) -> bool:
    """Take the row for one attempt; False if another run took it (or it is not due)."""
    _, sending = _move(outbox, DeliveryMove.CLAIM)
    result = await session.execute(
        update(outbox.model)
        .where(outbox.id == row_id, outbox.attempts == attempts, is_due(outbox, now))
        .values(
            {outbox.status: sending, outbox.attempts: attempts + 1, outbox.next_at: lease_until}
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def finish(
    session: AsyncSession,
    outbox: Outbox,
    row_id: Any,
    claimed: int,
    move: DeliveryMove,
    values: Mapping[InstrumentedAttribute[Any], Any],
    now: datetime,
) -> bool:
    """Store an attempt's outcome (DELIVER, RETRY or FAIL), if the claim at attempt
    `claimed` still holds; False if it was lost."""
    sources, leads_to = _move(outbox, move)
    finished_next_at = None if outbox.next_at_nullable else now
    changes = {outbox.next_at: finished_next_at, **values, outbox.status: leads_to}
    result = await session.execute(
        update(outbox.model)
        .where(outbox.id == row_id, outbox.status.in_(sources), outbox.attempts == claimed)
        .values(changes)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def skip_email(session: AsyncSession, now: datetime) -> int:
    """Mark pending mail (and claims whose lease ran out) skipped; how many."""
    sources, skipped = _move(EMAIL, DeliveryMove.SKIP)
    waiting = [s for s in sources if s is not EmailStatus.SENDING]
    result = await session.execute(
        update(Notification)
        .where(
            or_(
                Notification.email_status.in_(waiting),
                (Notification.email_status == EmailStatus.SENDING)
                & (Notification.email_next_attempt_at <= now),
            )
        )
        .values(email_status=skipped, email_next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def mail_and_recipient(session: AsyncSession, note_id: int) -> tuple[Notification, str]:
    note, recipient = (
        await session.execute(
            select(Notification, Account.email)
            .join(Account, Account.id == Notification.account_id)
            .where(Notification.id == note_id)
        )
    ).one()
    return note, recipient


async def delivery(session: AsyncSession, delivery_id: str) -> WebhookDelivery:
    return await session.get_one(WebhookDelivery, delivery_id)


async def waiting_counts(session: AsyncSession, urls: list[str]) -> dict[tuple[str, str], int]:
    """Deliveries per (endpoint, status), of those still waiting or given up."""
    counts = await session.execute(
        select(WebhookDelivery.endpoint, WebhookDelivery.status, func.count())
        .where(
            WebhookDelivery.endpoint.in_(urls),
            WebhookDelivery.status.in_(
                (WebhookStatus.PENDING, WebhookStatus.SENDING, WebhookStatus.FAILED)
            ),
        )
        .group_by(WebhookDelivery.endpoint, WebhookDelivery.status)
    )
    return {(url, str(status)): n for url, status, n in counts.all()}


async def endpoints(session: AsyncSession, urls: list[str]) -> Sequence[WebhookEndpoint]:
    rows = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.url.in_(urls)))
    return rows.all()


async def locked_endpoint(session: AsyncSession, url: str) -> WebhookEndpoint:
    """The endpoint's row, created if missing, locked for this transaction. Two runs that
    meet a new endpoint at once both get the one row (insert-or-nothing, then read)."""
    dialect = (await session.connection()).dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(WebhookEndpoint).values(url=url, consecutive_failures=0).on_conflict_do_nothing()
    )
    return await session.get_one(WebhookEndpoint, url, with_for_update=True)


async def held_for_digest(session: AsyncSession) -> Sequence[tuple[str, datetime]]:
    """Each account with inbox entries held for a digest, and when its oldest was made."""
    held, _ = _move(EMAIL, DeliveryMove.GATHER)
    rows = await session.execute(
        select(Notification.account_id, func.min(Notification.created_at))
        .where(Notification.email_status.in_(held))
        .group_by(Notification.account_id)
        .order_by(Notification.account_id)
    )
    return [(account_id, oldest) for account_id, oldest in rows]


async def gather_for_digest(session: AsyncSession, account_id: str) -> Sequence[Notification]:
    """Claim the account's held entries for one digest (the GATHER move, one guarded
    UPDATE), oldest first: what a concurrent run claimed first is not among them."""
    held, gathered = _move(EMAIL, DeliveryMove.GATHER)
    ids = (
        await session.scalars(
            update(Notification)
            .where(Notification.account_id == account_id, Notification.email_status.in_(held))
            .values(email_status=gathered)
            .returning(Notification.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not ids:
        return []
    return (
        await session.scalars(
            select(Notification)
            .where(Notification.id.in_(ids))
            .order_by(Notification.created_at, Notification.id)
        )
    ).all()
