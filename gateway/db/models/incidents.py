"""Incident reports, the moves each one went through, and the accounts linked to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import Base
from gateway.db.types import status_type
from stages.incidents import IncidentStatus


class Incident(Base):
    """A report of misuse, a safety or security problem, a leak; triaged by operators."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(32), unique=True)
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    category: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    links: Mapped[dict[str, Any]]
    contact: Mapped[str | None] = mapped_column(String(320))
    reporter_account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT")
    )
    reporter_address: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[IncidentStatus] = mapped_column(
        status_type(IncidentStatus, table="incidents", column="status", length=16)
    )
    severity: Mapped[str | None] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class IncidentEvent(Base):
    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    move: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[IncidentStatus | None] = mapped_column(
        status_type(IncidentStatus, table="incident_events", column="from_status", length=16)
    )
    to_status: Mapped[IncidentStatus] = mapped_column(
        status_type(IncidentStatus, table="incident_events", column="to_status", length=16)
    )
    note: Mapped[str | None] = mapped_column(Text)


class IncidentAccount(Base):
    """An account linked to an incident (e.g. the grantee whose copy leaked)."""

    __tablename__ = "incident_accounts"

    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), primary_key=True
    )
