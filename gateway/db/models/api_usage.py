"""Use of a model's API, as inference services report it: one row per event, kept once
however often the service sends it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import Base


class ApiUsageEvent(Base):
    """One event a service reported: `requests` served (and `tokens`) to a grant's key,
    `flagged` when the service's safety filter was triggered. The key is the reporting
    service and its own event id, so a resent event is the same row."""

    __tablename__ = "api_usage_events"
    __table_args__ = (Index("ix_api_usage_release_at", "release_id", "at"),)

    service_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="RESTRICT"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    at: Mapped[datetime]
    received_at: Mapped[datetime]
    requests: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)
    flagged: Mapped[int] = mapped_column(BigInteger)
