"""Actions taken against accounts (warnings, suspensions, terminations), and appeals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import Base
from gateway.db.types import status_type
from stages.enforcement import AppealStatus


class EnforcementAction(Base):
    """A warning, suspension or termination of an account, with its reason."""

    __tablename__ = "enforcement_actions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    incident_id: Mapped[str | None] = mapped_column(ForeignKey("incidents.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))
    ends_at: Mapped[datetime | None]  # a suspension's end
    ended_at: Mapped[datetime | None]
    appeal_until: Mapped[datetime]


class Appeal(Base):
    """An account's one appeal against an enforcement action, and its outcome."""

    __tablename__ = "appeals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    action_id: Mapped[str] = mapped_column(
        ForeignKey("enforcement_actions.id", ondelete="RESTRICT"), unique=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    statement: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[datetime]
    status: Mapped[AppealStatus] = mapped_column(
        status_type(AppealStatus, table="appeals", column="status", length=16)
    )
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decision_reason: Mapped[str | None] = mapped_column(Text)
