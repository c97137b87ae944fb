"""Access to releases: grants with their notices and closeouts, API keys, the keys that
sign download URLs, and downloads with the quota they use."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.db.models.base import NAME, Base
from gateway.db.types import status_type
from stages.grants import GrantStatus

if TYPE_CHECKING:
    from gateway.db.models.accounts import Account
    from gateway.db.models.catalog import Model


class Grant(Base):
    """Access to one model's releases at one tier, for a window of time."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_account_model", "account_id", "model_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    tier: Mapped[str] = mapped_column(String(NAME))
    status: Mapped[GrantStatus] = mapped_column(
        status_type(GrantStatus, table="grants", column="status", length=16),
        default=GrantStatus.ACTIVE,
    )
    starts_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    download_quota: Mapped[int]
    quota_period_days: Mapped[int]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(320))
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime]

    account: Mapped[Account] = relationship(lazy="raise")
    model: Mapped[Model] = relationship(lazy="raise")


class GrantNotice(Base):
    """Which expiry warnings a grant has had, so each is sent once."""

    __tablename__ = "grant_notices"

    grant_id: Mapped[str] = mapped_column(
        ForeignKey("grants.id", ondelete="CASCADE"), primary_key=True
    )
    notice: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. "expiry:7", "ended"
    sent_at: Mapped[datetime]


class Closeout(Base):
    """After a grant ends, the grantee attests that the weights were deleted."""

    __tablename__ = "closeouts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="RESTRICT"), unique=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    requested_at: Mapped[datetime]
    due_at: Mapped[datetime]
    attested_at: Mapped[datetime | None]
    statement: Mapped[str | None] = mapped_column(Text)
    attested_from: Mapped[str | None] = mapped_column(String(100))


class ApiKey(Base):
    """An API key: only its SHA-256 is kept; the secret is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    display_prefix: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated, sorted
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship(lazy="raise")


class UrlSigningKey(Base):
    """Ed25519 keys that sign download tokens. Retired keys verify until `verify_until`.

    The private key is sealed with the key-encryption key (gateway/credentials/
    key_encryption.py); a row from before sealing holds PEM until the next start."""

    __tablename__ = "url_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed_private_key: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
    verify_until: Mapped[datetime | None]


class Download(Base):
    """One download of one artifact under one grant: it uses one unit of the quota,
    however many requests (retries, resumes, refreshed URLs) it takes."""

    __tablename__ = "downloads"
    __table_args__ = (
        Index("ix_downloads_grant_artifact", "grant_id", "artifact_id"),
        # The download gates of `gateway stage status`: an artifact's downloads since.
        Index("ix_downloads_artifact_started", "artifact_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="RESTRICT"))
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="RESTRICT"))
    period: Mapped[int]
    started_at: Mapped[datetime]


class QuotaUsage(Base):
    """Units used per grant, artifact and quota period; incremented with a guarded UPDATE."""

    __tablename__ = "quota_usage"

    grant_id: Mapped[str] = mapped_column(
        ForeignKey("grants.id", ondelete="RESTRICT"), primary_key=True
    )
    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", ondelete="RESTRICT"), primary_key=True
    )
    period: Mapped[int] = mapped_column(primary_key=True)
    used: Mapped[int] = mapped_column(default=0)
