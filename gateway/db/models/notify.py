"""Notifications (the inbox and the email outbox), and webhook deliveries with each
endpoint's circuit breaker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import NAME, Base
from gateway.db.types import status_type
from stages.delivery import EmailStatus, WebhookStatus


class Notification(Base):
    """An account's inbox entry; also the outbox for email (delivered by a job)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(NAME))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    # Email delivery: pending -> sending -> sent | failed (after retries) | skipped (no SMTP);
    # while sending, email_next_attempt_at is the claim's lease.
    email_status: Mapped[EmailStatus] = mapped_column(
        status_type(EmailStatus, table="notifications", column="email_status", length=16),
        default=EmailStatus.PENDING,
        index=True,
    )
    email_attempts: Mapped[int] = mapped_column(default=0)
    email_next_attempt_at: Mapped[datetime | None]
    email_error: Mapped[str | None] = mapped_column(Text)
    # A message that carries a secret (a one-time link): it exists only to be mailed, and
    # is never shown in the inbox nor sent to a webhook.
    mail_only: Mapped[bool] = mapped_column(default=False, server_default=false())


class WebhookDelivery(Base):
    """One event to one webhook endpoint, retried with backoff until it is accepted."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(1000))
    event: Mapped[str] = mapped_column(String(NAME))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    # pending -> sending -> delivered | failed
    status: Mapped[WebhookStatus] = mapped_column(
        status_type(WebhookStatus, table="webhook_deliveries", column="status", length=16),
        default=WebhookStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


class WebhookEndpoint(Base):
    """The circuit breaker of one webhook endpoint: failures in a row, and until when the
    endpoint is left alone after them (no row: it has never failed)."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(1000), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    open_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_failure_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
