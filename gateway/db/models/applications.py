"""Applications for a tier of a model, and the moves each one went through."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.db.models.base import NAME, Base
from gateway.db.types import status_type
from stages.applications import ApplicationStatus

if TYPE_CHECKING:
    from gateway.db.models.accounts import Account
    from gateway.db.models.catalog import Model


class Application(Base):
    """An account asks for a tier of a model: answers, license acceptance, decision."""

    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_account_model_tier", "account_id", "model_id", "tier"),
        Index("ix_applications_status_submitted", "status", "submitted_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    tier: Mapped[str] = mapped_column(String(NAME))
    status: Mapped[ApplicationStatus] = mapped_column(
        status_type(ApplicationStatus, table="applications", column="status", length=24)
    )
    answers: Mapped[dict[str, Any]]
    license_sha256: Mapped[str] = mapped_column(String(64))
    accepted_at: Mapped[datetime]
    accepted_from: Mapped[str | None] = mapped_column(String(100))
    submitted_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    grant_id: Mapped[str | None] = mapped_column(ForeignKey("grants.id", ondelete="RESTRICT"))
    renewal_of: Mapped[str | None] = mapped_column(ForeignKey("grants.id", ondelete="RESTRICT"))
    usage_report: Mapped[str | None] = mapped_column(Text)

    account: Mapped[Account] = relationship(lazy="raise")
    model: Mapped[Model] = relationship(lazy="raise")
    events: Mapped[list[ApplicationEvent]] = relationship(
        order_by="ApplicationEvent.id", lazy="raise", back_populates="application"
    )


class ApplicationEvent(Base):
    __tablename__ = "application_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    move: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[ApplicationStatus | None] = mapped_column(
        status_type(ApplicationStatus, table="application_events", column="from_status", length=24)
    )
    to_status: Mapped[ApplicationStatus] = mapped_column(
        status_type(ApplicationStatus, table="application_events", column="to_status", length=24)
    )
    reason: Mapped[str | None] = mapped_column(Text)

    application: Mapped[Application] = relationship(back_populates="events", lazy="raise")


class PublicUse(Base):
    """An applicant's consent, given when applying, to list the use publicly once it is
    approved: the institution, project title and use statement they wrote for that list.
    `withdrawn_at` ends the consent; the row stays, as the record of both."""

    __tablename__ = "public_uses"
    __table_args__ = (Index("ix_public_uses_withdrawn", "withdrawn_at"),)

    application_id: Mapped[str] = mapped_column(
        ForeignKey("applications.id", ondelete="RESTRICT"), primary_key=True
    )
    institution: Mapped[str] = mapped_column(String(200))
    project_title: Mapped[str] = mapped_column(String(200))
    use_statement: Mapped[str] = mapped_column(Text)
    consented_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]
