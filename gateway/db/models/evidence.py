"""Evidence, and the documents attached to a release for its promotion gates.

Evidence is append-only: the migration adds triggers that refuse UPDATE and DELETE on it,
so not even a bug in the shell can rewrite history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import NAME, Base


class Evidence(Base):
    """One event. Every read goes through an index's prefix: (release_id, kind) or
    (account_id, kind); `at` for time ranges. The table grows by millions of rows."""

    __tablename__ = "evidence"
    __table_args__ = (
        Index("ix_evidence_release_kind", "release_id", "kind"),
        Index("ix_evidence_account_kind", "account_id", "kind"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(NAME))
    actor: Mapped[str] = mapped_column(String(320))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    data: Mapped[dict[str, Any]]


class EvidenceAttachment(Base):
    """A document attached to a release as evidence for a promotion gate (e.g. a red-team
    report). The file itself is in object storage, by SHA-256."""

    __tablename__ = "evidence_attachments"
    __table_args__ = (Index("ix_evidence_attachments_release", "release_id", "kind", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(NAME))
    name: Mapped[str] = mapped_column(String(200))
    result: Mapped[str] = mapped_column(String(NAME))
    file_name: Mapped[str | None] = mapped_column(String(300))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    attached_by: Mapped[str] = mapped_column(String(320))
    attached_at: Mapped[datetime]
