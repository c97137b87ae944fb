"""Queue notifications. Writing one is part of the caller's transaction: the inbox entry,
the email to send and the webhook deliveries commit (or not) with the change they report.
Delivery (SMTP, webhooks) is done later by jobs, with retries.

Rules of this module:
- A secret (a one-time link, a new key) goes only to the person's own mailbox: by SMTP,
  or, with no SMTP configured, into the server's log for the operator. The inbox entry and
  the webhook events say what happened without it.
- Events in `ASKED_FOR_ONLY` reach only the webhooks that list them by name; a webhook
  subscribed to every event does not get them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.db.models import Notification, WebhookDelivery
from gateway.db.uow import UnitOfWork
from gateway.notify import repository
from gateway.notify.repository import in_inbox, unread_count
from stages.delivery import EmailStatus, WebhookStatus

logger = logging.getLogger("gateway.mail")

# A password reset says someone is after an account: no business of a catch-all receiver.
# An operator's notice of an application comes once per operator; the applicant's own
# event already tells a catch-all receiver.
ASKED_FOR_ONLY: Final = frozenset({"account.reset_password", "ops.application_submitted"})
# The email status of an inbox entry held for a digest; the digest job marks it DIGESTED.
HELD_FOR_DIGEST: Final = EmailStatus.DIGEST
DIGESTED: Final = EmailStatus.DIGESTED


@dataclass(frozen=True)
class MailOnly:
    """The message as mailed, secret and all; `notify`'s body and link are the version
    without it, for the inbox and the webhooks."""

    body: str
    link: str | None = None


def notify(
    session: AsyncSession,
    settings: Settings,
    *,
    account_id: str,
    kind: str,
    subject: str,
    body: str,
    link: str | None,
    now: datetime,
    email: str | None = None,
    data: dict[str, Any] | None = None,
    mail_only: MailOnly | None = None,
    digest: bool = False,
) -> Notification:
    """An inbox entry for the account, its email (if SMTP is set up) and its webhooks.

    Without SMTP the message is written to the log instead, so that on a single machine
    the operator can still pass a verification link on. With `mail_only`, that is what
    is mailed (or logged), and the inbox entry is not mailed besides. With `digest`, the
    entry is held for a digest (`queue_mail`, by a job) instead of mailed on its own.
    """
    mailed = mail_only or MailOnly(body=body, link=link)
    if not settings.smtp_url and not digest:
        logger.info(
            "mail to %s (no SMTP configured): %s\n%s", email or account_id, subject, mailed.body
        )
    elif mail_only is not None:
        session.add(
            Notification(
                account_id=account_id,
                kind=kind,
                subject=subject,
                body=mail_only.body,
                link=mail_only.link,
                created_at=now,
                email_status=EmailStatus.PENDING,
                email_next_attempt_at=now,
                mail_only=True,
            )
        )
    mail_this = bool(settings.smtp_url) and mail_only is None and not digest
    skipped = HELD_FOR_DIGEST if digest else EmailStatus.SKIPPED
    note = Notification(
        account_id=account_id,
        kind=kind,
        subject=subject,
        body=body,
        link=link,
        created_at=now,
        email_status=EmailStatus.PENDING if mail_this else skipped,
        email_next_attempt_at=now if mail_this else None,
        mail_only=False,
    )
    session.add(note)
    for hook in settings.webhooks:
        asked = kind in hook.events
        if (hook.events and not asked) or (kind in ASKED_FOR_ONLY and not asked):
            continue
        session.add(
            WebhookDelivery(
                id=str(uuid.uuid4()),
                endpoint=hook.url,
                event=kind,
                payload={
                    "event": kind,
                    "account": account_id,
                    "subject": subject,
                    "link": link,
                    "at": now.isoformat(),
                    **(data or {}),
                },
                created_at=now,
                status=WebhookStatus.PENDING,
                next_attempt_at=now,
            )
        )
    return note


def queue_mail(
    session: AsyncSession,
    settings: Settings,
    *,
    account_id: str,
    kind: str,
    subject: str,
    body: str,
    link: str | None,
    now: datetime,
    email: str | None = None,
) -> None:
    """Only an email (no inbox entry, no webhook): queued for delivery, or without SMTP
    written to the log."""
    if not settings.smtp_url:
        logger.info("mail to %s (no SMTP configured): %s\n%s", email or account_id, subject, body)
        return
    session.add(
        Notification(
            account_id=account_id,
            kind=kind,
            subject=subject,
            body=body,
            link=link,
            created_at=now,
            email_status=EmailStatus.PENDING,
            email_next_attempt_at=now,
            mail_only=True,
        )
    )


@dataclass(frozen=True)
class InboxPage:
    """One page of an account's inbox, newest first, with its totals."""

    notes: Sequence[Notification]
    total: int
    unread: int


async def inbox_latest(
    uow: UnitOfWork, account_id: str, *, limit: int = 20
) -> Sequence[Notification]:
    """The newest entries of the account's inbox."""
    return await repository.inbox_entries(uow.session, account_id, limit=limit)


async def inbox_page(uow: UnitOfWork, account_id: str, *, page: int, size: int) -> InboxPage:
    """Page `page` (from 1) of the account's inbox, `size` entries a page."""
    session = uow.session
    return InboxPage(
        notes=await repository.inbox_entries(
            session, account_id, limit=size, offset=(page - 1) * size
        ),
        total=await repository.inbox_count(session, account_id),
        unread=await unread_count(session, account_id),
    )


async def unread(uow: UnitOfWork, account_id: str) -> int:
    """How many of the account's inbox entries are unread (the header's count)."""
    return await unread_count(uow.session, account_id)


async def mark_read(uow: UnitOfWork, account_id: str, ids: Collection[int] | None = None) -> int:
    """Mark the account's unread inbox entries read: those of `ids`, or all of them when
    `ids` is None; how many. Ids of entries not in the account's inbox change nothing."""
    if ids is not None and not ids:
        return 0
    session = await uow.write()
    return await repository.mark_read(session, account_id, ids, uow.rt.clock())


__all__ = [
    "ASKED_FOR_ONLY",
    "DIGESTED",
    "HELD_FOR_DIGEST",
    "InboxPage",
    "MailOnly",
    "in_inbox",
    "inbox_latest",
    "inbox_page",
    "mark_read",
    "notify",
    "queue_mail",
    "unread_count",
]
