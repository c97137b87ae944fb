"""Evidence, and the documents attached to a release for its promotion gates.

Evidence is append-only: the migration adds triggers that refuse UPDATE and DELETE on it,
so not even a bug in the shell can rewrite history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import NAME, Base

# The hot paths' kinds, millions of rows: the rows of every other kind (applications,
# grants, incidents, stages, enforcement) are indexed apart, for transparency reports.
HOT_KINDS = ("download.manifest_refused", "download.requested", "url.issued")
NOT_HOT = "kind NOT IN ('download.manifest_refused', 'download.requested', 'url.issued')"


class Evidence(Base):
    """One event. Every read goes through an index's prefix: (release_id, kind) or
    (account_id, kind); `at` for time ranges; `ix_evidence_not_hot` for the rows of
    every kind but the hot paths'. The table grows by millions of rows."""

    __tablename__ = "evidence"
    __table_args__ = (
        Index("ix_evidence_release_kind", "release_id", "kind"),
        Index("ix_evidence_account_kind", "account_id", "kind"),
        Index(
            "ix_evidence_not_hot",
            "id",
            sqlite_where=text(NOT_HOT),
            postgresql_where=text(NOT_HOT),
        ),
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
    # Submitted by an external evaluator (a grantee of an evaluators tier), not an operator.
    external: Mapped[bool] = mapped_column(default=False, server_default=false())


class EvidenceUnsealed(Base):
    """Evidence rows not yet in the log. A database trigger adds each new row here in the
    row's own transaction, so a row is queued exactly when it becomes visible: one that a
    slow transaction commits late is sealed late, never skipped."""

    __tablename__ = "evidence_unsealed"

    evidence_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )


class EvidenceLeaf(Base):
    """One leaf of the evidence log: the row it seals, at a gap-free position.

    `personal_sha256` is the salted hash of the row's personal fields (addresses, user
    agents, emails) that the leaf commits to in their place; the fields themselves and
    `personal_salt` can be erased without changing the leaf."""

    __tablename__ = "evidence_leaves"
    __table_args__ = (
        # The leaves whose personal fields are still kept, for erasing them.
        Index(
            "ix_evidence_leaves_personal",
            "leaf_index",
            sqlite_where=text("personal_salt IS NOT NULL"),
            postgresql_where=text("personal_salt IS NOT NULL"),
        ),
    )

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    evidence_id: Mapped[int] = mapped_column(
        ForeignKey("evidence.id", ondelete="RESTRICT"), unique=True
    )
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    personal_sha256: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    personal_salt: Mapped[bytes | None] = mapped_column(LargeBinary(16))


class EvidenceNode(Base):
    """The hash of a perfect subtree of the log: 2**level leaves from position * 2**level.
    Stored once complete, so any proof reads O(log n) rows (level 0 is the leaf itself)."""

    __tablename__ = "evidence_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class EvidenceCheckpoint(Base):
    """A signed checkpoint: the log's size and root at a time, as a C2SP signed note."""

    __tablename__ = "evidence_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime] = mapped_column(index=True)
    note: Mapped[str] = mapped_column(Text)


class EvidenceLogKey(Base):
    """The Ed25519 key that signs checkpoints; its private half sealed with the
    key-encryption key (gateway/credentials/key_encryption.py)."""

    __tablename__ = "evidence_log_keys"

    key_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    sealed_private_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
