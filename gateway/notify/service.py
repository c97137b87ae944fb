"""Queue notifications. Writing one is part of the caller's transaction: the inbox entry,
the email to send and the webhook deliveries commit (or not) with the change they report.
Delivery (SMTP, webhooks) is done later by jobs, with retries."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.db.models import Notification, WebhookDelivery

logger = logging.getLogger("gateway.mail")


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
) -> Notification:
    """An inbox entry for the account, its email (if SMTP is set up) and its webhooks.

    Without SMTP the message is written to the log instead, so that on a single machine
    the operator can still pass a verification link on.
    """
    if not settings.smtp_url:
        logger.info("mail to %s (no SMTP configured): %s\n%s", email or account_id, subject, body)
    note = Notification(
        account_id=account_id,
        kind=kind,
        subject=subject,
        body=body,
        link=link,
        created_at=now,
        email_status="pending" if settings.smtp_url else "skipped",
        email_next_attempt_at=now if settings.smtp_url else None,
    )
    session.add(note)
    for hook in settings.webhooks:
        if hook.events and kind not in hook.events:
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
                status="pending",
                next_attempt_at=now,
            )
        )
    return note
