"""Transparency reports: drafts an operator reviews, and the published reports, which
the database keeps unchanged (migration 0017 refuses to change or delete one)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import Base


class TransparencyReport(Base):
    """One report of a period, for one model or (model_id null) the whole gateway.

    `body` is the report's canonical JSON; `signed_note` (published reports only) signs
    its SHA-256 with the evidence log's key. `published_key` is "<period> <scope>" once
    published, so a period and scope is published once."""

    __tablename__ = "transparency_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    scope: Mapped[str] = mapped_column(String(200))
    tree_size: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)
    built_at: Mapped[datetime]
    built_by: Mapped[str] = mapped_column(String(320))
    published_at: Mapped[datetime | None]
    published_by: Mapped[str | None] = mapped_column(String(320))
    published_key: Mapped[str | None] = mapped_column(String(220), unique=True)
    signed_note: Mapped[str | None] = mapped_column(Text)
